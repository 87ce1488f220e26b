//! A multilayer perceptron over one flat parameter vector, with the forward
//! cache and the value-path backward pass the heads share.

use super::linalg::{matmul, T};
use crate::backend::kernels::activation::{bias_act, Derivatives};
use crate::plan::Activation;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

/// Rows per parallel task of the elementwise passes: large enough to amortise
/// scheduling, small enough to split a 750-row batch between threads.
pub(crate) const PAR_ROWS: usize = 64;

/// How the weights of a head start: the IR's choice, read as it is.
pub use crate::plan::HeadInit as Init;

/// Dense layers `sizes[0] → sizes[1] → … → sizes[last]`, σ after every layer
/// but the last. Layer `l` stores its weight `sizes[l+1] × sizes[l]` (row-major)
/// followed by its bias. The parameters are owned (`Vec<f32>`) or borrowed
/// from a larger vector holding several networks (`&[f32]`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mlp<P = Vec<f32>> {
    pub(crate) sizes: Vec<usize>,
    pub(crate) act: Activation,
    pub(crate) params: P,
}

/// Hidden-layer values a, σ′ and σ″ of one forward pass (`rows × width` each).
#[derive(Debug, Default)]
pub(crate) struct Cache {
    pub(crate) a: Vec<Vec<f32>>,
    pub(crate) s: Vec<Vec<f32>>,
    pub(crate) t: Vec<Vec<f32>>,
}

/// Scratch for the value-path backward pass.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    dz: Vec<f32>,
    da: Vec<f32>,
}

/// Which derivatives of the activations a forward pass keeps in its [`Cache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// None: the outputs are all that is wanted.
    Values,
    /// σ′, for back-propagating through the values.
    Slopes,
    /// σ′ and σ″, for differentiating an input gradient.
    Curvatures,
}

/// `v` resized to `n` when `wanted`, else emptied.
fn kept(v: &mut Vec<f32>, wanted: bool, n: usize) -> Option<&mut [f32]> {
    if wanted {
        Some(resize(v, n))
    } else {
        v.clear();
        None
    }
}

/// Resizes a buffer without caring about its contents.
pub(crate) fn resize(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..n]
}

/// Resizes a buffer to `n` zeros: a gradient to accumulate into.
pub(crate) fn zeroed(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.clear();
    v.resize(n, 0.0);
    v
}

impl Mlp {
    pub(crate) fn new(sizes: Vec<usize>, act: Activation, init: Init, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let count = (0..sizes.len() - 1)
            .map(|l| sizes[l + 1] * (sizes[l] + 1))
            .sum();
        let mut params = Vec::with_capacity(count);
        let layers = sizes.len() - 1;
        let width = sizes.get(1).copied().unwrap_or(1) as f32;
        for l in 0..layers {
            let (fan_in, fan_out) = (sizes[l], sizes[l + 1]);
            match init {
                Init::Uniform => {
                    let bound = 1.0 / (fan_in as f32).sqrt();
                    params
                        .extend((0..fan_out * (fan_in + 1)).map(|_| rng.gen_range(-bound..bound)));
                }
                Init::Lnn => {
                    let c = if l == 0 {
                        2.2
                    } else if l + 1 == layers {
                        width
                    } else {
                        0.58 * l as f32
                    };
                    let normal = Normal::new(0.0, c / width.sqrt()).expect("finite positive std");
                    params.extend((0..fan_out * fan_in).map(|_| normal.sample(&mut rng)));
                    params.extend(std::iter::repeat(0.0).take(fan_out));
                }
            }
        }
        Mlp { sizes, act, params }
    }
}

