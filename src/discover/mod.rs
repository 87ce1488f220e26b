//! Symmetry discovery: learning Lie-algebra generators from data.

mod expm;

pub use expm::{expm, expm_vjp};
