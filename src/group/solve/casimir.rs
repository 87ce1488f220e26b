//! Splitting a Lie-algebra problem into small blocks with Casimir operators.
//!
//! The trace form B(X, Y) = tr(XY) is ad-invariant on any matrix Lie algebra,
//! so when it is non-degenerate C = Σᵢⱼ (B⁻¹)ᵢⱼ dρ(Xᵢ) dρ(Xⱼ) commutes with
//! the action on every representation. For a tensor product the Casimirs of
//! the two halves and of the whole commute with each other and with the
//! action, so their joint eigenspaces, built up a balanced tree of factors,
//! are invariant subspaces: for SO(3) on V^{⊗4} they are single irreducible
//! copies of size ≤ 9. An equivariant map W: in → out satisfies
//! C_out W = W C_in, so W lives in the pairs of blocks with equal top
//! eigenvalue, and each pair is a small dense problem.
//!
//! Two blocks with equal eigenvalues can still be large; within such a pair
//! the intertwiners are found among products of eigenvectors of
//! S = dρ(A)ᵀdρ(A) for one fixed generic algebra element A (see
//! [`Casimir::intertwiners`]).
//!
//! All of this needs the algebra to close, to be closed under transpose (so
//! that C and S are symmetric and the blocks are orthonormal and invariant
//! under dρ and dρᵀ) and its trace form to be non-degenerate; every built-in
//! but SE(n) and T(n) qualifies. These are checked on `V`, and the solver is
//! not used otherwise.

use super::super::canonical::{Atom, Term};
use super::super::closure::closure;
use super::eigen::symmetric_eigen;
use super::{nullspace, DEFAULT_TOLERANCE};
use nalgebra::{DMatrix, DVector};
use std::ops::Range;

/// Relative tolerance for the structural checks on the Casimir of `V`.
const CHECK_TOL: f64 = 1e-9;
/// Casimir eigenvalues closer than this (relative to the largest) are one eigenspace.
const CLUSTER_TOL: f64 = 1e-6;

/// A joint eigenspace of the Casimirs of a term.
struct Block {
    /// The eigenvalue of the term's own Casimir.
    value: f64,
    /// Orthonormal basis of the block in the term's coordinates (d × m).
    q: DMatrix<f64>,
    /// Each Lie generator's action restricted to the block (m × m).
    gens: Vec<DMatrix<f64>>,
}

pub(crate) struct Casimir {
    lie: Vec<DMatrix<f64>>,
    /// The inverse of the trace form's Gram matrix.
    inverse_form: DMatrix<f64>,
    /// The size of a constraint: the largest ‖Xᵢ‖², so that a block whose
    /// generators vanish up to rounding is recognised as unconstrained.
    scale: f64,
    /// Coefficients of a fixed generic algebra element A = Σ cᵢXᵢ.
    probe: Vec<f64>,
}

impl Casimir {
    /// The Casimir structure of an algebra, when the checks above pass.
    pub(crate) fn new(lie: &[DMatrix<f64>]) -> Option<Casimir> {
        if lie.is_empty() || !closure(lie).closes() {
            return None;
        }
        let m = lie.len();
        let form = DMatrix::from_fn(m, m, |i, j| (&lie[i] * &lie[j]).trace());
        let singular = form.clone().singular_values();
        if singular.min() <= 1e-10 * singular.max() {
            return None;
        }
        let casimir = Casimir {
            lie: lie.to_vec(),
            inverse_form: form.try_inverse()?,
            scale: lie.iter().map(|a| a.norm_squared()).fold(0.0, f64::max),
            // Quasi-random coefficients in [0.5, 1.5): no special relation
            // between them, so A's eigenspaces are as small as they get.
            probe: (1..=m)
                .map(|i| (i as f64 * 0.754_877_666_246_692_8).fract() + 0.5)
                .collect(),
        };
        if !closed_under_transpose(lie) {
            return None;
        }
        for atom in [Atom::V, Atom::Dual] {
            let gens = casimir.atom_generators(atom);
            let c = casimir.casimir(&gens);
            let scale = c.norm().max(1.0);
            let symmetric = (&c - c.transpose()).norm() <= CHECK_TOL * scale;
            let commutes = gens
                .iter()
                .all(|a| (&c * a - a * &c).norm() <= CHECK_TOL * scale * a.norm().max(1.0));
            if !symmetric || !commutes {
                return None;
            }
        }
        Some(casimir)
    }

