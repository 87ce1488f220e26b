//! `Linear`, optionally fused with the activation that follows it.

use super::super::kernels::gemm::{add_column_sums, matmul, MatMut, MatRef};
use super::super::kernels::tape::{custom_op, host, KernelDevice, Mat};
use super::super::params::Draw;
use super::super::params::Param;
use super::super::BackendError;
use super::activation;
use super::jvp::ActivationJvp;
use crate::plan::{Activation, LinearInit};
use dfdx::prelude::*;
use rand::rngs::StdRng;

/// y = σ(x·Wᵀ + b), W stored `out × inp` (row `o` holds the weights into output `o`).
///
/// Parameters are named `n{id}.weight` (shape `[out, inp]`) and `n{id}.bias`
/// (`[out]`). Initialised as the op says: by default as PyTorch does,
/// W, b ~ U(±1/√inp).
pub(crate) struct Linear<D: KernelDevice> {
    weight: Param<D>,
    bias: Option<Param<D>>,
    act: Option<Activation>,
    inp: usize,
    out: usize,
}

impl<D: KernelDevice> Linear<D> {
    pub(crate) fn new(
        device: &D,
        node: usize,
        (inp, out, bias, init): (usize, usize, bool, LinearInit),
        rng: &mut StdRng,
    ) -> Result<Self, BackendError> {
        let bound = 1.0 / (inp.max(1) as f32).sqrt();
        let (weights, biases) = match init {
            LinearInit::Uniform => (Draw::Uniform(bound), Draw::Uniform(bound)),
            LinearInit::Xavier => (
                Draw::Normal((2.0 / (inp + out).max(1) as f32).sqrt()),
                Draw::Zero,
            ),
        };
        let weight = Param::new(
            device,
            format!("n{node}.weight"),
            vec![out, inp],
            weights,
            rng,
        )?;
        let bias = if bias {
            Some(Param::new(
                device,
                format!("n{node}.bias"),
                vec![out],
                biases,
                rng,
            )?)
        } else {
            None
        };
        Ok(Linear {
            weight,
            bias,
            act: None,
            inp,
            out,
        })
    }

    /// Applies `act` to the output in the same pass.
    pub(crate) fn fuse(&mut self, act: Activation) {
        self.act = Some(act);
    }

    pub(crate) fn out_width(&self) -> usize {
        self.out
    }

    pub(crate) fn params(&self) -> impl Iterator<Item = &Param<D>> {
        std::iter::once(&self.weight).chain(&self.bias)
    }

    pub(crate) fn params_mut(&mut self) -> impl Iterator<Item = &mut Param<D>> {
        std::iter::once(&mut self.weight).chain(&mut self.bias)
    }

    pub(crate) fn forward<T: Tape<f32, D>>(&self, x: Mat<D, T>) -> Result<Mat<D, T>, BackendError> {
        if D::HOST {
            let rows = x.shape().0;
            self.forward_stacked(x, rows)
        } else {
            self.forward_ops(x)
        }
    }

    /// The layer written with dfdx's own operations (a matmul, a broadcast
    /// bias and [`activation::forward_ops`]), for devices without host buffers.
    pub(crate) fn forward_ops<T: Tape<f32, D>>(
        &self,
        x: Mat<D, T>,
    ) -> Result<Mat<D, T>, BackendError> {
        let y = self.affine_ops(x).map_err(BackendError::device)?;
        match self.act {
            Some(kind) => activation::forward_ops(kind, y),
            None => Ok(y),
        }
    }

    /// x·Wᵀ + b with dfdx's operations.
    fn affine_ops<T: Tape<f32, D>>(&self, x: Mat<D, T>) -> Result<Mat<D, T>, D::Err> {
        let shape = (x.shape().0, self.out);
        // Reshaping and transposing the contiguous flat weight only relabel
        // it, so its gradient lands in the parameter's own buffer.
        let wt = self
            .weight
            .traced::<T>()
            .try_reshape_like(&(self.out, self.inp))?
            .try_permute::<_, Axes2<1, 0>>()?;
        let y = x.try_matmul(wt)?;
        match &self.bias {
            Some(b) => y.try_add(b.traced::<T>().try_broadcast_like::<_, Axis<0>>(&shape)?),
            None => Ok(y),
        }
    }

