//! The backend's error type.

use super::DeviceKind;
use std::fmt::Debug;

/// Why a graph could not be compiled or a step could not run.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum BackendError {
    /// The graph uses an operation or loss term this backend does not implement.
    #[error("`{op}` is not supported by the dfdx backend")]
    Unsupported {
        /// The op or loss term, as the IR spells it.
        op: String,
    },
    /// A size does not match what the graph or the data promised.
    #[error("shape mismatch in {what}: expected {expected}, found {found}")]
    ShapeMismatch {
        what: String,
        expected: usize,
        found: usize,
    },
    /// The graph breaks one of the IR's invariants.
    #[error("invalid model graph: {0}")]
    InvalidGraph(String),
    /// A classification target is not a class index.
    #[error("row {row}: target {value} is not a class index below {classes}")]
    InvalidTarget {
        row: usize,
        value: f32,
        classes: usize,
    },
    /// A matrix that must be inverted is singular.
    #[error("singular matrix in {what}")]
    Singular { what: String },
    /// A loss or gradient became NaN or infinite.
    #[error("non-finite value in {what}")]
    NonFinite { what: String },
    /// A parameter name or shape given to `load_parameters` does not fit the model.
    #[error("parameter `{name}`: {problem}")]
    Parameter { name: String, problem: String },
    /// The group engine could not produce what a layer needs.
    #[error("group `{group}`: {message}")]
    Group { group: String, message: String },
    /// The tensor device failed (e.g. out of memory).
    #[error("device error: {0}")]
    Device(String),
    /// A device name other than `cpu`, `cuda` and `cuda:N`.
    #[error("unknown device `{0}`: expected `cpu`, `cuda` or `cuda:N`")]
    UnknownDevice(String),
    /// The device cannot be used by this build or on this machine.
    #[error("device `{device}` is unavailable: {reason}")]
    DeviceUnavailable { device: DeviceKind, reason: String },
    /// Part of the graph has only host kernels, so it cannot run on a GPU.
    #[error("{what} runs on the CPU only; use --device cpu")]
    HostOnly {
        /// The node or loss term, e.g. "node 3 (`group_conv`)".
        what: String,
    },
}

impl BackendError {
    pub(crate) fn device(err: impl Debug) -> Self {
        BackendError::Device(format!("{err:?}"))
    }
}
