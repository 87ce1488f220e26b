//! Host kernels shared by the backend's layers: matrix products, pointwise
//! activations with their derivatives, and (inside the backend) the glue that
//! registers a custom operation on dfdx's tape.
//!
//! The slice kernels are plain functions on row-major `f32` slices, so they
//! are usable and testable without any tensor type.

pub mod activation;
pub mod gemm;
pub(crate) mod tape;
