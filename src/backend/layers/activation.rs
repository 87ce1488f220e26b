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
    let rows = x.shape().0;
    forward_stacked(kind, x, rows)
}

/// The activation on a stacked batch whose first `values` rows are values and
/// the rest tangents (see [`super::jvp`]).
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
}
