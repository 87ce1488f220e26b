//! Activations with their first three derivatives, evaluated in one pass.
//!
//! The heads need σ′ for input gradients, σ″ to differentiate a loss on those
//! gradients (HNN) or to form Hessians (LNN), and σ‴ to differentiate a loss on
//! a Hessian. Each activation is a zero-sized type so the hot loops are
//! monomorphised per activation and vectorise; [`dispatch`] picks one from the
//! IR's [`Activation`].

/// σ and its derivatives at one point: `[σ, σ′, σ″, σ‴]`.
pub(crate) trait Act {
    fn eval(z: f32) -> [f32; 4];
}

pub(crate) struct Tanh;
pub(crate) struct Softplus;
pub(crate) struct Sigmoid;
pub(crate) struct Swish;
pub(crate) struct Relu;

/// Calls `$body` with the type alias `$a` bound to the activation type of `$act`.
macro_rules! dispatch {
    ($act:expr, $a:ident => $body:expr) => {
        match $act {
            $crate::plan::Activation::Tanh => {
                type $a = $crate::backend::physics::act::Tanh;
                $body
            }
            $crate::plan::Activation::Softplus => {
                type $a = $crate::backend::physics::act::Softplus;
                $body
            }
            $crate::plan::Activation::Sigmoid => {
                type $a = $crate::backend::physics::act::Sigmoid;
                $body
            }
            $crate::plan::Activation::Swish => {
                type $a = $crate::backend::physics::act::Swish;
                $body
            }
            $crate::plan::Activation::Relu => {
                type $a = $crate::backend::physics::act::Relu;
                $body
            }
        }
    };
}
pub(crate) use dispatch;

/// tanh as a clamped 13/6 rational function (the minimax fit Eigen uses): a few
/// multiply-adds and one division that vectorise, instead of a libm call per
/// element, which dominated a training step. Accurate to a few ulp on [−9, 9],
/// and ±1 in float32 outside.
#[inline(always)]
pub(crate) fn fast_tanh(x: f32) -> f32 {
    let x = x.clamp(-9.0, 9.0);
    let x2 = x * x;
    // Plain multiply-adds: `mul_add` becomes a libm call on targets without FMA.
    let mut p = -2.760_768_5e-16_f32;
    for c in [
        2.000_187_9e-13,
        -8.604_671_5e-11,
        5.122_297e-8,
        1.485_722_4e-5,
        6.372_619_3e-4,
        4.893_524_6e-3,
    ] {
        p = p * x2 + c;
    }
    let mut q = 1.198_258_4e-6_f32;
    for c in [1.185_347_1e-4, 2.268_434_6e-3, 4.893_525e-3] {
        q = q * x2 + c;
    }
    x * p / q
}

impl Act for Tanh {
    #[inline(always)]
    fn eval(z: f32) -> [f32; 4] {
        let t = fast_tanh(z);
        let d1 = 1.0 - t * t;
        [t, d1, -2.0 * t * d1, -2.0 * d1 * (1.0 - 3.0 * t * t)]
    }
}

/// The logistic function and exp(−|z|), computed without overflow.
#[inline(always)]
fn logistic(z: f32) -> (f32, f32) {
    let e = (-z.abs()).exp();
    let s = if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    (s, e)
}

impl Act for Softplus {
    #[inline(always)]
    fn eval(z: f32) -> [f32; 4] {
        let (s, e) = logistic(z);
        let u = s * (1.0 - s);
        [z.max(0.0) + e.ln_1p(), s, u, u * (1.0 - 2.0 * s)]
    }
}

impl Act for Sigmoid {
    #[inline(always)]
    fn eval(z: f32) -> [f32; 4] {
        let (s, _) = logistic(z);
        let u = s * (1.0 - s);
        [s, u, u * (1.0 - 2.0 * s), u * (1.0 - 6.0 * s + 6.0 * s * s)]
    }
}

impl Act for Swish {
    #[inline(always)]
    fn eval(z: f32) -> [f32; 4] {
        let (s, _) = logistic(z);
        let u = s * (1.0 - s);
        let v = 1.0 - 2.0 * s;
        [
            z * s,
            s + z * u,
            u * (2.0 + z * v),
            u * (v * (3.0 + z * v) - 2.0 * z * u),
        ]
    }
}

impl Act for Relu {
    #[inline(always)]
    fn eval(z: f32) -> [f32; 4] {
        let step = if z > 0.0 { 1.0 } else { 0.0 };
        [z * step, step, 0.0, 0.0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Activation;

    const ALL: [Activation; 5] = [
        Activation::Tanh,
        Activation::Softplus,
        Activation::Sigmoid,
        Activation::Swish,
        Activation::Relu,
    ];

    fn eval(act: Activation, z: f64) -> [f64; 4] {
        dispatch!(act, A => A::eval(z as f32).map(f64::from))
    }

    #[test]
    fn fast_tanh_matches_libm() {
        let worst = (-12_000..=12_000)
            .map(|i| i as f32 * 1e-3)
            .map(|x| (fast_tanh(x) as f64 - (x as f64).tanh()).abs())
            .fold(0.0, f64::max);
        assert!(worst < 5e-7, "max error {worst}");
    }

    #[test]
    fn derivatives_match_central_differences() {
        let h = 1e-2;
        for act in ALL {
            for &z in &[-3.1, -0.7, -0.05, 0.3, 1.4, 4.2] {
                let d = eval(act, z);
                for k in 0..3 {
                    let fd = (eval(act, z + h)[k] - eval(act, z - h)[k]) / (2.0 * h);
                    let err = (fd - d[k + 1]).abs();
                    assert!(
                        err < 2e-3 * (1.0 + d[k + 1].abs()),
                        "{act:?} order {} at {z}: {fd} vs {}",
                        k + 1,
                        d[k + 1]
                    );
                }
            }
        }
    }

    #[test]
    fn closed_forms_at_known_points() {
        assert!((eval(Activation::Softplus, 0.0)[0] - 2f64.ln()).abs() < 1e-7);
        assert!((eval(Activation::Softplus, 30.0)[0] - 30.0).abs() < 1e-5);
        assert!((eval(Activation::Sigmoid, 0.0)[1] - 0.25).abs() < 1e-7);
        assert_eq!(eval(Activation::Relu, -1.0), [0.0; 4]);
    }
}
