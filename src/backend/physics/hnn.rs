//! The Hamiltonian head: a scalar MLP H(q, p) whose symplectic gradient
//! (∂H/∂p, −∂H/∂q) is the predicted time derivative, with the parameter
//! gradient of a loss on that field derived by hand (reverse over reverse).
//!
//! Notation for hidden layers j = 0…L−1: zⱼ = aⱼ₋₁Wⱼᵀ + bⱼ, aⱼ = σ(zⱼ),
//! sⱼ = σ′(zⱼ), tⱼ = σ″(zⱼ), a₋₁ = x, and H = a_{L−1}·w + c. The input gradient
//! runs backwards: e_{L−1} = w, gⱼ = eⱼ ⊙ sⱼ, eⱼ₋₁ = gⱼWⱼ, ∂H/∂x = g₀W₀. A loss
//! on ∂H/∂x is then differentiated through that chain (the `d·` quantities
//! below), which reaches each zⱼ through sⱼ (as dgⱼ ⊙ eⱼ ⊙ tⱼ), and finally
//! through the ordinary value path. Six products with the hidden weights per
//! step, the same count as autograd's double backward, but no graph.

use super::linalg::{matmul, T};
use super::mlp::{resize, zeroed, Cache, Keep, Mlp, Scratch, PAR_ROWS};
use super::Objective;
use crate::backend::Batch;
use rayon::prelude::*;

/// Buffers reused across steps.
#[derive(Debug, Default)]
pub(crate) struct Work {
    pub(crate) cache: Cache,
    /// gⱼ = ∂H/∂zⱼ.
    g: Vec<Vec<f32>>,
    /// eⱼ = ∂H/∂aⱼ for j < L−1 (e_{L−1} is the output weight).
    e: Vec<Vec<f32>>,
    /// ∂H/∂x, then the loss gradient with respect to it.
    gx: Vec<f32>,
    dg: Vec<f32>,
    dg_next: Vec<f32>,
    /// The loss gradient reaching zⱼ through sⱼ.
    dz2: Vec<Vec<f32>>,
    pub(crate) scratch: Scratch,
}

impl Work {
    /// ∂H/∂x from the last [`input_gradient`].
    pub(crate) fn gradient(&self) -> &[f32] {
        &self.gx
    }

    /// Where [`backward`] reads the loss gradient with respect to ∂H/∂x: it
    /// holds ∂H/∂x after [`input_gradient`], to be overwritten.
    pub(crate) fn gradient_mut(&mut self) -> &mut [f32] {
        &mut self.gx
    }
}

/// ∂H/∂x at `rows` states (`rows × sizes[0]`), left in `work.gx`.
pub(crate) fn input_gradient<P: AsRef<[f32]>>(
    mlp: &Mlp<P>,
    x: &[f32],
    rows: usize,
    work: &mut Work,
) {
    mlp.forward_hidden(x, rows, &mut work.cache, Keep::Curvatures);
    let hidden = mlp.layers() - 1;
    let cache = &work.cache;
    work.g.resize_with(hidden, Vec::new);
    work.e.resize_with(hidden - 1, Vec::new);
    let w = mlp.weight(hidden);
    let top = resize(&mut work.g[hidden - 1], rows * w.len());
    let chunk = PAR_ROWS * w.len();
    top.par_chunks_mut(chunk)
        .zip(cache.s[hidden - 1].par_chunks(chunk))
        .for_each(|(g, s)| {
            for (g, s) in g.chunks_exact_mut(w.len()).zip(s.chunks_exact(w.len())) {
                g.iter_mut()
                    .zip(s)
                    .zip(w)
                    .for_each(|((g, s), w)| *g = w * s)
            }
        });
    for j in (0..hidden - 1).rev() {
        let (inp, out) = (mlp.sizes[j + 1], mlp.sizes[j + 2]);
        let e = resize(&mut work.e[j], rows * inp);
        matmul(
            e,
            &work.g[j + 1],
            T::N,
            mlp.weight(j + 1),
            T::N,
            (rows, inp, out),
            false,
        );
        let g = resize(&mut work.g[j], rows * inp);
        let chunk = PAR_ROWS * inp;
        g.par_chunks_mut(chunk)
            .zip(e.par_chunks(chunk))
            .zip(cache.s[j].par_chunks(chunk))
            .for_each(|((g, e), s)| {
                g.iter_mut()
                    .zip(e)
                    .zip(s)
                    .for_each(|((g, e), s)| *g = e * s)
            });
    }
    let (d, h) = (mlp.sizes[0], mlp.sizes[1]);
    let gx = resize(&mut work.gx, rows * d);
    matmul(
        gx,
        &work.g[0],
        T::N,
        mlp.weight(0),
        T::N,
        (rows, d, h),
        false,
    );
}

/// Writes the symplectic gradient J∇H, J = [[0, I], [−I, 0]], of `grad_h`
/// (`rows × 2n`) into `field`.
pub(crate) fn symplectic(grad_h: &[f32], n: usize, field: &mut [f32]) {
    for (f, g) in field
        .chunks_exact_mut(2 * n)
        .zip(grad_h.chunks_exact(2 * n))
    {
        for i in 0..n {
            f[i] = g[n + i];
            f[n + i] = -g[i];
        }
    }
}

