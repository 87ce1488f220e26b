//! Solvers for the equivariant maps between two canonical terms.
//!
//! A map W: in → out is equivariant when dρ_out(A)W − W dρ_in(A) = 0 for each
//! Lie generator A and ρ_out(h) W ρ_in(h)⁻¹ = W for each discrete generator h.
//! Matrices are vectorised column-major (nalgebra's storage order), so
//! vec(X W Y) = (Yᵀ ⊗ X) vec(W).

use super::canonical::{Atom, Term};
use super::error::GroupError;
use super::matrix_group::Group;
use nalgebra::{DMatrix, SymmetricEigen};

/// The most unknowns a dense solve accepts: its normal matrix has this many
/// squared entries, and its eigensolver costs the cube.
pub(crate) const DENSE_LIMIT: usize = 4096;

/// Eigenvalues of a normal matrix below this fraction of the largest count as zero.
const NULL_TOL: f64 = 1e-9;

/// An orthonormal basis (in the Frobenius inner product) of the equivariant
/// maps from `inp` to `out`, each `out.size × inp.size`.
pub(crate) fn solve_pair(
    group: &Group,
    out: &Term,
    inp: &Term,
) -> Result<Vec<DMatrix<f64>>, GroupError> {
    dense(group, out, inp)
}

/// Stacks every constraint into one normal matrix and takes its nullspace.
fn dense(group: &Group, out: &Term, inp: &Term) -> Result<Vec<DMatrix<f64>>, GroupError> {
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
    let discrete = group.discrete().iter().map(|h| {
        rep_in_dual.rho(h).kronecker(&rep_out.rho(h)) - DMatrix::identity(unknowns, unknowns)
    });
    let null = nullspace(lie.chain(discrete), unknowns);
    Ok(null
        .column_iter()
        .map(|c| DMatrix::from_column_slice(d_out, d_in, c.as_slice()))
        .collect())
}

/// The common nullspace of the constraint matrices, as orthonormal columns.
///
/// Works on M = Σ KᵀK, whose nullspace is the common one and whose size does
/// not grow with the number of constraints.
pub(crate) fn nullspace(
    constraints: impl Iterator<Item = DMatrix<f64>>,
    unknowns: usize,
) -> DMatrix<f64> {
    let mut normal = DMatrix::zeros(unknowns, unknowns);
    for k in constraints {
        normal += k.tr_mul(&k);
    }
    let eig = SymmetricEigen::new(normal);
    let largest = eig.eigenvalues.amax();
    let zero: Vec<usize> = (0..unknowns)
        .filter(|&i| eig.eigenvalues[i] <= NULL_TOL * largest)
        .collect();
    eig.eigenvectors.select_columns(&zero)
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