    /// The layer on a stacked batch whose first `values` rows are values and
    /// the rest tangents (see [`super::jvp`]): tangents get W but not b, and
    /// through the activation σ′(z) ⊙ t. One fused host operation.
    pub(crate) fn forward_stacked<T: Tape<f32, D>>(
        &self,
        x: Mat<D, T>,
        values: usize,
    ) -> Result<Mat<D, T>, BackendError> {
        let (rows, inp, out) = (x.shape().0, self.inp, self.out);
        let xs = host(&x);
        let w = self.weight.values();
        let b = self.bias.as_ref().map(Param::values);
        let mut y = vec![0.0; rows * out];
        let product = MatMut::new(&mut y, rows, out);
        matmul(
            MatRef::new(&xs, rows, inp),
            MatRef::new(&w, out, inp).t(),
            product,
            false,
        );
        let act = self.act.map(|kind| {
            ActivationJvp::forward(kind, &mut y, out, values, b.as_deref(), T::OWNS_TAPE)
        });
        if let (None, Some(b)) = (&act, &b) {
            for row in y[..values * out].chunks_exact_mut(out) {
                row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
            }
        }
        let weight = self.weight.handle();
        let bias = self.bias.as_ref().map(Param::handle);
        custom_op(x, y, out, move |mut g, grads, input| {
            if let Some(act) = &act {
                act.backward(&mut g);
            }
            let gm = MatRef::new(&g, rows, out);
            let dw = MatMut::new(grads.slice(&weight)?, out, inp);
            matmul(gm.t(), MatRef::new(&xs, rows, inp), dw, true);
            if let Some(bias) = &bias {
                add_column_sums(&g[..values * out], out, grads.slice(bias)?);
            }
            let dx = MatMut::new(grads.slice(input)?, rows, inp);
            matmul(gm, MatRef::new(&w, out, inp), dx, true);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, check_gradients, random_matrix};
    use super::super::Layer;
    use super::*;
    use rand::SeedableRng;

    const ACTS: [Activation; 5] = [
        Activation::Tanh,
        Activation::Relu,
        Activation::Softplus,
        Activation::Swish,
        Activation::Sigmoid,
    ];

    fn layer(act: Option<Activation>, bias: bool) -> Linear<Cpu> {
        let mut rng = StdRng::seed_from_u64(7);
        let shape = (5, 4, bias, LinearInit::Uniform);
        let mut l = Linear::new(&Cpu::seed_from_u64(0), 3, shape, &mut rng).unwrap();
        if let Some(a) = act {
            l.fuse(a);
        }
        l
    }

    /// Sample moments against the two schemes' closed forms: U(±1/√n) has
    /// variance 1/(3n), Glorot's normal 2/(n + m) with a zero bias.
    #[test]
    fn both_initialisations_have_their_scales() {
        let (inp, out) = (300, 100);
        let moments = |init| {
            let mut rng = StdRng::seed_from_u64(1);
            let l = Linear::new(&Cpu::default(), 1, (inp, out, true, init), &mut rng).unwrap();
            let [w, b] = [l.weight.values(), l.bias.unwrap().values()];
            let var =
                |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / v.len() as f64;
            (
                var(&w),
                var(&b),
                w.iter().all(|x| x.abs() * (inp as f32).sqrt() <= 1.0),
            )
        };
        let (w, b, bounded) = moments(LinearInit::Uniform);
        let uniform = 1.0 / (3.0 * inp as f64);
        assert!((w / uniform - 1.0).abs() < 0.03 && (b / uniform - 1.0).abs() < 0.3 && bounded);
        let (w, b, bounded) = moments(LinearInit::Xavier);
        assert!((w / (2.0 / (inp + out) as f64) - 1.0).abs() < 0.03, "{w}");
        assert!(b == 0.0 && !bounded);
    }

    #[test]
    fn portable_path_matches_the_fused_one_in_values_and_all_gradients() {
        let dev = Cpu::default();
        for act in ACTS.map(Some).into_iter().chain([None]) {
            for bias in [true, false] {
                let l = layer(act, bias);
                // Inputs wide enough to reach every branch of the activations.
                let xs: Vec<f32> = random_matrix(6, 5, 11).iter().map(|v| 8.0 * v).collect();
                let x = dev.tensor_from_vec(xs, (6, 5));
                // A weighted sum makes every output's gradient different.
                let weights = dev.tensor_from_vec(random_matrix(6, 4, 12), (6, 4));
                let fused = l.forward(x.leaky_trace()).unwrap();
                let ops = l.forward_ops(x.leaky_trace()).unwrap();
                assert_close(&host(&ops), &host(&fused), 1e-5);
                let g_fused = (fused * weights.clone()).sum().backward();
                let g_ops = (ops * weights).sum().backward();
                let handles = l.params().map(Param::handle).collect::<Vec<_>>();
                assert_eq!(handles.len(), 1 + usize::from(bias));
                for p in &handles {
                    assert_close(&g_ops.get(p).as_vec(), &g_fused.get(p).as_vec(), 1e-5);
                }
                assert_close(&g_ops.get(&x).as_vec(), &g_fused.get(&x).as_vec(), 1e-5);
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for act in [
            Activation::Tanh,
            Activation::Softplus,
            Activation::Swish,
            Activation::Sigmoid,
        ] {
            check_gradients(&mut Layer::Linear(layer(Some(act), true)), 6, 5);
        }
    }
}