impl<P: AsRef<[f32]>> Mlp<P> {
    pub(crate) fn layers(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Offsets of layer `l`'s weight and bias in the parameter vector.
    pub(crate) fn offsets(&self, l: usize) -> (usize, usize) {
        let start: usize = (0..l)
            .map(|i| self.sizes[i + 1] * (self.sizes[i] + 1))
            .sum();
        (start, start + self.sizes[l + 1] * self.sizes[l])
    }

    pub(crate) fn weight(&self, l: usize) -> &[f32] {
        let (w, b) = self.offsets(l);
        &self.params.as_ref()[w..b]
    }

    pub(crate) fn bias(&self, l: usize) -> &[f32] {
        let (_, b) = self.offsets(l);
        &self.params.as_ref()[b..b + self.sizes[l + 1]]
    }

    /// Runs the hidden layers on `x` (`rows × sizes[0]`), filling `cache`
    /// with the values and the derivatives `keep` asks for.
    pub(crate) fn forward_hidden(&self, x: &[f32], rows: usize, cache: &mut Cache, keep: Keep) {
        let hidden = self.layers() - 1;
        for v in [&mut cache.a, &mut cache.s, &mut cache.t] {
            v.resize_with(hidden, Vec::new);
        }
        for l in 0..hidden {
            let (inp, out) = (self.sizes[l], self.sizes[l + 1]);
            let (done, rest) = cache.a.split_at_mut(l);
            let prev: &[f32] = if l == 0 { x } else { &done[l - 1] };
            let a = resize(&mut rest[0], rows * out);
            matmul(a, prev, T::N, self.weight(l), T::Y, (rows, out, inp), false);
            // A derivative not kept is emptied, so that no later pass reads a stale one.
            let s = kept(&mut cache.s[l], keep != Keep::Values, rows * out);
            let t = kept(&mut cache.t[l], keep == Keep::Curvatures, rows * out);
            activate(self.act, a, s, t, self.bias(l));
        }
    }

    /// The last layer on the cached top hidden layer (or on `x` for a net
    /// without hidden layers): `rows × sizes[last]`.
    pub(crate) fn output(&self, x: &[f32], rows: usize, cache: &Cache, out: &mut [f32]) {
        let l = self.layers() - 1;
        let top: &[f32] = if l == 0 { x } else { &cache.a[l - 1] };
        let width = self.sizes[l + 1];
        matmul(
            out,
            top,
            T::N,
            self.weight(l),
            T::Y,
            (rows, width, self.sizes[l]),
            false,
        );
        let bias = self.bias(l);
        for row in out[..rows * width].chunks_exact_mut(width) {
            row.iter_mut().zip(bias).for_each(|(o, b)| *o += b);
        }
    }

    /// Values of the network at `rows` inputs (`rows × sizes[last]`).
    pub(crate) fn eval(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut cache = Cache::default();
        self.forward_hidden(x, rows, &mut cache, Keep::Values);
        let mut out = vec![0.0; rows * self.sizes[self.layers()]];
        self.output(x, rows, &cache, &mut out);
        out
    }

    /// Values of the network at `rows` inputs, keeping in `cache` what
    /// [`Mlp::backward`] needs.
    pub(crate) fn forward(&self, x: &[f32], rows: usize, cache: &mut Cache) -> Vec<f32> {
        self.forward_hidden(x, rows, cache, Keep::Slopes);
        let mut out = vec![0.0; rows * self.sizes[self.layers()]];
        self.output(x, rows, cache, &mut out);
        out
    }

    /// Forward and backward passes of the squared error `scale`/2·Σ(f(x) − y)²
    /// over `rows` rows: accumulates its parameter gradient into `grad` and
    /// returns Σ(f(x) − y)². `residual` is scratch for the output gradient.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn squared_error(
        &self,
        (x, y, rows): (&[f32], &[f32], usize),
        scale: f32,
        cache: &mut Cache,
        scratch: &mut Scratch,
        residual: &mut Vec<f32>,
        grad: &mut [f32],
    ) -> f64 {
        self.forward_hidden(x, rows, cache, Keep::Slopes);
        let d = resize(residual, y.len());
        self.output(x, rows, cache, d);
        let mut sse = 0.0;
        for (d, y) in d.iter_mut().zip(y) {
            let r = *d - y;
            // Squared in f32, as the layered runner's loss is: a residual whose
            // square overflows makes the loss infinite, and the error says so.
            sse += f64::from(r * r);
            *d = scale * r;
        }
        self.backward_value(x, rows, cache, self.layers() - 1, d, None, scratch, grad);
        sse
    }

