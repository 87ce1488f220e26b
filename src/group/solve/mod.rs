//! Solvers for the equivariant maps between two canonical terms.
//!
//! A map W: in → out is equivariant when dρ_out(A)W − W dρ_in(A) = 0 for each
//! Lie generator A and ρ_out(h) W ρ_in(h)⁻¹ = W for each discrete generator h.
//! Matrices are vectorised column-major (nalgebra's storage order), so
//! vec(X W Y) = (Yᵀ ⊗ X) vec(W).

mod casimir;
mod eigen;
mod orbit;

use super::canonical::{Atom, Term};
use super::error::GroupError;
use super::matrix_group::Group;
use casimir::Casimir;
use eigen::symmetric_eigen;
use nalgebra::DMatrix;
use orbit::SignedPermutation;

/// The most unknowns a dense solve accepts: its normal matrix has this many
/// squared entries, and its eigensolver costs the cube.
pub(crate) const DENSE_LIMIT: usize = 4096;

/// The most unknowns any solve accepts: every basis map is stored densely.
pub(crate) const STRUCTURED_LIMIT: usize = 1 << 24;

/// Singular values of the constraints below this fraction of the largest
/// count as zero, unless the group sets its own tolerance: the eigenvalues of
/// the normal matrix, their squares, are cut at 1e-9.
pub(crate) const DEFAULT_TOLERANCE: f64 = 3.162_277_660_168_379_5e-5;

/// Where a nullspace was cut: the largest relative singular value counted as
/// zero and the smallest one kept. A wide gap between them means the
/// tolerance is not what decides the answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SingularGap {
    /// The largest singular value counted as zero, relative to the largest one (0 if none).
    pub zero: f64,
    /// The smallest singular value kept, relative to the largest one (1 if none).
    pub kept: f64,
}

impl SingularGap {
    /// The gap of two solves taken together: the worse side of each.
    pub fn merge(self, other: SingularGap) -> SingularGap {
        SingularGap {
            zero: self.zero.max(other.zero),
            kept: self.kept.min(other.kept),
        }
    }
}

/// How a group's problems are solved, chosen once per group.
pub(crate) enum Strategy {
    /// No Lie algebra; every discrete generator a signed permutation (or none).
    Orbits(Vec<SignedPermutation>),
    /// No Lie algebra and no permutation structure.
    Dense,
    /// Solve the Lie algebra (by Casimir blocks when available), then impose
    /// the discrete generators on that solution.
    LieThenDiscrete(Option<Casimir>),
}

impl Strategy {
    pub(crate) fn for_group(group: &Group) -> Strategy {
        if !group.lie().is_empty() {
            return Strategy::LieThenDiscrete(Casimir::new(group.lie()));
        }
        let perms: Option<Vec<_>> = group
            .discrete()
            .iter()
            .map(SignedPermutation::from_matrix)
            .collect();
        perms.map_or(Strategy::Dense, Strategy::Orbits)
    }

    /// An orthonormal basis (in the Frobenius inner product) of the
    /// equivariant maps from `inp` to `out`, each `out.size × inp.size`, and
    /// the singular-value gap of the dense solve when one decided it.
    pub(crate) fn solve(
        &self,
        group: &Group,
        out: &Term,
        inp: &Term,
    ) -> Result<(Vec<DMatrix<f64>>, Option<SingularGap>), GroupError> {
        let n = group.n();
        let unknowns = out.size(n).saturating_mul(inp.size(n));
        if unknowns > STRUCTURED_LIMIT {
            return Err(GroupError::TooLarge {
                unknowns,
                limit: STRUCTURED_LIMIT,
            });
        }
        match self {
            Strategy::Orbits(perms) => Ok((orbit::solve(perms, n, out, inp), None)),
            Strategy::Dense => dense(group, out, inp, true).map(|(b, gap)| (b, Some(gap))),
            Strategy::LieThenDiscrete(casimir) => {
                let (lie_basis, gap) = match casimir {
                    Some(c) => (c.solve(out, inp), None),
                    None => {
                        let (basis, gap) = dense(group, out, inp, false)?;
                        (basis, Some(gap))
                    }
                };
                match reduce_discrete(group, out, inp, lie_basis)? {
                    Some(basis) => Ok((basis, gap)),
                    None => dense(group, out, inp, true).map(|(b, gap)| (b, Some(gap))),
                }
            }
        }
    }
}

/// Restricts an orthonormal basis of the Lie-equivariant maps to the maps
/// also fixed by every discrete generator.
///
/// Each h maps the Lie solution space into itself when h normalises the
/// algebra (always, for a group), so h acts on the coefficients by an r×r
/// matrix G_h and the answer is the common fixed space of the G_h. Returns
/// `None` when the space is not mapped into itself, so the caller can fall
/// back to a dense solve.
fn reduce_discrete(
    group: &Group,
    out: &Term,
    inp: &Term,
    basis: Vec<DMatrix<f64>>,
) -> Result<Option<Vec<DMatrix<f64>>>, GroupError> {
    if group.discrete().is_empty() || basis.is_empty() {
        return Ok(Some(basis));
    }
    let r = basis.len();
    let (rows, cols) = basis[0].shape();
    let stack = |maps: &mut dyn Iterator<Item = DMatrix<f64>>| {
        let mut stacked = DMatrix::zeros(rows * cols, r);
        for (mut column, w) in stacked.column_iter_mut().zip(maps) {
            column.copy_from_slice(w.as_slice());
        }
        stacked
    };
    let stacked = stack(&mut basis.iter().cloned());
    let mut constraints = Vec::with_capacity(group.discrete().len());
    for (index, h) in group.discrete().iter().enumerate() {
        let conjugation = Conjugation::new(h, index, out, inp)?;
        let moved = stack(&mut basis.iter().map(|w| conjugation.apply(w)));
        let g = stacked.transpose() * &moved;
        let lost = moved.norm_squared() - g.norm_squared();
        if lost > 1e-8 * moved.norm_squared().max(1.0) {
            return Ok(None);
        }
        constraints.push(g - DMatrix::identity(r, r));
    }
    let fixed = &stacked * nullspace(constraints.into_iter(), r, 1.0, DEFAULT_TOLERANCE).0;
    Ok(Some(
        fixed
            .column_iter()
            .map(|c| DMatrix::from_column_slice(rows, cols, c.as_slice()))
            .collect(),
    ))
}

