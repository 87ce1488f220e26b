//! A pointwise activation as its own node (one not fused into a `Linear`).

use super::super::kernels::tape::{custom_op, host, KernelDevice, Mat};
use super::super::BackendError;
use super::jvp::ActivationJvp;
use crate::plan::Activation;
use dfdx::prelude::*;

pub(crate) fn forward<D: KernelDevice, T: Tape<f32, D>>(
    kind: Activation,
    x: Mat<D, T>,
) -> Result<Mat<D, T>, BackendError> {
    if D::HOST {
        let rows = x.shape().0;
        forward_stacked(kind, x, rows)
    } else {
        forward_ops(kind, x)
    }
}

/// The activation written with dfdx's own operations, for devices without
/// host buffers; it computes what the fused kernels compute.
pub(crate) fn forward_ops<D: KernelDevice, T: Tape<f32, D>>(
    kind: Activation,
    x: Mat<D, T>,
) -> Result<Mat<D, T>, BackendError> {
    let y = match kind {
        Activation::Tanh => x.try_tanh(),
        Activation::Relu => x.try_relu(),
        Activation::Sigmoid => x.try_sigmoid(),
        Activation::Swish => x.retaped::<T>().try_sigmoid().and_then(|s| x.try_mul(s)),
        // log(1 + eˣ) = log(1 + e^min(x, 20)) + max(x − 20, 0): above 20 the
        // first term is 20 to f32 precision, so eˣ never overflows, and unlike
        // max(x, 0) + log(1 + e^−|x|) the gradient σ(x) is also right at x = 0.
        Activation::Softplus => x
            .retaped::<T>()
            .try_clamp(f32::MIN, SOFTPLUS_LINEAR)
            .and_then(|c| c.try_exp())
            .and_then(|e| e.try_add(1.0))
            .and_then(|e| e.try_ln())
            .and_then(|log| {
                let linear = x.try_sub(SOFTPLUS_LINEAR)?.try_relu()?;
                log.try_add(linear)
            }),
    };
    y.map_err(BackendError::device)
}

/// Where the portable softplus switches from log(1 + eˣ) to x.
const SOFTPLUS_LINEAR: f32 = 20.0;

/// The activation on a stacked batch whose first `values` rows are values and
/// the rest tangents (see [`super::jvp`]), with the fused host kernels.
pub(crate) fn forward_stacked<D: KernelDevice, T: Tape<f32, D>>(
    kind: Activation,
    x: Mat<D, T>,
    values: usize,
) -> Result<Mat<D, T>, BackendError> {
    let cols = x.shape().1;
    let mut y = host(&x);
    let act = ActivationJvp::forward(kind, &mut y, cols, values, None, T::OWNS_TAPE);
    custom_op(x, y, cols, move |mut grad_out, grads, input| {
        act.backward(&mut grad_out);
        let gx = grads.slice(input)?;
        gx.iter_mut().zip(&grad_out).for_each(|(gx, g)| *gx += g);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, check_gradients, random_matrix};
    use super::super::Layer;
    use super::*;

    #[test]
    fn values_and_gradients_match_dfdx_tanh_and_finite_differences() {
        let dev = Cpu::default();
        let x = dev.tensor_from_vec(random_matrix(4, 3, 5), (4, 3));
        let weights = dev.tensor_from_vec(random_matrix(4, 3, 6), (4, 3));
        let ours = forward(Activation::Tanh, x.leaky_trace()).unwrap();
        let theirs = x.leaky_trace().tanh();
        assert_close(&host(&ours), &host(&theirs), 1e-6);
        let g_ours = (ours * weights.clone()).sum().backward();
        let g_theirs = (theirs * weights).sum().backward();
        assert_close(&g_ours.get(&x).as_vec(), &g_theirs.get(&x).as_vec(), 1e-6);
        check_gradients(&mut Layer::<Cpu>::Activation(Activation::Swish), 4, 3);
    }

    #[test]
    fn portable_path_matches_the_fused_one_for_every_activation() {
        let dev = Cpu::default();
        // Large entries, both signs and exact zeros, around the switch of the
        // portable softplus and far past it.
        let mut xs: Vec<f32> = random_matrix(6, 4, 7).iter().map(|v| 12.0 * v).collect();
        xs[..6].copy_from_slice(&[0.0, SOFTPLUS_LINEAR, -30.0, 30.0, 95.0, -95.0]);
        let x = dev.tensor_from_vec(xs, (6, 4));
        let weights = dev.tensor_from_vec(random_matrix(6, 4, 8), (6, 4));
        for kind in [
            Activation::Tanh,
            Activation::Relu,
            Activation::Softplus,
            Activation::Swish,
            Activation::Sigmoid,
        ] {
            let fused = forward(kind, x.leaky_trace()).unwrap();
            let ops = forward_ops(kind, x.leaky_trace()).unwrap();
            assert_close(&host(&ops), &host(&fused), 1e-5);
            let g_fused = (fused * weights.clone()).sum().backward();
            let g_ops = (ops * weights.clone()).sum().backward();
            assert_close(&g_ops.get(&x).as_vec(), &g_fused.get(&x).as_vec(), 1e-5);
        }
    }
}
