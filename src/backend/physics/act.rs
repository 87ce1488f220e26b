//! The third derivative of an activation: differentiating a loss on a Hessian
//! (the Lagrangian head) needs σ‴ on top of the σ, σ′, σ″ the shared kernels
//! provide.

use crate::backend::kernels::activation::{derivatives, exp};
use crate::plan::Activation;

/// `[σ, σ′, σ″, σ‴]` at `z`.
#[inline(always)]
pub(crate) fn derivatives3(kind: Activation, z: f32) -> [f32; 4] {
    let (v, d1, d2) = derivatives(kind, z);
    let d3 = match kind {
        // σ′ = 1 − σ²
        Activation::Tanh => -2.0 * d1 * (1.0 - 3.0 * v * v),
        // σ′ = σ(1 − σ)
        Activation::Sigmoid => d1 * (1.0 - 6.0 * v + 6.0 * v * v),
        // σ′ is the logistic function s, σ″ = s(1 − s)
        Activation::Softplus => d2 * (1.0 - 2.0 * d1),
        Activation::Swish => {
            let s = 1.0 / (1.0 + exp(-z));
            let (u, w) = (s * (1.0 - s), 1.0 - 2.0 * s);
            u * (w * (3.0 + z * w) - 2.0 * z * u)
        }
        Activation::Relu => 0.0,
    };
    [v, d1, d2, d3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn third_derivative_matches_central_differences_of_the_second() {
        let h = 1e-2;
        for act in [
            Activation::Tanh,
            Activation::Softplus,
            Activation::Sigmoid,
            Activation::Swish,
            Activation::Relu,
        ] {
            for &z in &[-3.1f32, -0.7, -0.05, 0.3, 1.4, 4.2] {
                let d3 = derivatives3(act, z)[3];
                let fd = (derivatives3(act, z + h)[2] - derivatives3(act, z - h)[2]) / (2.0 * h);
                assert!(
                    (fd - d3).abs() < 2e-3 * (1.0 + d3.abs()),
                    "{act:?} at {z}: {fd} vs {d3}"
                );
            }
        }
    }
}
