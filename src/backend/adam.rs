//! Adam with decoupled weight decay (AdamW, Loshchilov & Hutter 2019, in
//! PyTorch's form): each step first shrinks the weights,
//! `θ ← θ·(1 − lr·λ)`, then takes the bias-corrected Adam step
//! `θ ← θ − lr·m̂/(√v̂ + ε)`. The decay does not pass through the moment
//! estimates, so it is the same for every parameter whatever its gradient scale.
//!
//! With a clip norm c, a step whose whole gradient has norm ‖g‖ > c uses
//! g·c/‖g‖ instead. Adam's step is scale-free, so clipping matters for what
//! one outlier gradient leaves in the second moment: unclipped, a single
//! spike (a Lagrangian network near a singular mass matrix gives them)
//! inflates v for thousands of steps and every later step all but stops.

use rayon::prelude::*;

/// Optimiser state for a list of parameter buffers.
#[derive(Debug, Clone)]
pub(crate) struct AdamW {
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    clip: Option<f64>,
    /// The factor this step's gradients are multiplied by (clipping).
    scale: f32,
    step: i32,
    moments: Vec<(Vec<f32>, Vec<f32>)>,
}

impl AdamW {
    /// State for parameters of the given lengths, with the usual β = (0.9, 0.999), ε = 1e-8,
    /// clipping the gradient's norm to `clip` when given.
    pub(crate) fn new(
        lengths: impl IntoIterator<Item = usize>,
        weight_decay: f64,
        clip: Option<f64>,
    ) -> Self {
        AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: weight_decay as f32,
            clip,
            scale: 1.0,
            step: 0,
            moments: lengths
                .into_iter()
                .map(|n| (vec![0.0; n], vec![0.0; n]))
                .collect(),
        }
    }

    /// Starts a step whose gradient buffers have `squared_norm` as the sum of
    /// their squared entries (see [`squared_norm`]): advances the step counter
    /// used for bias correction and sets the clipping factor.
    pub(crate) fn begin_step(&mut self, squared_norm: f64) {
        self.step = self.step.saturating_add(1);
        let norm = squared_norm.sqrt();
        self.scale = match self.clip {
            Some(c) if norm > c => (c / norm) as f32,
            _ => 1.0,
        };
    }

    /// Updates parameter `index` in place from its gradient, with learning rate `lr`.
    pub(crate) fn update(&mut self, index: usize, theta: &mut [f32], grad: &[f32], lr: f64) {
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        let lr = lr as f32;
        let correction1 = 1.0 - b1.powi(self.step);
        let correction2 = 1.0 - b2.powi(self.step);
        let shrink = 1.0 - lr * self.weight_decay;
        let step_size = lr / correction1;
        let inv_sqrt_c2 = 1.0 / correction2.sqrt();
        let (m, v) = &mut self.moments[index];
        let scale = self.scale;
        // Element by element, so blocks on different threads give the same bits.
        theta
            .par_chunks_mut(PAR_LEN)
            .zip(grad.par_chunks(PAR_LEN))
            .zip(m.par_chunks_mut(PAR_LEN))
            .zip(v.par_chunks_mut(PAR_LEN))
            .for_each(|(((theta, grad), m), v)| {
                for (((t, g), m), v) in theta.iter_mut().zip(grad).zip(m).zip(v) {
                    let g = g * scale;
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *t = *t * shrink - step_size * *m / (v.sqrt() * inv_sqrt_c2 + eps);
                }
            });
    }
}

/// Entries per parallel block of an elementwise pass over parameters or
/// gradients: a block is worth a thread's wake-up.
pub(crate) const PAR_LEN: usize = 1 << 15;

