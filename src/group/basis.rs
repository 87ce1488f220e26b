//! Equivariant bases between representations, solved block by block.

use super::canonical::{Layout, Term};
use super::error::GroupError;
use super::matrix_group::Group;
use super::rep::Rep;
use super::solve::{SingularGap, Strategy, STRUCTURED_LIMIT};
use nalgebra::DMatrix;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// An orthonormal basis of equivariant linear maps, each `rows × cols`.
///
/// ```
/// use symc::group::{equivariant_basis, Group, Rep};
/// let so3 = Group::builtin("SO", &[3]).unwrap();
/// let basis = equivariant_basis(&so3, &Rep::V, &Rep::V).unwrap();
/// assert_eq!(basis.len(), 1); // multiples of the identity
/// assert_eq!(basis.to_dense().shape(), (9, 1));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Basis {
    rows: usize,
    cols: usize,
    matrices: Vec<DMatrix<f64>>,
}

impl Basis {
    /// The dimension of the space of equivariant maps.
    pub fn len(&self) -> usize {
        self.matrices.len()
    }

    /// Whether the only equivariant map is zero.
    pub fn is_empty(&self) -> bool {
        self.matrices.is_empty()
    }

    /// The basis maps, orthonormal in the Frobenius inner product.
    pub fn matrices(&self) -> &[DMatrix<f64>] {
        &self.matrices
    }

    /// The output dimension (rows of each map).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The input dimension (columns of each map).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The basis as one `rows·cols × len` matrix of column-major vectorised maps.
    pub fn to_dense(&self) -> DMatrix<f64> {
        DMatrix::from_fn(self.rows * self.cols, self.len(), |r, k| {
            self.matrices[k].as_slice()[r]
        })
    }
}

/// The maps between one input summand and one output summand.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Index into [`BlockBasis::input`]'s summands.
    pub input: usize,
    /// Index into [`BlockBasis::output`]'s summands.
    pub output: usize,
    /// Orthonormal basis Bᵢ (`size_out × size_in`) of the equivariant maps
    /// between the two base representations; shared by every pair of
    /// summands with the same base representations.
    pub basis: Arc<[DMatrix<f64>]>,
}

/// The equivariant maps between two representations, in block form.
///
/// Between canonical vectors, an equivariant map is block-structured: the
/// block from input summand `i` (multiplicity mᵢ, size dᵢ) to output summand
/// `o` is Σₖ Cₖ ⊗ Bₖ, with the basis Bₖ of the [`Block`] and any channel
/// mixing Cₖ (mₒ × mᵢ); this matches the multiplicity-major layout of
/// [`Layout`]. Pairs of summands with no equivariant maps have no block.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockBasis {
    pub input: Layout,
    pub output: Layout,
    pub blocks: Vec<Block>,
}

impl BlockBasis {
    /// The dimension of the space of equivariant maps: Σ mₒ·mᵢ·|B|.
    pub fn dimension(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| {
                self.output.summands[b.output].multiplicity
                    * self.input.summands[b.input].multiplicity
                    * b.basis.len()
            })
            .sum()
    }

    /// Expands the blocks into a basis of maps between the original
    /// (non-canonical) vectors: one map per block, channel pair and Bₖ.
    pub fn to_basis(&self) -> Basis {
        let (rows, cols) = (self.output.perm.len(), self.input.perm.len());
        let mut matrices = Vec::with_capacity(self.dimension());
        for block in &self.blocks {
            let so = &self.output.summands[block.output];
            let si = &self.input.summands[block.input];
            for co in 0..so.multiplicity {
                for ci in 0..si.multiplicity {
                    for b in block.basis.iter() {
                        let mut w = DMatrix::zeros(rows, cols);
                        let (r0, c0) = (so.offset + co * so.size, si.offset + ci * si.size);
                        for c in 0..si.size {
                            for r in 0..so.size {
                                w[(self.output.perm[r0 + r], self.input.perm[c0 + c])] = b[(r, c)];
                            }
                        }
                        matrices.push(w);
                    }
                }
            }
        }
        Basis {
            rows,
            cols,
            matrices,
        }
    }
}

