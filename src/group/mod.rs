//! Matrix groups, Lie algebras, representations and equivariant bases.
//!
//! A [`Group`] is its generators; a [`Rep`] is a value in the algebra of
//! `scalar`, `V`, duals, sums, multiples, tensor products and powers. The
//! space of equivariant linear maps between two representations is solved
//! block by block between canonical summands ([`BasisSolver::blocks`]) or as
//! one flat orthonormal basis ([`equivariant_basis`]).
//!
//! Depends on nothing else in symc.

mod basis;
mod builtin;
mod canonical;
mod closure;
mod error;
mod matrix_group;
mod rep;
mod solve;

pub use basis::{
    equivariant_basis, solve_timed, Basis, BasisSolver, Block, BlockBasis, TimedSolve,
};
pub use canonical::{Layout, Summand};
pub use closure::{ClosureWarning, LieClosure, StructureConstants};
pub use error::{GeneratorKind, GroupError};
pub use matrix_group::{matrix_from_rows, Group};
pub use rep::Rep;

#[cfg(test)]
mod tests;