    /// Back-propagates `d_out`, the loss gradient at the outputs of the
    /// [`Mlp::forward`] pass that filled `cache`: accumulates the parameters'
    /// gradient into `grad` and, when asked, writes the inputs' gradient into
    /// `d_input` (`rows × sizes[0]`), for a loss that reaches this network
    /// through another one.
    pub(crate) fn backward(
        &self,
        x: &[f32],
        rows: usize,
        cache: &Cache,
        d_out: &[f32],
        scratch: &mut Scratch,
        grad: &mut [f32],
        d_input: Option<&mut [f32]>,
    ) {
        self.backward_value(
            x,
            rows,
            cache,
            self.layers() - 1,
            d_out,
            None,
            scratch,
            grad,
        );
        if let Some(d_input) = d_input {
            let (inp, out) = (self.sizes[0], self.sizes[1]);
            // `backward_value` leaves the first layer's pre-activation gradient in `dz`.
            matmul(
                d_input,
                &scratch.dz[..rows * out],
                T::N,
                self.weight(0),
                T::N,
                (rows, inp, out),
                false,
            );
        }
    }

    /// Back-propagates `dz`, the loss gradient at the pre-activation of layer
    /// `top`, down to the input, accumulating into `grad` (laid out like the
    /// parameters). `extra[l]`, when given, is added to the pre-activation
    /// gradient of hidden layer `l` on the way: the part of the loss that
    /// reaches it through σ′ rather than through the value.
    pub(crate) fn backward_value(
        &self,
        x: &[f32],
        rows: usize,
        cache: &Cache,
        top: usize,
        dz_top: &[f32],
        extra: Option<&[Vec<f32>]>,
        scratch: &mut Scratch,
        grad: &mut [f32],
    ) {
        let dz = resize(&mut scratch.dz, rows * self.sizes[top + 1]);
        dz.copy_from_slice(&dz_top[..rows * self.sizes[top + 1]]);
        for l in (0..=top).rev() {
            let (inp, out) = (self.sizes[l], self.sizes[l + 1]);
            let dz = &scratch.dz[..rows * out];
            let input: &[f32] = if l == 0 { x } else { &cache.a[l - 1] };
            let (w, b) = self.offsets(l);
            matmul(
                &mut grad[w..b],
                dz,
                T::Y,
                input,
                T::N,
                (out, inp, rows),
                true,
            );
            for row in dz.chunks_exact(out) {
                grad[b..b + out]
                    .iter_mut()
                    .zip(row)
                    .for_each(|(g, d)| *g += d);
            }
            if l == 0 {
                break;
            }
            let da = resize(&mut scratch.da, rows * inp);
            matmul(da, dz, T::N, self.weight(l), T::N, (rows, inp, out), false);
            let s = &cache.s[l - 1];
            assert_eq!(
                s.len(),
                da.len(),
                "back-propagation needs a forward pass that kept σ′"
            );
            let chunk = PAR_ROWS * inp;
            match extra {
                Some(extra) => (da.par_chunks_mut(chunk))
                    .zip(s.par_chunks(chunk))
                    .zip(extra[l - 1].par_chunks(chunk))
                    .for_each(|((da, s), e)| {
                        (da.iter_mut().zip(s).zip(e)).for_each(|((d, s), e)| *d = *d * s + e)
                    }),
                None => (da.par_chunks_mut(chunk))
                    .zip(s.par_chunks(chunk))
                    .for_each(|(da, s)| da.iter_mut().zip(s).for_each(|(d, s)| *d *= s)),
            }
            std::mem::swap(&mut scratch.dz, &mut scratch.da);
        }
    }
}

/// `v` cut into blocks of `chunk`, or `n` empty blocks without it.
fn blocks(v: Option<&mut [f32]>, chunk: usize, n: usize) -> Vec<Option<&mut [f32]>> {
    match v {
        Some(v) => v.chunks_mut(chunk).map(Some).collect(),
        None => (0..n).map(|_| None).collect(),
    }
}