/// Solves equivariant bases for one group, caching each solved pair of base
/// representations so that equal pairs are solved once.
///
/// ```
/// use symc::group::{BasisSolver, Group, Rep};
/// let so3 = Group::builtin("SO", &[3]).unwrap();
/// let mut solver = BasisSolver::new(&so3);
/// // 5*scalar + 5*V → V^2: scalar → V^2 (δ) and V → V^2 (ε) once each, reused.
/// let input = Rep::Sum(vec![Rep::Scalar.times(5), Rep::V.times(5)]);
/// let blocks = solver.blocks(&input, &Rep::V.pow(2)).unwrap();
/// assert_eq!(blocks.blocks.len(), 2);
/// assert_eq!(blocks.dimension(), 10);
/// ```
pub struct BasisSolver {
    group: Group,
    strategy: Strategy,
    cache: HashMap<(Term, Term), Arc<[DMatrix<f64>]>>,
    gap: Option<SingularGap>,
}

impl BasisSolver {
    /// A solver with an empty cache.
    pub fn new(group: &Group) -> BasisSolver {
        BasisSolver {
            group: group.clone(),
            strategy: Strategy::for_group(group),
            cache: HashMap::new(),
            gap: None,
        }
    }

    /// The group this solver solves for.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// The singular-value gap over every dense solve so far (`None` when
    /// every pair was solved by orbits or Casimir blocks, which cut nothing).
    ///
    /// ```
    /// use nalgebra::DMatrix;
    /// use symc::group::{BasisSolver, Group, Rep};
    /// // A shear: its trace form vanishes, so its problems are solved densely.
    /// let shear = DMatrix::from_row_slice(2, 2, &[0.0, 1.0, 0.0, 0.0]);
    /// let (g, _) = Group::custom("Shear", vec![shear], vec![]).unwrap();
    /// let mut solver = BasisSolver::new(&g);
    /// // The invariant bilinear forms: the area form, and x₁y₁ (the shear
    /// // keeps the second coordinate).
    /// assert_eq!(solver.blocks(&Rep::V.pow(2), &Rep::Scalar).unwrap().dimension(), 2);
    /// let gap = solver.gap().unwrap();
    /// assert!(gap.zero < 1e-12 && gap.kept > 1e-3);
    /// ```
    pub fn gap(&self) -> Option<SingularGap> {
        self.gap
    }

    /// The block form of the equivariant maps from `rep_in` to `rep_out`.
    pub fn blocks(&mut self, rep_in: &Rep, rep_out: &Rep) -> Result<BlockBasis, GroupError> {
        let n = self.group.n();
        for rep in [rep_in, rep_out] {
            let size = rep.size(n);
            if size > STRUCTURED_LIMIT {
                return Err(GroupError::RepTooLarge {
                    size,
                    limit: STRUCTURED_LIMIT,
                });
            }
        }
        let (input, output) = (rep_in.layout(n), rep_out.layout(n));
        let mut blocks = Vec::new();
        for (o, so) in output.summands.iter().enumerate() {
            for (i, si) in input.summands.iter().enumerate() {
                let basis = self.pair(&so.term, &si.term)?;
                if !basis.is_empty() {
                    blocks.push(Block {
                        input: i,
                        output: o,
                        basis,
                    });
                }
            }
        }
        Ok(BlockBasis {
            input,
            output,
            blocks,
        })
    }

