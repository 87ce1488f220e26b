//! The Lagrangian head: a scalar MLP L(q, q̇) and the Euler–Lagrange
//! accelerations q̈ = M⁻¹[∇_qL − C q̇], M = ∇_q̇∇_q̇ᵀL, C = ∇_q̇∇_qᵀL, with the
//! parameter gradient of a loss on q̈ derived by hand.
//!
//! Derivatives travel forward with the value as extra rows ("channels") of the
//! same matrices: for a state of d = 2n components, channel 0 is the value,
//! channels 1…d the Jacobian columns ∂/∂xⱼ, and n·d more the Hessian entries
//! ∂²/∂q̇ᵢ∂xⱼ, the only ones the accelerations need. A dense layer maps every
//! channel by the same weight (bias on the value only), so each layer is one
//! product over all channels; an activation mixes the channels of one unit:
//! a = σ(z), ∂a = σ′∂z, ∂²a = σ′∂²z + σ″∂z∂z. The backward pass retraces this,
//! with σ‴ where it differentiates σ″. Channels are stored channel-major: rows
//! `c·B … c·B + B − 1` hold channel `c` of the B states.

use super::act::derivatives3;
use super::linalg::{matmul, solve_symmetric, T};
use super::mlp::{resize, Mlp};
use super::PhysicsError;
use crate::plan::Activation;

/// Forward values kept for the backward pass.
#[derive(Debug, Default)]
pub(crate) struct Work {
    /// Per hidden layer: pre-activation channels, activation channels, and σ′, σ″, σ‴ at the value.
    z: Vec<Vec<f32>>,
    a: Vec<Vec<f32>>,
    sigma: Vec<[Vec<f32>; 3]>,
    input: Vec<f32>,
    /// All channels of L.
    out: Vec<f32>,
    /// The solved accelerations, `rows × n`.
    qdd: Vec<f64>,
    da: Vec<f32>,
    dz: Vec<f32>,
}

/// Channel layout for states of n coordinates.
#[derive(Clone, Copy)]
struct Channels {
    n: usize,
}

impl Channels {
    fn d(self) -> usize {
        2 * self.n
    }
    fn count(self) -> usize {
        1 + self.d() + self.n * self.d()
    }
    fn jac(self, j: usize) -> usize {
        1 + j
    }
    /// ∂²/∂q̇ᵢ∂xⱼ.
    fn hess(self, i: usize, j: usize) -> usize {
        1 + self.d() + i * self.d() + j
    }
}

/// Runs the network on all channels; L's channels end in `work.out`.
fn forward(mlp: &Mlp, n: usize, x: &[f32], rows: usize, work: &mut Work) {
    let ch = Channels { n };
    let (d, c) = (ch.d(), ch.count());
    let input = resize(&mut work.input, c * rows * d);
    input.fill(0.0);
    input[..rows * d].copy_from_slice(&x[..rows * d]);
    for j in 0..d {
        for b in 0..rows {
            input[(ch.jac(j) * rows + b) * d + j] = 1.0;
        }
    }
    let hidden = mlp.layers() - 1;
    work.z.resize_with(hidden, Vec::new);
    work.a.resize_with(hidden, Vec::new);
    work.sigma.resize_with(hidden, Default::default);
    for l in 0..hidden {
        let (inp, out) = (mlp.sizes[l], mlp.sizes[l + 1]);
        let prev: &[f32] = if l == 0 { &work.input } else { &work.a[l - 1] };
        let z = resize(&mut work.z[l], c * rows * out);
        matmul(
            z,
            prev,
            T::N,
            mlp.weight(l),
            T::Y,
            (c * rows, out, inp),
            false,
        );
        for row in z[..rows * out].chunks_exact_mut(out) {
            row.iter_mut().zip(mlp.bias(l)).for_each(|(z, b)| *z += b);
        }
        let a = resize(&mut work.a[l], c * rows * out);
        let [s1, s2, s3] = &mut work.sigma[l];
        let (s1, s2, s3) = (
            resize(s1, rows * out),
            resize(s2, rows * out),
            resize(s3, rows * out),
        );
        activate_forward(mlp.act, ch, rows, out, z, a, [s1, s2, s3]);
    }
    let top: &[f32] = if hidden == 0 {
        &work.input
    } else {
        &work.a[hidden - 1]
    };
    let out = resize(&mut work.out, c * rows);
    matmul(
        out,
        top,
        T::N,
        mlp.weight(hidden),
        T::Y,
        (c * rows, 1, mlp.sizes[hidden]),
        false,
    );
    out[..rows]
        .iter_mut()
        .for_each(|v| *v += mlp.bias(hidden)[0]);
}