/// In place: `a` holds `z − b` on entry and σ(z) on exit; `s`, `t`, when
/// given, get σ′, σ″. Row blocks go to the thread pool.
fn activate(
    act: Activation,
    a: &mut [f32],
    s: Option<&mut [f32]>,
    t: Option<&mut [f32]>,
    bias: &[f32],
) {
    let chunk = PAR_ROWS * bias.len();
    let n = a.len().div_ceil(chunk.max(1));
    let s = blocks(s, chunk, n);
    let t = blocks(t, chunk, n);
    a.par_chunks_mut(chunk)
        .zip(s)
        .zip(t)
        .for_each(|((a, first), second)| {
            bias_act(
                act,
                a,
                bias.len(),
                Some(bias),
                Derivatives { first, second },
            )
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_matches_a_hand_written_network() {
        let mlp = Mlp::new(vec![2, 3, 1], Activation::Tanh, Init::Uniform, 7);
        let x = [0.4, -1.3];
        let (w1, b1, w2, b2) = (mlp.weight(0), mlp.bias(0), mlp.weight(1), mlp.bias(1));
        let h: Vec<f64> = (0..3)
            .map(|j| (w1[2 * j] as f64 * 0.4 - w1[2 * j + 1] as f64 * 1.3 + b1[j] as f64).tanh())
            .collect();
        let want: f64 = (0..3).map(|j| w2[j] as f64 * h[j]).sum::<f64>() + b2[0] as f64;
        assert!((mlp.eval(&x, 1)[0] as f64 - want).abs() < 1e-6);
    }

    /// Both gradients of [`Mlp::backward`] against central differences of
    /// ℓ = ⟨U, f(x)⟩, computed in f64 from the f32 network (hence the loose bound).
    #[test]
    fn backward_matches_finite_differences_in_parameters_and_inputs() {
        let mut mlp = Mlp::new(vec![3, 5, 4, 2], Activation::Tanh, Init::Uniform, 3);
        let rows = 4;
        let x: Vec<f32> = (0..rows * 3).map(|i| (i as f32 * 0.7).sin()).collect();
        let u: Vec<f32> = (0..rows * 2).map(|i| (i as f32 * 1.3).cos()).collect();
        let loss = |mlp: &Mlp, x: &[f32]| -> f64 {
            let out = mlp.eval(x, rows);
            out.iter().zip(&u).map(|(o, u)| f64::from(o * u)).sum()
        };
        let mut cache = Cache::default();
        mlp.forward(&x, rows, &mut cache);
        let mut grad = vec![0.0; mlp.params.len()];
        let mut d_input = vec![0.0; x.len()];
        mlp.backward(
            &x,
            rows,
            &cache,
            &u,
            &mut Scratch::default(),
            &mut grad,
            Some(&mut d_input),
        );
        let h = 1e-2;
        let close =
            |fd: f64, analytic: f32| (fd - f64::from(analytic)).abs() < 2e-3 * (1.0 + fd.abs());
        for i in 0..mlp.params.len() {
            let keep = mlp.params[i];
            mlp.params[i] = keep + h;
            let plus = loss(&mlp, &x);
            mlp.params[i] = keep - h;
            let minus = loss(&mlp, &x);
            mlp.params[i] = keep;
            let fd = (plus - minus) / (2.0 * f64::from(h));
            assert!(close(fd, grad[i]), "θ[{i}]: {fd} vs {}", grad[i]);
        }
        for i in 0..x.len() {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[i] += h;
            minus[i] -= h;
            let fd = (loss(&mlp, &plus) - loss(&mlp, &minus)) / (2.0 * f64::from(h));
            assert!(close(fd, d_input[i]), "x[{i}]: {fd} vs {}", d_input[i]);
        }
    }

    #[test]
    fn lnn_init_has_the_prescribed_scales() {
        let n = 400;
        let mlp = Mlp::new(vec![4, n, n, n, 1], Activation::Softplus, Init::Lnn, 1);
        let std = |l: usize| {
            let w = mlp.weight(l);
            (w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt()
        };
        let unit = 1.0 / (n as f64).sqrt();
        for (l, c) in [(0, 2.2), (1, 0.58), (2, 1.16), (3, n as f64)] {
            assert!(
                (std(l) / (c * unit) - 1.0).abs() < 0.1,
                "layer {l}: {}",
                std(l)
            );
            assert!(mlp.bias(l).iter().all(|b| *b == 0.0));
        }
    }
}
