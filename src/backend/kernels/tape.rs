//! Custom operations on the dfdx tape.
//!
//! dfdx keeps its kernel traits private, but its tape is open: an operation
//! computes its output with host kernels, wraps it in a tensor, and pushes a
//! closure with [`Tape::add_backward_op`] that reads the output's gradient and
//! adds into the gradients of whatever it read. [`custom_op`] does the
//! bookkeeping; a layer supplies only the two kernels.
//!
//! Such an operation needs the tensors' buffers in host memory. On any other
//! device (a GPU, [`KernelDevice::HOST`] false) a layer runs a composition of
//! dfdx's own operations instead, which dfdx runs on that device.

use crate::backend::BackendError;
use dfdx::prelude::*;
use dfdx::tensor::{Cpu, Gradients};

/// A row-major `rows × cols` activation tensor carrying the tape `T`.
pub(crate) type Mat<D, T> = Tensor<(usize, usize), f32, D, T>;

/// A dfdx device the layers run on. Where its buffers live in host memory
/// ([`KernelDevice::HOST`]) a layer runs its fused slice kernels as one custom
/// operation on the tape; on any other device (a GPU) it runs as a composition
/// of dfdx's own operations, which the tests check against the fused kernels.
pub(crate) trait KernelDevice: Device<f32> {
    /// Whether [`KernelDevice::host_mut`] can hand out a buffer.
    const HOST: bool;
    /// The buffer as a slice; an error on a device without host buffers,
    /// which callers never reach because they check `HOST` first.
    fn host_mut(buffer: &mut <Self as Storage<f32>>::Vec) -> Result<&mut [f32], Self::Err>;
}

impl KernelDevice for Cpu {
    const HOST: bool = true;
    fn host_mut(buffer: &mut <Self as Storage<f32>>::Vec) -> Result<&mut [f32], Self::Err> {
        Ok(buffer)
    }
}

#[cfg(feature = "cuda")]
impl KernelDevice for dfdx::tensor::Cuda {
    const HOST: bool = false;
    fn host_mut(_: &mut <Self as Storage<f32>>::Vec) -> Result<&mut [f32], Self::Err> {
        use cudarc::driver::{sys::CUresult, DriverError};
        Err(DriverError(CUresult::CUDA_ERROR_NOT_SUPPORTED).into())
    }
}

/// A copy of a tensor's values.
pub(crate) fn host<S: Shape, D: KernelDevice, T>(t: &Tensor<S, f32, D, T>) -> Vec<f32> {
    let mut out = vec![0.0; t.shape().num_elements()];
    t.copy_into(&mut out);
    out
}

/// A copy of the gradient of `t` in `grads` (zeros where the objective does not
/// depend on `t`).
pub(crate) fn gradient<S: Shape, D: KernelDevice>(
    grads: &mut Gradients<f32, D>,
    t: &Tensor<S, f32, D>,
) -> Result<Vec<f32>, BackendError> {
    let buffer = grads.get_or_alloc_mut(t).map_err(BackendError::device)?;
    if D::HOST {
        Ok(D::host_mut(buffer).map_err(BackendError::device)?.to_vec())
    } else {
        // On a device dfdx's tensor API is the only way to read a buffer; this
        // costs one extra copy on the device.
        Ok(host(&grads.get(t)))
    }
}

/// Write access to the gradients during a backward pass.
pub(crate) struct GradSink<'a, D: KernelDevice> {
    grads: &'a mut Gradients<f32, D>,
}

impl<D: KernelDevice> GradSink<'_, D> {
    /// The gradient buffer of `t`, zero-filled on first use; backward kernels add into it.
    pub(crate) fn slice<S: Shape>(&mut self, t: &Tensor<S, f32, D>) -> Result<&mut [f32], D::Err> {
        D::host_mut(self.grads.get_or_alloc_mut(t)?)
    }
}

/// The backward kernel of a custom op: given (a copy of) the output's gradient, add into
/// the input's gradient (third argument) and those of any parameters.
pub(crate) trait Backward<D: KernelDevice>:
    'static + FnOnce(Vec<f32>, &mut GradSink<'_, D>, &Mat<D, NoneTape>) -> Result<(), D::Err>
{
}

impl<D: KernelDevice, F> Backward<D> for F where
    F: 'static + FnOnce(Vec<f32>, &mut GradSink<'_, D>, &Mat<D, NoneTape>) -> Result<(), D::Err>
{
}

/// Wraps `output` (row-major, one row per row of `input`, `cols` wide,
/// computed by the caller's forward kernel) as a tensor that continues `input`'s tape, and
/// records `backward` when the tape is live (`T::OWNS_TAPE`). Callers that
/// must copy data only for the backward pass check `T::OWNS_TAPE` first.
pub(crate) fn custom_op<D: KernelDevice, T: Tape<f32, D>>(
    input: Mat<D, T>,
    output: Vec<f32>,
    cols: usize,
    backward: impl Backward<D>,
) -> Result<Mat<D, T>, BackendError> {
    let (input, mut tape) = input.split_tape();
    let rows = input.shape().0;
    let output = input
        .device()
        .try_tensor_from_vec(output, (rows, cols))
        .map_err(BackendError::device)?;
    if T::OWNS_TAPE {
        // Handles share the tensors' buffers; the gradients are keyed by their ids.
        let input = input.clone();
        let out = output.clone();
        tape.add_backward_op(move |grads| {
            // A copy, because the closure then borrows other entries of `grads` mutably.
            let grad_out = D::host_mut(grads.get_or_alloc_mut(&out)?)?.to_vec();
            backward(grad_out, &mut GradSink { grads }, &input)
        });
    }
    Ok(output.put_tape(tape))
}