    /// An orthonormal basis of the equivariant maps from `inp` to `out`
    /// under the Lie algebra alone.
    pub(crate) fn solve(&self, out: &Term, inp: &Term) -> Vec<DMatrix<f64>> {
        let blocks_out = self.split(&out.0);
        let blocks_in = if out == inp {
            None
        } else {
            Some(self.split(&inp.0))
        };
        let blocks_in = blocks_in.as_ref().unwrap_or(&blocks_out);
        let scale = blocks_out
            .iter()
            .chain(blocks_in)
            .map(|b| b.value.abs())
            .fold(1.0, f64::max);
        let mut basis = Vec::new();
        for p in &blocks_out {
            for q in blocks_in {
                if (p.value - q.value).abs() > CLUSTER_TOL * scale {
                    continue;
                }
                for y in self.intertwiners(p, q) {
                    basis.push(&p.q * y * q.q.transpose());
                }
            }
        }
        basis
    }

    /// An orthonormal basis of the Y (m_p × m_q) with g_p(X) Y = Y g_q(X) for
    /// every generator X.
    ///
    /// Two blocks with one Casimir eigenvalue can still be large (two copies
    /// of a 35-dimensional irrep of SO(5) give 1,225 unknowns), so the search
    /// is narrowed first: Y also intertwines S = g(A)ᵀg(A) for the probe A
    /// (the algebra is closed under transpose and g(Xᵀ) = g(X)ᵀ on these
    /// blocks), so Y maps each eigenspace of S_q into the eigenspace of S_p
    /// with the same eigenvalue, and only those products are unknowns.
    fn intertwiners(&self, p: &Block, q: &Block) -> Vec<DMatrix<f64>> {
        let probe_eigen = |b: &Block| {
            let mut a = DMatrix::zeros(b.q.ncols(), b.q.ncols());
            for (g, c) in b.gens.iter().zip(&self.probe) {
                a += g * *c;
            }
            symmetric_eigen(a.transpose() * a)
        };
        let ((sp, up), (sq, uq)) = (probe_eigen(p), probe_eigen(q));
        let scale = sp.amax().max(sq.amax()).max(1.0);
        let mut unknowns = Vec::new();
        for cp in clusters(&sp) {
            for cq in clusters(&sq) {
                if (sp[cp.start] - sq[cq.start]).abs() <= CLUSTER_TOL * scale {
                    for i in cp.clone() {
                        unknowns.extend(cq.clone().map(|j| (i, j)));
                    }
                }
            }
        }
        let (mp, mq) = (up.nrows(), uq.nrows());
        // Column (i, j) of K is the constraint residual of Y = uᵢvⱼᵀ:
        // g_p uᵢ vⱼᵀ − uᵢ (g_qᵀ vⱼ)ᵀ for every generator, vectorised.
        let moved_u: Vec<_> = p.gens.iter().map(|g| g * &up).collect();
        let moved_v: Vec<_> = q.gens.iter().map(|g| g.transpose() * &uq).collect();
        let mut k = DMatrix::zeros(p.gens.len() * mp * mq, unknowns.len());
        for (col, &(i, j)) in unknowns.iter().enumerate() {
            for (g, (gu, gv)) in moved_u.iter().zip(&moved_v).enumerate() {
                let residual = gu.column(i) * uq.column(j).transpose()
                    - up.column(i) * gv.column(j).transpose();
                k.view_mut((g * mp * mq, col), (mp * mq, 1))
                    .copy_from_slice(residual.as_slice());
            }
        }
        let (null, _) = nullspace(
            std::iter::once(k),
            unknowns.len(),
            self.scale,
            DEFAULT_TOLERANCE,
        );
        null.column_iter()
            .map(|z| {
                let mut y = DMatrix::zeros(mp, mq);
                for (&(i, j), &c) in unknowns.iter().zip(z.iter()) {
                    y += up.column(i) * uq.column(j).transpose() * c;
                }
                y
            })
            .collect()
    }

    /// The generators as `V` or `V*` sees them.
    fn atom_generators(&self, atom: Atom) -> Vec<DMatrix<f64>> {
        self.lie
            .iter()
            .map(|a| match atom {
                Atom::V => a.clone(),
                Atom::Dual => -a.transpose(),
            })
            .collect()
    }