fn activate_forward(
    act: Activation,
    ch: Channels,
    rows: usize,
    width: usize,
    z: &[f32],
    a: &mut [f32],
    s: [&mut [f32]; 3],
) {
    let (d, n) = (ch.d(), ch.n);
    let block = rows * width;
    let [s1, s2, s3] = s;
    for e in 0..block {
        let [v, d1, d2, d3] = derivatives3(act, z[e]);
        a[e] = v;
        (s1[e], s2[e], s3[e]) = (d1, d2, d3);
        for j in 0..d {
            a[ch.jac(j) * block + e] = d1 * z[ch.jac(j) * block + e];
        }
        for i in 0..n {
            let zi = z[ch.jac(n + i) * block + e];
            for j in 0..d {
                let h = ch.hess(i, j) * block + e;
                a[h] = d1 * z[h] + d2 * zi * z[ch.jac(j) * block + e];
            }
        }
    }
}

/// Assembles M, C and ∇_qL of state `b` from L's channels.
fn mechanics(ch: Channels, out: &[f32], rows: usize, b: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = ch.n;
    let at = |c: usize| f64::from(out[c * rows + b]);
    let mut m = vec![0.0; n * n];
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            // Symmetrised: the two mixed partials agree only up to rounding.
            m[i * n + k] = 0.5 * (at(ch.hess(i, n + k)) + at(ch.hess(k, n + i)));
            c[i * n + k] = at(ch.hess(i, k));
        }
    }
    let gq = (0..n).map(|k| at(ch.jac(k))).collect();
    (m, c, gq)
}

/// q̈ at every state into `work.qdd`.
fn accelerations(
    mlp: &Mlp,
    n: usize,
    x: &[f32],
    rows: usize,
    damping: f64,
    work: &mut Work,
) -> Result<(), PhysicsError> {
    forward(mlp, n, x, rows, work);
    let ch = Channels { n };
    work.qdd.resize(rows * n, 0.0);
    for b in 0..rows {
        let (mut m, c, mut rhs) = mechanics(ch, &work.out, rows, b);
        let qd = &x[b * 2 * n + n..(b + 1) * 2 * n];
        for i in 0..n {
            rhs[i] -= (0..n).map(|k| c[i * n + k] * f64::from(qd[k])).sum::<f64>();
        }
        solve_symmetric(&mut m, &mut rhs, n, damping).map_err(|s| PhysicsError::SingularMass {
            state: b,
            row: s.row,
            pivot: s.pivot,
        })?;
        work.qdd[b * n..(b + 1) * n].copy_from_slice(&rhs);
    }
    Ok(())
}

/// The field (q̇, q̈) at every state.
pub(crate) fn field(
    mlp: &Mlp,
    n: usize,
    x: &[f32],
    rows: usize,
    damping: f64,
    out: &mut [f32],
) -> Result<(), PhysicsError> {
    let mut work = Work::default();
    accelerations(mlp, n, x, rows, damping, &mut work)?;
    for b in 0..rows {
        let (state, f) = (
            &x[b * 2 * n..(b + 1) * 2 * n],
            &mut out[b * 2 * n..(b + 1) * 2 * n],
        );
        f[..n].copy_from_slice(&state[n..]);
        for i in 0..n {
            f[n + i] = work.qdd[b * n + i] as f32;
        }
    }
    Ok(())
}