/// The sum of the squared entries of a gradient buffer, in f64: infinite or
/// NaN exactly when an entry is (an f32's square cannot overflow an f64).
/// Blocks are summed in parallel and then in order, so the bits do not
/// depend on the number of threads.
pub(crate) fn squared_norm(g: &[f32]) -> f64 {
    let block = |b: &[f32]| -> f64 { b.iter().map(|&v| f64::from(v) * f64::from(v)).sum() };
    if g.len() <= PAR_LEN {
        return block(g);
    }
    let blocks: Vec<f64> = g.par_chunks(PAR_LEN).map(block).collect();
    blocks.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_weight_by_lr_against_its_gradient_sign() {
        // After one step m̂ = g and v̂ = g², so the step is lr·g/(|g| + ε) ≈ lr·sign(g).
        let mut adam = AdamW::new([3], 0.0, None);
        let mut theta = vec![1.0, -2.0, 0.5];
        adam.begin_step(0.0);
        adam.update(0, &mut theta, &[0.3, -4.0, 1e3], 0.01);
        let expected = [0.99, -1.99, 0.49];
        for (t, e) in theta.iter().zip(expected) {
            assert!((t - e).abs() < 1e-6, "{t} vs {e}");
        }
    }

    #[test]
    fn decay_is_decoupled_from_the_gradient() {
        // With a zero gradient the Adam step vanishes and only θ·(1 − lr·λ) remains.
        let mut adam = AdamW::new([2], 0.1, None);
        let mut theta = vec![2.0, -1.0];
        adam.begin_step(0.0);
        adam.update(0, &mut theta, &[0.0, 0.0], 0.5);
        assert_eq!(theta, vec![2.0 * 0.95, -0.95]);
    }

    #[test]
    fn a_clipped_spike_leaves_the_second_moment_small() {
        // Step 1 sees a spike of norm 5·10⁴. Clipped to norm 1 it leaves v = 0.001·0.8²
        // instead of 0.001·(4·10⁴)². Once the momentum has forgotten it (0.9²⁰⁰ ≈ 10⁻⁹),
        // an ordinary gradient moves θ by about lr per step after the clipped spike and
        // by about 10⁻⁴·lr after the unclipped one, whose v decays only as 0.999ᵗ.
        let mut clipped = AdamW::new([2], 0.0, Some(1.0));
        let mut plain = AdamW::new([2], 0.0, None);
        let (mut a, mut b) = (vec![0.0f32; 2], vec![0.0f32; 2]);
        let spike = [3e4f32, 4e4];
        for (adam, theta) in [(&mut clipped, &mut a), (&mut plain, &mut b)] {
            adam.begin_step(squared_norm(&spike));
            adam.update(0, theta, &spike, 0.01);
        }
        let v = clipped.moments[0].1[1];
        assert!((v - 0.001 * 0.8 * 0.8).abs() < 1e-8, "{v}");
        let small = [0.0f32, -0.5];
        let mut moved = [0.0f32; 2];
        for (k, (adam, theta)) in [(&mut clipped, &mut a), (&mut plain, &mut b)]
            .into_iter()
            .enumerate()
        {
            for step in 0..300 {
                let before = theta[1];
                adam.begin_step(squared_norm(&small));
                adam.update(0, theta, &small, 0.01);
                if step >= 200 {
                    moved[k] += theta[1] - before;
                }
            }
        }
        // Under the norm the gradient is used as it is.
        assert_eq!(clipped.scale, 1.0);
        assert!(moved[0] > 0.5, "{moved:?}");
        assert!(moved[0] > 100.0 * moved[1].abs(), "{moved:?}");
    }

    #[test]
    fn matches_the_recurrence_over_several_steps() {
        let grads = [0.5f64, -0.2, 0.9, 0.1];
        let (lr, wd) = (0.05, 0.01);
        let mut adam = AdamW::new([1], wd, None);
        let mut theta = [0.7f32];
        let (mut t64, mut m, mut v) = (0.7f64, 0.0f64, 0.0f64);
        for (k, g) in grads.iter().enumerate() {
            adam.begin_step(0.0);
            adam.update(0, &mut theta, &[*g as f32], lr);
            m = 0.9 * m + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            let step = (k + 1) as i32;
            let (mh, vh) = (
                m / (1.0 - 0.9f64.powi(step)),
                v / (1.0 - 0.999f64.powi(step)),
            );
            t64 = t64 * (1.0 - lr * wd) - lr * mh / (vh.sqrt() + 1e-8);
        }
        assert!(
            (theta[0] as f64 - t64).abs() < 1e-6,
            "{} vs {t64}",
            theta[0]
        );
    }
}