/// A Poisson-bracket penalty w·mean_b (∇H(x_b)·G x_b)² for a generator G of
/// a group acting linearly on phase space: ∇H·Gx is the rate at which H
/// changes along the group's flow, so driving it to zero makes H invariant and,
/// for a symplectic G, conserves the matching momentum (Noether).
#[derive(Debug, Clone, PartialEq)]
pub struct Bracket {
    pub weight: f64,
    /// The generator, `2n × 2n` row-major.
    pub generator: Vec<f32>,
}

impl Bracket {
    /// ∇H·Gx at one state, with Gx written into `gx`.
    fn rate(&self, grad_h: &[f32], x: &[f32], gx: &mut [f32]) -> f32 {
        for (v, row) in gx.iter_mut().zip(self.generator.chunks_exact(x.len())) {
            *v = row.iter().zip(x).map(|(a, x)| a * x).sum();
        }
        grad_h.iter().zip(&*gx).map(|(g, v)| g * v).sum()
    }
}

/// The weighted penalty of each bracket at `rows` states whose ∇H is `grad_h`.
pub(crate) fn brackets(brackets: &[Bracket], grad_h: &[f32], x: &[f32], rows: usize) -> Vec<f64> {
    let d = x.len() / rows.max(1);
    let mut gx = vec![0.0f32; d];
    brackets
        .iter()
        .map(|b| {
            let sum: f64 = grad_h
                .chunks_exact(d)
                .zip(x.chunks_exact(d))
                .map(|(g, x)| f64::from(b.rate(g, x, &mut gx)).powi(2))
                .sum();
            b.weight * sum / rows as f64
        })
        .collect()
}

/// Mean squared error of the field against `y` plus the `brackets`
/// penalties, accumulating the parameter gradient of their sum into `grad`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn loss_and_grad<P: AsRef<[f32]>>(
    mlp: &Mlp<P>,
    n: usize,
    x: &[f32],
    y: &[f32],
    rows: usize,
    brackets: &[Bracket],
    grad: &mut [f32],
    work: &mut Work,
) -> Objective {
    input_gradient(mlp, x, rows, work);
    let terms = objective_gradient(&mut work.gx, n, x, y, rows, brackets);
    backward(mlp, x, rows, grad, work);
    terms
}

/// Batches of at least this many rows are split in two halves whose passes
/// run in parallel, so that the two threads each run a whole pass and meet
/// once per step; a product or elementwise pass inside a half is still split
/// further when a thread is idle. The split depends on the batch alone, never
/// on the thread count, so the results do not either.
pub(crate) const SPLIT_ROWS: usize = 512;

/// The two halves' buffers of [`loss_and_grad_split`].
#[derive(Debug, Default)]
pub(crate) struct Halves {
    work: [Work; 2],
    grad: [Vec<f32>; 2],
}

/// [`loss_and_grad`] with a batch of at least [`SPLIT_ROWS`] rows split in two
/// halves on two threads: each half's objective and gradient are those of its
/// own mean, weighted by its share of the rows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn loss_and_grad_split<P: AsRef<[f32]> + Sync>(
    mlp: &Mlp<P>,
    n: usize,
    x: &[f32],
    y: &[f32],
    rows: usize,
    brackets: &[Bracket],
    grad: &mut [f32],
    halves: &mut Halves,
) -> Objective {
    if rows < SPLIT_ROWS {
        return loss_and_grad(mlp, n, x, y, rows, brackets, grad, &mut halves.work[0]);
    }
    let [(h0, a), (h1, b)] = Batch { x, y, rows }.halves();
    let [w0, w1] = &mut halves.work;
    let [g0, g1] = &mut halves.grad;
    let (g0, g1) = (zeroed(g0, grad.len()), zeroed(g1, grad.len()));
    let (t0, t1) = rayon::join(
        || loss_and_grad(mlp, n, h0.x, h0.y, h0.rows, brackets, g0, w0),
        || loss_and_grad(mlp, n, h1.x, h1.y, h1.rows, brackets, g1, w1),
    );
    let (af, bf) = (a as f32, b as f32);
    grad.iter_mut()
        .zip(g0.iter().zip(g1.iter()))
        .for_each(|(g, (u, v))| *g += af * u + bf * v);
    Objective {
        mse: a * t0.mse + b * t1.mse,
        brackets: (t0.brackets.iter().zip(&t1.brackets))
            .map(|(u, v)| a * u + b * v)
            .collect(),
    }
}