/// Mean squared error of (q̇, q̈) against `y`, accumulating the parameter
/// gradient into `grad`. The q̇ half is the input itself and carries no gradient.
#[allow(clippy::too_many_arguments)]
pub(crate) fn loss_and_grad(
    mlp: &Mlp,
    n: usize,
    x: &[f32],
    y: &[f32],
    rows: usize,
    damping: f64,
    grad: &mut [f32],
    work: &mut Work,
) -> Result<f32, PhysicsError> {
    accelerations(mlp, n, x, rows, damping, work)?;
    let ch = Channels { n };
    let (d, c) = (ch.d(), ch.count());
    let scale = 2.0 / (rows * d) as f64;
    let mut loss = 0.0;
    // d(loss)/d(channels of L).
    let mut dout = vec![0.0f32; c * rows];
    for b in 0..rows {
        let (s, t) = (&x[b * d..(b + 1) * d], &y[b * d..(b + 1) * d]);
        loss += (0..n)
            .map(|i| f64::from(s[n + i] - t[i]).powi(2))
            .sum::<f64>();
        let qdd = &work.qdd[b * n..(b + 1) * n];
        let mut dr: Vec<f64> = (0..n).map(|i| qdd[i] - f64::from(t[n + i])).collect();
        loss += dr.iter().map(|r| r * r).sum::<f64>();
        dr.iter_mut().for_each(|r| *r *= scale);
        // q̈ = M⁻¹r: dr ← M⁻¹ dq̈ (M symmetric), dM = −dr q̈ᵀ, d(∇_qL) = dr, dC = −dr q̇ᵀ.
        let (mut m, _, _) = mechanics(ch, &work.out, rows, b);
        solve_symmetric(&mut m, &mut dr, n, damping).map_err(|e| PhysicsError::SingularMass {
            state: b,
            row: e.row,
            pivot: e.pivot,
        })?;
        for i in 0..n {
            dout[ch.jac(i) * rows + b] = dr[i] as f32;
            for k in 0..n {
                dout[ch.hess(i, k) * rows + b] = (-dr[i] * f64::from(s[n + k])) as f32;
                // M was symmetrised from both mixed partials.
                let dm = -0.5 * (dr[i] * qdd[k] + dr[k] * qdd[i]);
                dout[ch.hess(i, n + k) * rows + b] += (0.5 * dm) as f32;
                dout[ch.hess(k, n + i) * rows + b] += (0.5 * dm) as f32;
            }
        }
    }
    backward(mlp, ch, rows, &dout, grad, work);
    Ok((loss / (rows * d) as f64) as f32)
}

/// Back-propagates `dout` (the loss gradient on L's channels) to the parameters.
fn backward(mlp: &Mlp, ch: Channels, rows: usize, dout: &[f32], grad: &mut [f32], work: &mut Work) {
    let c = ch.count();
    let hidden = mlp.layers() - 1;
    let top: &[f32] = if hidden == 0 {
        &work.input
    } else {
        &work.a[hidden - 1]
    };
    let width = mlp.sizes[hidden];
    let (w, b) = mlp.offsets(hidden);
    matmul(
        &mut grad[w..b],
        dout,
        T::Y,
        top,
        T::N,
        (1, width, c * rows),
        true,
    );
    grad[b] += dout[..rows].iter().sum::<f32>();
    let da = resize(&mut work.da, c * rows * width);
    matmul(
        da,
        dout,
        T::N,
        mlp.weight(hidden),
        T::N,
        (c * rows, width, 1),
        false,
    );
    for l in (0..hidden).rev() {
        let (inp, out) = (mlp.sizes[l], mlp.sizes[l + 1]);
        let dz = resize(&mut work.dz, c * rows * out);
        let [s1, s2, s3] = &work.sigma[l];
        activate_backward(ch, rows, out, &work.z[l], [s1, s2, s3], &work.da, dz);
        let prev: &[f32] = if l == 0 { &work.input } else { &work.a[l - 1] };
        let (w, b) = mlp.offsets(l);
        matmul(
            &mut grad[w..b],
            dz,
            T::Y,
            prev,
            T::N,
            (out, inp, c * rows),
            true,
        );
        for row in dz[..rows * out].chunks_exact(out) {
            grad[b..b + out]
                .iter_mut()
                .zip(row)
                .for_each(|(g, d)| *g += d);
        }
        if l > 0 {
            let da = resize(&mut work.da, c * rows * inp);
            matmul(
                da,
                &work.dz,
                T::N,
                mlp.weight(l),
                T::N,
                (c * rows, inp, out),
                false,
            );
        }
    }
}

/// dz from da through a = σ(z), ∂a = σ′∂z, ∂²a = σ′∂²z + σ″∂z∂z.
fn activate_backward(
    ch: Channels,
    rows: usize,
    width: usize,
    z: &[f32],
    s: [&[f32]; 3],
    da: &[f32],
    dz: &mut [f32],
) {
    let (d, n) = (ch.d(), ch.n);
    let block = rows * width;
    let [s1, s2, s3] = s;
    for e in 0..block {
        let (d1, d2, d3) = (s1[e], s2[e], s3[e]);
        let jz = |j: usize| z[ch.jac(j) * block + e];
        let mut dv = da[e] * d1;
        for j in 0..d {
            let g = da[ch.jac(j) * block + e];
            dv += g * d2 * jz(j);
            dz[ch.jac(j) * block + e] = g * d1;
        }
        for i in 0..n {
            let zi = jz(n + i);
            for j in 0..d {
                let h = ch.hess(i, j) * block + e;
                let g = da[h];
                dv += g * (d2 * z[h] + d3 * zi * jz(j));
                dz[h] = g * d1;
                dz[ch.jac(j) * block + e] += g * d2 * zi;
                dz[ch.jac(n + i) * block + e] += g * d2 * jz(j);
            }
        }
        dz[e] = dv;
    }
}