/// W ↦ ρ_out(h) W ρ_in(h)⁻¹ for one discrete generator h.
enum Conjugation {
    /// Signed permutations (reflections among them) move entries.
    Permute(SignedPermutation, SignedPermutation),
    /// Anything else multiplies by ρ_out(h) and ρ_in(h⁻¹).
    Multiply(DMatrix<f64>, DMatrix<f64>),
}

impl Conjugation {
    fn new(h: &DMatrix<f64>, index: usize, out: &Term, inp: &Term) -> Result<Self, GroupError> {
        if let Some(p) = SignedPermutation::from_matrix(h) {
            return Ok(Conjugation::Permute(p.on_term(out), p.on_term(inp)));
        }
        let h_inv = h
            .clone()
            .try_inverse()
            .ok_or(GroupError::Singular { index })?;
        Ok(Conjugation::Multiply(
            out.to_rep().rho(h),
            inp.to_rep().rho(&h_inv),
        ))
    }

    fn apply(&self, w: &DMatrix<f64>) -> DMatrix<f64> {
        match self {
            Conjugation::Permute(p_out, p_in) => p_out.conjugate(w, p_in),
            Conjugation::Multiply(r_out, r_in_inv) => r_out * w * r_in_inv,
        }
    }
}

/// Stacks the constraints (the Lie ones, and the discrete ones when asked)
/// into one normal matrix and takes its nullspace, at the group's tolerance.
fn dense(
    group: &Group,
    out: &Term,
    inp: &Term,
    with_discrete: bool,
) -> Result<(Vec<DMatrix<f64>>, SingularGap), GroupError> {
    let n = group.n();
    let (d_out, d_in) = (out.size(n), inp.size(n));
    let unknowns = d_out.saturating_mul(d_in);
    if unknowns > DENSE_LIMIT {
        return Err(GroupError::TooLarge {
            unknowns,
            limit: DENSE_LIMIT,
        });
    }
    let (rep_out, rep_in, rep_in_dual) = (out.to_rep(), inp.to_rep(), dual(inp).to_rep());
    let eye_out = DMatrix::identity(d_out, d_out);
    let eye_in = DMatrix::identity(d_in, d_in);
    let lie = group.lie().iter().map(|a| {
        eye_in.kronecker(&rep_out.drho(a)) - rep_in.drho(a).transpose().kronecker(&eye_out)
    });
    let discrete = group.discrete().iter().filter(|_| with_discrete).map(|h| {
        rep_in_dual.rho(h).kronecker(&rep_out.rho(h)) - DMatrix::identity(unknowns, unknowns)
    });
    // A discrete constraint ρ(h) ⊗ … − I has entries of order one.
    let scale = group
        .lie()
        .iter()
        .map(|a| a.norm_squared())
        .chain(with_discrete.then_some(1.0))
        .fold(0.0, f64::max);
    let tolerance = group.tolerance().unwrap_or(DEFAULT_TOLERANCE);
    let (null, gap) = nullspace(lie.chain(discrete), unknowns, scale, tolerance);
    let basis = null
        .column_iter()
        .map(|c| DMatrix::from_column_slice(d_out, d_in, c.as_slice()))
        .collect();
    Ok((basis, gap))
}

/// The common nullspace of the constraint matrices, as orthonormal columns,
/// and where it was cut.
///
/// Works on M = Σ KᵀK, whose nullspace is the common one and whose size does
/// not grow with the number of constraints. Singular values (square roots of
/// M's eigenvalues) count as zero below `tolerance` times the largest one or
/// times √`scale`, the size of ‖K‖ for a typical constraint, whichever is
/// larger (a constraint that vanishes up to rounding has no large eigenvalue
/// to compare with).
pub(crate) fn nullspace(
    constraints: impl Iterator<Item = DMatrix<f64>>,
    unknowns: usize,
    scale: f64,
    tolerance: f64,
) -> (DMatrix<f64>, SingularGap) {
    let mut normal = DMatrix::zeros(unknowns, unknowns);
    for k in constraints {
        normal += k.transpose() * &k;
    }
    let (values, vectors) = symmetric_eigen(normal);
    let largest = values.amax().max(scale);
    let cut = tolerance * tolerance * largest;
    let zero = values.iter().take_while(|&&v| v <= cut).count();
    let relative = |v: f64| (v.max(0.0) / largest.max(f64::MIN_POSITIVE)).sqrt();
    let gap = SingularGap {
        zero: zero.checked_sub(1).map_or(0.0, |i| relative(values[i])),
        kept: values.get(zero).map_or(1.0, |&v| relative(v)),
    };
    (vectors.columns(0, zero).into_owned(), gap)
}

/// The term with every atom dualised: ρ_{T*}(g) = ρ_T(g)⁻ᵀ.
fn dual(term: &Term) -> Term {
    Term(
        term.0
            .iter()
            .map(|a| match a {
                Atom::V => Atom::Dual,
                Atom::Dual => Atom::V,
            })
            .collect(),
    )
}
