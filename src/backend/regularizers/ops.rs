//! The regularisers' tape operations.

use super::super::kernels::gemm::{matmul, MatMut, MatRef};
use super::super::kernels::tape::{custom_op, host, GradSink, KernelDevice, Mat};
use super::super::loss::Scalar;
use super::super::params::Param;
use super::super::BackendError;
use dfdx::prelude::*;

/// The rows of `x` (`rows` × `n`) each multiplied by the `n` × `n` matrix `m`: x·mᵀ.
pub(super) fn transform_rows(x: &[f32], rows: usize, m: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * n];
    matmul(
        MatRef::new(x, rows, n),
        MatRef::new(m, n, n).t(),
        MatMut::new(&mut out, rows, n),
        false,
    );
    out
}

/// `weight` times the mean of Rₖ² over k, rows and columns, where the stacked
/// `f` holds the block F₀ of `values` rows and one block Fₖ per map Mₖ (each
/// cols × cols, row-major), and Rₖ = Fₖ − F₀·Mₖᵀ.
pub(super) fn residual_mean_square<D: KernelDevice, T: Tape<f32, D>>(
    f: Mat<D, T>,
    values: usize,
    maps: &[Vec<f32>],
    weight: f32,
) -> Result<Scalar<D, T>, BackendError> {
    let (rows, cols) = *f.shape();
    if rows != values * (maps.len() + 1) {
        return Err(BackendError::ShapeMismatch {
            what: "rows of the stacked outputs".into(),
            expected: values * (maps.len() + 1),
            found: rows,
        });
    }
    let fs = host(&f);
    let block = values * cols;
    let (head, tails) = fs.split_at(block);
    // The value block of the result stays zero; each further block is a residual.
    let mut r = vec![0.0; rows * cols];
    for ((out, tail), m) in r[block..]
        .chunks_exact_mut(block)
        .zip(tails.chunks_exact(block))
        .zip(maps)
    {
        matmul(
            MatRef::new(head, values, cols),
            MatRef::new(m, cols, cols).t(),
            MatMut::new(out, values, cols),
            false,
        );
        out.iter_mut().zip(tail).for_each(|(o, t)| *o = t - *o);
    }
    let maps = maps.to_vec();
    let residual = custom_op(f, r, cols, move |g, grads, input| {
        let gx = grads.slice(input)?;
        let g_tails = &g[block..];
        let mut back = vec![0.0; block];
        for (gt, m) in g_tails.chunks_exact(block).zip(&maps) {
            matmul(
                MatRef::new(gt, values, cols),
                MatRef::new(m, cols, cols),
                MatMut::new(&mut back, values, cols),
                true,
            );
        }
        let (gx_head, gx_tails) = gx.split_at_mut(block);
        gx_head.iter_mut().zip(&back).for_each(|(a, b)| *a -= b);
        gx_tails.iter_mut().zip(g_tails).for_each(|(a, b)| *a += b);
        Ok(())
    })?;
    let scale = weight / ((rows - values) * cols).max(1) as f32;
    Ok(residual.square().sum::<Rank0, _>() * scale)
}

/// A scalar term of the parameters alone: `value`, whose gradient `backward`
/// adds (times the upstream gradient it is given) into the parameters'.
fn parameter_term<D: KernelDevice, T: Tape<f32, D>>(
    device: &D,
    value: f32,
    backward: impl 'static + FnOnce(f32, &mut GradSink<'_, D>) -> Result<(), D::Err>,
) -> Result<Scalar<D, T>, BackendError> {
    // A 1 × 1 anchor carries the tape the term is recorded on.
    let anchor = device
        .try_tensor_from_vec(vec![0.0], (1, 1))
        .map_err(BackendError::device)?
        .retaped::<T>();
    let term = custom_op(anchor, vec![value], 1, move |g, grads, _| {
        backward(g[0], grads)
    })?;
    Ok(term.sum::<Rank0, _>())
}

