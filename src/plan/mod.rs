//! Planning: choose a strategy per symmetry and emit the [`ModelGraph`] IR.

mod graph;

pub use graph::*;
