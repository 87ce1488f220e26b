//! The tables a data source hands the trainer.
//!
//! These mirror the data stage's shared table types field for field, so the
//! systems module builds on its own; they are to be replaced by re-exports of
//! `crate::data::{Table, Splits, DataError}` once those exist.

/// Rows of inputs `x` (`rows × x_dim`) and targets `y` (`rows × y_dim`), row-major.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub rows: usize,
    pub x_dim: usize,
    pub y_dim: usize,
}

/// Training, validation and test tables.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Splits {
    pub train: Table,
    pub val: Table,
    pub test: Table,
}

/// Why data could not be produced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    #[error("parameter `{name}` of `{source_name}`: {reason}")]
    Parameter {
        source_name: String,
        name: String,
        reason: String,
    },
    #[error("{path}:{line}: {reason}")]
    Csv {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
}
