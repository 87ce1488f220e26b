//! Forward-mode derivatives through dense layers, as operations on the tape.
//!
//! A *stacked* batch holds `1 + k` blocks of `n` rows: the values h, then k
//! tangents t₁…t_k, the derivatives of h along k directions of the input. A
//! linear map acts on every block alike, its bias on the values alone; an
//! activation maps (z, tᵢ) to (σ(z), σ′(z) ⊙ tᵢ). Each such op records its
//! backward on the first-order tape — through σ″ for the tangents — so the
//! gradient of a loss on J_f·v with respect to the parameters needs no double
//! backward. A plain batch is a stacked one with no tangents (`n` = all rows).

use super::super::kernels::activation::{bias_act, Derivatives};
use crate::plan::Activation;

/// What the backward pass of a stacked activation needs.
pub(super) struct ActivationJvp {
    /// σ′(z) on the value block.
    first: Vec<f32>,
    /// σ″(z) on the value block; empty when there are no tangents.
    second: Vec<f32>,
    /// The tangents before the activation.
    tangents: Vec<f32>,
}

impl ActivationJvp {
    /// Applies `kind` in place to the stacked rows `y` (`cols` wide, the first
    /// `values` rows being the value block), after adding `bias` to the value
    /// block. Keeps what the backward pass needs only when `keep` is set.
    pub(super) fn forward(
        kind: Activation,
        y: &mut [f32],
        cols: usize,
        values: usize,
        bias: Option<&[f32]>,
        keep: bool,
    ) -> Self {
        let (head, tangents) = y.split_at_mut(values * cols);
        let has_tangents = !tangents.is_empty();
        let mut first = if keep || has_tangents {
            vec![0.0; head.len()]
        } else {
            Vec::new()
        };
        let mut second = if keep && has_tangents {
            vec![0.0; head.len()]
        } else {
            Vec::new()
        };
        if !head.is_empty() {
            let derivatives = Derivatives {
                first: (!first.is_empty()).then_some(&mut first[..]),
                second: (!second.is_empty()).then_some(&mut second[..]),
            };
            bias_act(kind, head, cols, bias, derivatives);
        }
        let kept = if keep { tangents.to_vec() } else { Vec::new() };
        for block in tangents.chunks_exact_mut(head.len().max(1)) {
            block.iter_mut().zip(&first).for_each(|(t, d)| *t *= d);
        }
        ActivationJvp {
            first,
            second,
            tangents: kept,
        }
    }

    /// Turns the gradient with respect to the activation's output (stacked
    /// like its input) into the gradient with respect to its input, in place:
    /// g₀ ← g₀ ⊙ σ′ + Σᵢ gᵢ ⊙ σ″ ⊙ tᵢ for the values, gᵢ ← gᵢ ⊙ σ′ for the tangents.
    pub(super) fn backward(&self, g: &mut [f32]) {
        let size = self.first.len();
        let (head, tangents) = g.split_at_mut(size);
        head.iter_mut().zip(&self.first).for_each(|(g, d)| *g *= d);
        if size == 0 {
            return;
        }
        for (gt, t) in tangents
            .chunks_exact(size)
            .zip(self.tangents.chunks_exact(size))
        {
            for (((h, g), d2), t) in head.iter_mut().zip(gt).zip(&self.second).zip(t) {
                *h += g * d2 * t;
            }
        }
        for block in tangents.chunks_exact_mut(size) {
            block.iter_mut().zip(&self.first).for_each(|(g, d)| *g *= d);
        }
    }
}