/// The objective of a Hamiltonian head whose ∇H at the `rows` states `x` is
/// `grad_h` (`rows × 2n`): the mean squared error of its field against `y`
/// plus the `brackets` penalties. Both are functions of ∇H alone, so their
/// gradients with respect to ∇H are added and replace `grad_h`, ready for
/// one backward pass.
pub(crate) fn objective_gradient(
    grad_h: &mut [f32],
    n: usize,
    x: &[f32],
    y: &[f32],
    rows: usize,
    brackets: &[Bracket],
) -> Objective {
    let d = 2 * n;
    let scale = 2.0 / (rows * d) as f32;
    let mut terms = Objective {
        mse: 0.0,
        brackets: vec![0.0; brackets.len()],
    };
    let (mut gv, mut dg) = (vec![0.0f32; d], vec![0.0f32; d]);
    for ((g, y), x) in grad_h
        .chunks_exact_mut(d)
        .zip(y.chunks_exact(d))
        .zip(x.chunks_exact(d))
    {
        // Each bracket's gradient with respect to ∇H is 2w/rows·(∇H·Gx)·Gx.
        dg.fill(0.0);
        for (b, value) in brackets.iter().zip(&mut terms.brackets) {
            let c = b.rate(g, x, &mut gv);
            *value += b.weight * f64::from(c * c);
            let k = (2.0 * b.weight / rows as f64) as f32 * c;
            dg.iter_mut().zip(&gv).for_each(|(d, v)| *d += k * v);
        }
        // The field is (∂H/∂p, −∂H/∂q), so its residual r maps back through Jᵀ.
        for i in 0..n {
            let r_q = g[n + i] - y[i];
            let r_p = -g[i] - y[n + i];
            terms.mse += f64::from(r_q * r_q + r_p * r_p);
            dg[i] -= scale * r_p;
            dg[n + i] += scale * r_q;
        }
        g.copy_from_slice(&dg);
    }
    terms.mse /= (rows * d) as f64;
    terms.brackets.iter_mut().for_each(|v| *v /= rows as f64);
    terms
}

/// Back-propagates the loss gradient with respect to ∂H/∂x, held in
/// `work.gx` (see [`Work::gradient_mut`]), to the parameters, accumulating
/// into `grad`; `work` must hold the [`input_gradient`] pass at the same `x`.
pub(crate) fn backward<P: AsRef<[f32]>>(
    mlp: &Mlp<P>,
    x: &[f32],
    rows: usize,
    grad: &mut [f32],
    work: &mut Work,
) {
    let d = mlp.sizes[0];
    let hidden = mlp.layers() - 1;
    let cache = &work.cache;
    work.dz2.resize_with(hidden, Vec::new);
    // ∂H/∂x = g₀W₀.
    let h0 = mlp.sizes[1];
    let (w0, _) = mlp.offsets(0);
    matmul(
        &mut grad[w0..w0 + h0 * d],
        &work.g[0],
        T::Y,
        &work.gx,
        T::N,
        (h0, d, rows),
        true,
    );
    let dg = resize(&mut work.dg, rows * h0);
    matmul(
        dg,
        &work.gx,
        T::N,
        mlp.weight(0),
        T::Y,
        (rows, h0, d),
        false,
    );
    for j in 0..hidden {
        let width = mlp.sizes[j + 1];
        let dz2 = resize(&mut work.dz2[j], rows * width);
        let (s, t) = (&cache.s[j], &cache.t[j]);
        // gⱼ = eⱼ ⊙ sⱼ: split dgⱼ into deⱼ (in place) and the part through sⱼ.
        if j + 1 < hidden {
            let chunk = PAR_ROWS * width;
            (dz2.par_chunks_mut(chunk))
                .zip(work.dg.par_chunks_mut(chunk))
                .zip(work.e[j].par_chunks(chunk))
                .zip(s.par_chunks(chunk).zip(t.par_chunks(chunk)))
                .for_each(|(((dz2, dg), e), (s, t))| {
                    for i in 0..dz2.len() {
                        dz2[i] = dg[i] * e[i] * t[i];
                        dg[i] *= s[i];
                    }
                });
            let out = mlp.sizes[j + 2];
            let (wj, _) = mlp.offsets(j + 1);
            matmul(
                &mut grad[wj..wj + out * width],
                &work.g[j + 1],
                T::Y,
                &work.dg,
                T::N,
                (out, width, rows),
                true,
            );
            let next = resize(&mut work.dg_next, rows * out);
            matmul(
                next,
                &work.dg,
                T::N,
                mlp.weight(j + 1),
                T::Y,
                (rows, out, width),
                false,
            );
            std::mem::swap(&mut work.dg, &mut work.dg_next);
        } else {
            let w = mlp.weight(hidden);
            let (w_out, _) = mlp.offsets(hidden);
            let dw = &mut grad[w_out..w_out + width];
            for (((dz2, dg), s), t) in dz2
                .chunks_exact_mut(width)
                .zip(work.dg.chunks_exact(width))
                .zip(s.chunks_exact(width))
                .zip(t.chunks_exact(width))
            {
                for i in 0..width {
                    dz2[i] = dg[i] * w[i] * t[i];
                    dw[i] += dg[i] * s[i];
                }
            }
        }
    }
    let top = &work.dz2[hidden - 1];
    mlp.backward_value(
        x,
        rows,
        cache,
        hidden - 1,
        top,
        Some(&work.dz2),
        &mut work.scratch,
        grad,
    );
}
