//! Matrix groups, Lie algebras, representations and equivariant bases.
//!
//! Depends on nothing else in symc.

mod rep;

pub use rep::Rep;