/// `weight` · Σ c‖θ‖² over the parameters θ with coefficients c.
pub(super) fn weighted_square_norm<D: KernelDevice, T: Tape<f32, D>>(
    device: &D,
    params: &[(&Param<D>, f64)],
    weight: f32,
) -> Result<Scalar<D, T>, BackendError> {
    let mut value = 0.0f64;
    let mut parts = Vec::with_capacity(params.len());
    for &(p, c) in params {
        let theta = p.values();
        value += c * theta.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
        parts.push((p.handle(), theta, (2.0 * c) as f32));
    }
    parameter_term(device, weight * value as f32, move |g, grads| {
        for (handle, theta, c) in parts {
            let scale = g * weight * c;
            let dst = grads.slice(&handle)?;
            dst.iter_mut()
                .zip(&theta)
                .for_each(|(d, t)| *d += scale * t);
        }
        Ok(())
    })
}

/// `weight` times the chamfer distance from the rows {wᵢ ρ} of `w` (`out` ×
/// `inp`) moved by each ρ in `elements` to the rows {wⱼ}: the mean over ρ and
/// i of minⱼ ‖wᵢρ − wⱼ‖².
pub(super) fn weight_orbit<D: KernelDevice, T: Tape<f32, D>>(
    device: &D,
    w: &Param<D>,
    (out, inp): (usize, usize),
    elements: &[Vec<f32>],
    weight: f32,
) -> Result<Scalar<D, T>, BackendError> {
    let theta = w.values();
    if theta.len() != out * inp {
        return Err(BackendError::ShapeMismatch {
            what: format!("size of `{}`", w.name()),
            expected: out * inp,
            found: theta.len(),
        });
    }
    let (value, grad) = chamfer(&theta, (out, inp), elements);
    let handle = w.handle();
    parameter_term(device, weight * value, move |g, grads| {
        let scale = g * weight;
        let dst = grads.slice(&handle)?;
        dst.iter_mut().zip(&grad).for_each(|(d, v)| *d += scale * v);
        Ok(())
    })
}

/// The chamfer distance of [`weight_orbit`] and its gradient with respect to `w`.
pub(super) fn chamfer(
    w: &[f32],
    (out, inp): (usize, usize),
    elements: &[Vec<f32>],
) -> (f32, Vec<f32>) {
    let norms: Vec<f32> = w
        .chunks_exact(inp)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect();
    let scale = 1.0 / (elements.len() * out).max(1) as f32;
    let (mut value, mut grad) = (0.0f64, vec![0.0; w.len()]);
    let (mut moved, mut gram, mut d_moved) =
        (vec![0.0; w.len()], vec![0.0; out * out], vec![0.0; w.len()]);
    for p in elements {
        matmul(
            MatRef::new(w, out, inp),
            MatRef::new(p, inp, inp),
            MatMut::new(&mut moved, out, inp),
            false,
        );
        matmul(
            MatRef::new(&moved, out, inp),
            MatRef::new(w, out, inp).t(),
            MatMut::new(&mut gram, out, out),
            false,
        );
        d_moved.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..out {
            let v = &moved[i * inp..(i + 1) * inp];
            let nearest = (0..out)
                .map(|j| (j, norms[j] - 2.0 * gram[i * out + j]))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(i, |(j, _)| j);
            let wj = &w[nearest * inp..(nearest + 1) * inp];
            for k in 0..inp {
                let r = v[k] - wj[k];
                value += (r * r) as f64;
                d_moved[i * inp + k] = 2.0 * scale * r;
                grad[nearest * inp + k] -= 2.0 * scale * r;
            }
        }
        // d(wᵢρ)/dwᵢ: the gradient of the moved rows, times ρᵀ.
        matmul(
            MatRef::new(&d_moved, out, inp),
            MatRef::new(p, inp, inp).t(),
            MatMut::new(&mut grad, out, inp),
            true,
        );
    }
    (value as f32 * scale, grad)
}
