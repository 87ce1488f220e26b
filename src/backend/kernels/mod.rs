//! Host kernels shared by the backend's layers: matrix products, pointwise
//! activations with their derivatives, and (inside the backend) the glue that
//! registers a custom operation on dfdx's tape.
//!
//! The slice kernels are plain functions on row-major `f32` slices, so they
//! are usable and testable without any tensor type.

pub mod activation;
pub mod gemm;
pub(crate) mod tape;

/// Runs `f` on a fresh pool of `threads` threads: what a test that compares
/// bits across thread counts runs each count on.
#[cfg(test)]
pub(crate) fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
        .install(f)
}