/// Concatenates row-major matrices with equal row counts along their columns,
/// merging their tapes.
pub(crate) fn concat_columns<D: KernelDevice, T: Tape<f32, D>>(
    parts: Vec<Mat<D, T>>,
) -> Result<Mat<D, T>, BackendError> {
    let rows = parts.first().map_or(0, |p| p.shape().0);
    if let Some(p) = parts.iter().find(|p| p.shape().0 != rows) {
        return Err(BackendError::ShapeMismatch {
            what: "rows of concatenated inputs".into(),
            expected: rows,
            found: p.shape().0,
        });
    }
    if D::HOST {
        concat_columns_fused(parts, rows)
    } else {
        concat_columns_ops(parts)
    }
}

/// [`concat_columns`] as one copy on the host, for parts of `rows` rows.
pub(crate) fn concat_columns_fused<D: KernelDevice, T: Tape<f32, D>>(
    parts: Vec<Mat<D, T>>,
    rows: usize,
) -> Result<Mat<D, T>, BackendError> {
    let widths: Vec<usize> = parts.iter().map(|p| p.shape().1).collect();
    let cols: usize = widths.iter().sum();
    let mut data = vec![0.0; rows * cols];
    let mut tape = T::default();
    let mut handles = Vec::with_capacity(parts.len());
    let mut device = None;
    let mut offset = 0;
    for (part, &width) in parts.into_iter().zip(&widths) {
        let values = host(&part);
        for (dst, src) in data
            .chunks_exact_mut(cols)
            .zip(values.chunks_exact(width.max(1)))
        {
            dst[offset..offset + width].copy_from_slice(&src[..width]);
        }
        offset += width;
        let (part, part_tape) = part.split_tape();
        tape = tape.merge(part_tape);
        handles.push(part.clone());
        device.get_or_insert_with(|| part.device().clone());
    }
    let device =
        device.ok_or_else(|| BackendError::InvalidGraph("a node concatenates no inputs".into()))?;
    let output = device
        .try_tensor_from_vec(data, (rows, cols))
        .map_err(BackendError::device)?;
    if T::OWNS_TAPE {
        let out = output.clone();
        tape.add_backward_op(move |grads| {
            let grad_out = D::host_mut(grads.get_or_alloc_mut(&out)?)?.to_vec();
            let mut offset = 0;
            for (handle, &width) in handles.iter().zip(&widths) {
                let grad = D::host_mut(grads.get_or_alloc_mut(handle)?)?;
                for (dst, src) in grad
                    .chunks_exact_mut(width.max(1))
                    .zip(grad_out.chunks_exact(cols))
                {
                    for (d, s) in dst.iter_mut().zip(&src[offset..offset + width]) {
                        *d += s;
                    }
                }
                offset += width;
            }
            Ok(())
        });
    }
    Ok(output.put_tape(tape))
}

/// [`concat_columns`] with dfdx's `concat_along`, one part at a time.
pub(crate) fn concat_columns_ops<D: KernelDevice, T: Tape<f32, D>>(
    parts: Vec<Mat<D, T>>,
) -> Result<Mat<D, T>, BackendError> {
    let mut parts = parts.into_iter();
    let first = parts
        .next()
        .ok_or_else(|| BackendError::InvalidGraph("a node concatenates no inputs".into()))?;
    parts.try_fold(first, |acc, part| {
        (acc, part)
            .try_concat_along(Axis::<1>)
            .map_err(BackendError::device)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    // This module's own `Backward` hides dfdx's trait of that name.
    use dfdx::tensor_ops::Backward as _;

    #[test]
    fn both_concatenations_place_the_columns_and_route_their_gradients() {
        let dev = Cpu::default();
        let (rows, widths) = (3, [2, 3, 1]);
        let parts: Vec<Mat<Cpu, NoneTape>> = widths
            .iter()
            .enumerate()
            .map(|(k, &w)| {
                let values = (0..rows * w).map(|i| (10 * k + i) as f32).collect();
                dev.tensor_from_vec(values, (rows, w))
            })
            .collect();
        let cols: usize = widths.iter().sum();
        let weights: Vec<f32> = (0..rows * cols).map(|i| 0.5 + i as f32).collect();
        let w = dev.tensor_from_vec(weights.clone(), (rows, cols));
        for fused in [true, false] {
            let traced = parts.iter().map(|p| p.leaky_trace()).collect();
            let y = if fused {
                concat_columns_fused(traced, rows)
            } else {
                concat_columns_ops(traced)
            }
            .unwrap();
            assert_eq!(*y.shape(), (rows, cols));
            let values = host(&y);
            let grads = (y * w.clone()).sum().backward();
            let mut offset = 0;
            for (part, &width) in parts.iter().zip(&widths) {
                // Part k's columns are its own values, and its gradient is its block of `weights`.
                let block = |m: &[f32]| -> Vec<f32> {
                    m.chunks(cols)
                        .flat_map(|row| row[offset..offset + width].to_vec())
                        .collect()
                };
                assert_eq!(block(&values), host(part));
                assert_eq!(block(&weights), grads.get(part).as_vec());
                offset += width;
            }
        }
    }
}
