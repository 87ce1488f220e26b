//! Representations as values: an algebra of `scalar`, `V`, duals, sums, multiples,
//! tensor products and powers over a group's defining representation `V`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A representation of a matrix group, built from the defining representation `V`.
///
/// `Display` prints the spec language's own syntax (`5*scalar+5*V`, `V^2`, `V*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rep {
    /// The trivial one-dimensional representation.
    Scalar,
    /// The defining representation: g acts as its own matrix.
    V,
    /// The dual: ρ*(g) = ρ(g)⁻ᵀ, dρ*(A) = −dρ(A)ᵀ.
    Dual(Box<Rep>),
    /// Direct sum.
    Sum(Vec<Rep>),
    /// `k` copies of a representation (a direct sum of equal terms).
    Mul(usize, Box<Rep>),
    /// Tensor (Kronecker) product.
    Tensor(Vec<Rep>),
    /// Tensor power.
    Pow(Box<Rep>, u32),
}