    fn pair(&mut self, out: &Term, inp: &Term) -> Result<Arc<[DMatrix<f64>]>, GroupError> {
        let key = (out.clone(), inp.clone());
        if let Some(hit) = self.cache.get(&key) {
            return Ok(Arc::clone(hit));
        }
        let (basis, gap) = self.strategy.solve(&self.group, out, inp)?;
        self.gap = match (self.gap, gap) {
            (Some(a), Some(b)) => Some(a.merge(b)),
            (a, b) => a.or(b),
        };
        let solved: Arc<[DMatrix<f64>]> = basis.into();
        self.cache.insert(key, Arc::clone(&solved));
        Ok(solved)
    }
}

/// An orthonormal basis of the equivariant linear maps from `rep_in` to `rep_out`.
///
/// Each map is `rep_out.size(n) × rep_in.size(n)` and acts on the original
/// (non-canonical) vectors. For layers, prefer [`BasisSolver::blocks`], which
/// keeps the Kronecker structure.
///
/// ```
/// use symc::group::{equivariant_basis, Group, Rep};
/// let s4 = Group::builtin("S", &[4]).unwrap();
/// // Permutation-equivariant maps Rⁿ → Rⁿ: the identity and the all-ones matrix.
/// assert_eq!(equivariant_basis(&s4, &Rep::V, &Rep::V).unwrap().len(), 2);
/// ```
pub fn equivariant_basis(group: &Group, rep_in: &Rep, rep_out: &Rep) -> Result<Basis, GroupError> {
    Ok(BasisSolver::new(group).blocks(rep_in, rep_out)?.to_basis())
}

/// A solve and how long it took.
#[derive(Debug, Clone)]
pub struct TimedSolve {
    /// The dimension of the space of equivariant maps.
    pub dimension: usize,
    /// Wall-clock seconds of the solve, from a fresh cache.
    pub seconds: f64,
    /// The solution.
    pub blocks: BlockBasis,
    /// Where the dense solves cut the singular values, if any ran.
    pub gap: Option<SingularGap>,
}

/// Solves the block basis from `rep_in` to `rep_out` with a fresh cache and times it.
///
/// ```
/// use symc::group::{solve_timed, Group, Rep};
/// let o3 = Group::builtin("O", &[3]).unwrap();
/// let solved = solve_timed(&o3, &Rep::V.pow(2), &Rep::V.pow(2)).unwrap();
/// assert_eq!(solved.dimension, 3);
/// assert!(solved.seconds >= 0.0);
/// ```
pub fn solve_timed(group: &Group, rep_in: &Rep, rep_out: &Rep) -> Result<TimedSolve, GroupError> {
    let start = Instant::now();
    let mut solver = BasisSolver::new(group);
    let blocks = solver.blocks(rep_in, rep_out)?;
    Ok(TimedSolve {
        dimension: blocks.dimension(),
        seconds: start.elapsed().as_secs_f64(),
        blocks,
        gap: solver.gap(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Layers of one network share base pairs: the second call reuses the
    /// first call's solution instead of solving again.
    #[test]
    fn solved_pairs_are_shared_across_calls() {
        let so3 = Group::builtin("SO", &[3]).unwrap();
        let mut solver = BasisSolver::new(&so3);
        let hidden = Rep::Sum(vec![Rep::Scalar.times(4), Rep::V.pow(2).times(4)]);
        let first = solver.blocks(&Rep::V.pow(2), &hidden).unwrap();
        let second = solver.blocks(&hidden, &hidden).unwrap();
        let t2_to_t2 = |b: &BlockBasis| {
            b.blocks
                .iter()
                .find(|blk| {
                    b.input.summands[blk.input].rep == Rep::V.pow(2)
                        && b.output.summands[blk.output].rep == Rep::V.pow(2)
                })
                .map(|blk| Arc::clone(&blk.basis))
                .unwrap()
        };
        assert!(Arc::ptr_eq(&t2_to_t2(&first), &t2_to_t2(&second)));
        // scalar↔scalar 1, scalar↔T2 1 each way, T2→T2 3; times 4·4 channels.
        assert_eq!(second.dimension(), 16 * (1 + 1 + 1 + 3));
    }
}