    /// Σᵢⱼ (B⁻¹)ᵢⱼ aᵢaⱼ for generators `a` acting on one space.
    fn casimir(&self, a: &[DMatrix<f64>]) -> DMatrix<f64> {
        let mut c = DMatrix::zeros(a[0].nrows(), a[0].ncols());
        for (i, ai) in a.iter().enumerate() {
            for (j, bj) in a.iter().enumerate() {
                c += ai * bj * self.inverse_form[(i, j)];
            }
        }
        c
    }

    /// The joint eigenspaces of the Casimirs along a balanced tree of the atoms.
    fn split(&self, atoms: &[Atom]) -> Vec<Block> {
        match atoms {
            [] => vec![Block {
                value: 0.0,
                q: DMatrix::identity(1, 1),
                gens: vec![DMatrix::zeros(1, 1); self.lie.len()],
            }],
            [atom] => {
                let gens = self.atom_generators(*atom);
                let c = self.casimir(&gens);
                let identity = DMatrix::identity(c.nrows(), c.ncols());
                eigenblocks(c, &identity, &gens)
            }
            _ => {
                let (left, right) = atoms.split_at(atoms.len() / 2);
                let (left, right) = (self.split(left), self.split(right));
                let mut blocks = Vec::new();
                for l in &left {
                    for r in &right {
                        blocks.extend(self.join(l, r));
                    }
                }
                blocks
            }
        }
    }

    /// Splits the product of two blocks by the Casimir of the product:
    /// C = C_l ⊗ I + I ⊗ C_r + 2 Σᵢⱼ (B⁻¹)ᵢⱼ dρ_l(Xᵢ) ⊗ dρ_r(Xⱼ).
    fn join(&self, l: &Block, r: &Block) -> Vec<Block> {
        let (ml, mr) = (l.q.ncols(), r.q.ncols());
        let (eye_l, eye_r) = (DMatrix::identity(ml, ml), DMatrix::identity(mr, mr));
        let mut c = DMatrix::identity(ml * mr, ml * mr) * (l.value + r.value);
        for (i, gi) in l.gens.iter().enumerate() {
            let mut paired = DMatrix::zeros(mr, mr);
            for (j, gj) in r.gens.iter().enumerate() {
                paired += gj * (2.0 * self.inverse_form[(i, j)]);
            }
            c += gi.kronecker(&paired);
        }
        let gens: Vec<_> = l
            .gens
            .iter()
            .zip(&r.gens)
            .map(|(gl, gr)| gl.kronecker(&eye_r) + eye_l.kronecker(gr))
            .collect();
        eigenblocks(c, &l.q.kronecker(&r.q), &gens)
    }
}

/// Splits a symmetric operator `c` (on a block with basis `q` and restricted
/// generators `gens`) into its eigenspaces.
fn eigenblocks(c: DMatrix<f64>, q: &DMatrix<f64>, gens: &[DMatrix<f64>]) -> Vec<Block> {
    let (values, vectors) = symmetric_eigen(c);
    clusters(&values)
        .into_iter()
        .map(|range| {
            let vectors = vectors.columns(range.start, range.len());
            Block {
                value: (values[range.start] + values[range.end - 1]) * 0.5,
                q: q * vectors,
                gens: gens
                    .iter()
                    .map(|g| vectors.tr_mul(&(g * vectors)))
                    .collect(),
            }
        })
        .collect()
}

/// Runs of (ascending) eigenvalues that are equal up to `CLUSTER_TOL`.
fn clusters(values: &DVector<f64>) -> Vec<Range<usize>> {
    let scale = values.amax().max(1.0);
    let mut runs = Vec::new();
    let mut start = 0;
    for end in 1..=values.len() {
        if end == values.len() || values[end] - values[end - 1] > CLUSTER_TOL * scale {
            runs.push(start..end);
            start = end;
        }
    }
    runs
}

/// Whether every generator's transpose lies in the span of the generators.
fn closed_under_transpose(lie: &[DMatrix<f64>]) -> bool {
    let n2 = lie[0].len();
    let span = DMatrix::from_fn(n2, lie.len(), |r, k| lie[k][r]);
    let svd = span.clone().svd(true, true);
    let rank_eps = 1e-12 * svd.singular_values.max();
    lie.iter().all(|a| {
        let target = DVector::from_column_slice(a.transpose().as_slice());
        svd.solve(&target, rank_eps)
            .is_ok_and(|coef| (&span * coef - &target).norm() <= CHECK_TOL * a.norm().max(1.0))
    })
}
