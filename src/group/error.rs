//! The one error type of the group engine.

use thiserror::Error;

/// Which list of generators a matrix came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratorKind {
    /// A Lie-algebra generator.
    Lie,
    /// A discrete generator.
    Discrete,
}

impl std::fmt::Display for GeneratorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GeneratorKind::Lie => "lie",
            GeneratorKind::Discrete => "discrete",
        })
    }
}

/// What can go wrong when building a group or solving for an equivariant basis.
///
/// Errors carry no source locations; the front end attaches them.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum GroupError {
    /// `Group::builtin` was given a name it does not know.
    #[error("unknown group `{name}`")]
    UnknownGroup { name: String },
    /// A built-in group was given the wrong number or range of parameters.
    #[error("group `{name}` expects {expected}, found {found:?}")]
    BadParameters {
        name: String,
        expected: &'static str,
        found: Vec<i64>,
    },
    /// A custom group was given no generators at all, so its size is unknown.
    #[error("a custom group needs at least one generator")]
    NoGenerators,
    /// A generator given as rows has rows of different lengths.
    #[error("row {row} has {found} entries, expected {expected}")]
    Ragged {
        row: usize,
        expected: usize,
        found: usize,
    },
    /// A generator is not square.
    #[error("{kind} generator {index} is {rows}×{cols}, expected a square matrix")]
    NotSquare {
        kind: GeneratorKind,
        index: usize,
        rows: usize,
        cols: usize,
    },
    /// A generator's size differs from the group's.
    #[error("{kind} generator {index} is {found}×{found}, expected {expected}×{expected}")]
    SizeMismatch {
        kind: GeneratorKind,
        index: usize,
        expected: usize,
        found: usize,
    },
    /// A generator has a NaN or infinite entry.
    #[error("{kind} generator {index} has a non-finite entry")]
    NonFinite { kind: GeneratorKind, index: usize },
    /// A discrete generator is not invertible.
    #[error("discrete generator {index} is singular")]
    Singular { index: usize },
    /// A representation is too large to lay out.
    #[error("a representation of dimension {size} is larger than the solver accepts ({limit})")]
    RepTooLarge { size: usize, limit: usize },
    /// The problem has no structure the solver can exploit and is too large for a dense solve.
    #[error(
        "an equivariant map between these representations has {unknowns} unknowns, more than \
         the dense solver accepts ({limit}) and without structure the solver can use"
    )]
    TooLarge { unknowns: usize, limit: usize },
}
