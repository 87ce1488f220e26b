//! Matrix groups, Lie algebras, representations and equivariant bases.
//!
//! A [`Group`] is its generators: Lie-algebra generators and discrete
//! generators, n×n each. A [`Rep`] is a value in the algebra of `scalar`,
//! `V`, duals, sums, multiples, tensor products and powers; [`Rep::rho`] and
//! [`Rep::drho`] give its group and algebra actions.
//!
//! # Equivariant bases
//!
//! The equivariant maps W: `rep_in` → `rep_out` are the solutions of
//! dρ_out(A)W = W dρ_in(A) for every Lie generator A and
//! ρ_out(h)Wρ_in(h)⁻¹ = W for every discrete generator h.
//! Both representations are first brought to their canonical [`Layout`]: a
//! sorted list of summands, each a tensor product of `V` and `V*` with a
//! multiplicity. A map between sums is a block matrix of maps between
//! summands, and each distinct pair of base summands is solved once
//! ([`BasisSolver`] caches them). A pair is solved by
//!
//! - signed orbit sums when the group has no Lie algebra and its discrete
//!   generators are signed permutations (Sₙ, Zₙ, the trivial group);
//! - otherwise, for a Lie algebra whose trace form is non-degenerate, the
//!   joint eigenspaces of Casimir operators along a tree of tensor factors,
//!   which cut the problem into blocks of a few dozen unknowns (SO(3) on
//!   V^{⊗4} → V^{⊗4}: 6,561 unknowns, blocks of ≤ 81); the discrete
//!   generators are then imposed on the small Lie solution;
//! - a dense nullspace of all constraints otherwise (up to 4,096 unknowns).
//!
//! # Layout of the flat vectors
//!
//! Tensor products are laid out row-major, like Kronecker products: the
//! coordinate (i, j) of `A*B` sits at i·dim(B) + j. In a canonical layout a
//! summand with multiplicity m and size d occupies m·d consecutive
//! coordinates, copy after copy (multiplicity-major): coordinate i of copy c
//! is at `offset + c·d + i`.
//! [`Layout::perm`] maps the canonical vector to the representation's own
//! flat vector (they coincide when the representation is already written as
//! a sorted sum of multiples, e.g. `5*scalar+5*V`). In that layout the block
//! of an equivariant map from an input summand (mᵢ copies) to an output
//! summand (mₒ copies) is Σₖ Cₖ ⊗ Bₖ with the summand pair's basis Bₖ
//! (dₒ × dᵢ) and a free channel-mixing matrix Cₖ (mₒ × mᵢ).
//!
//! ```
//! use symc::group::{BasisSolver, Group, Rep};
//! let o3 = Group::builtin("O", &[3]).unwrap();
//! let input = Rep::Sum(vec![Rep::Scalar.times(5), Rep::V.times(5)]);
//! let output = Rep::V.pow(2);
//! let blocks = BasisSolver::new(&o3).blocks(&input, &output).unwrap();
//! // scalar → V^2 is spanned by the identity; V → V^2 has no O(3) maps.
//! assert_eq!(blocks.blocks.len(), 1);
//! assert_eq!(blocks.input.summands[blocks.blocks[0].input].rep, Rep::Scalar);
//! assert_eq!(blocks.dimension(), 5);
//! ```
//!
//! Depends on nothing else in symc.

mod analysis;
mod basis;
mod builtin;
mod canonical;
mod closure;
mod error;
mod matrix_group;
mod rep;
mod solve;

pub use analysis::{cosine, normalize, principal_angles, Analysis, Candidate};
pub use basis::{
    equivariant_basis, solve_timed, Basis, BasisSolver, Block, BlockBasis, TimedSolve,
};
pub use canonical::{Layout, Summand};
pub use closure::{ClosureWarning, LieClosure, StructureConstants};
pub use error::{GeneratorKind, GroupError};
pub use matrix_group::{matrix_from_rows, Group};
pub use rep::Rep;
pub use solve::SingularGap;

#[cfg(test)]
mod tests;
