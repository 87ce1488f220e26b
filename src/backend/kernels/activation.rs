//! Pointwise nonlinearities with their first and second derivatives, and a
//! fused bias + activation pass over a row-major matrix.
//!
//! libm's `expf`/`tanhf` are per-element calls that stop the compiler from
//! vectorising a loop; [`exp`] is a branch-free Cody–Waite reduction with the
//! Cephes polynomial (about 1 ulp on its range), so whole rows go through SIMD
//! registers. On x86-64 the slice kernels are compiled twice and pick the
//! AVX2 + FMA version at run time when the processor has it.

use crate::plan::Activation;

/// eˣ for f32, vectorisable. Inputs are clamped to [−87, 88] (the result
/// stays finite and normal); NaN stays NaN.
///
/// ```
/// use symc::backend::kernels::activation::exp;
/// assert!((exp(1.0) - std::f32::consts::E).abs() < 1e-6);
/// ```
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for |n| < 2⁹.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to the nearest integer and leaves it in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    // Comparisons (not `f32::clamp`, which would need a branch or turn NaN into a bound).
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    er * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// σ(x), σ′(x), σ″(x) of one activation. `relu`'s derivatives at 0 are taken as 0.
///
/// ```
/// use symc::backend::kernels::activation::derivatives;
/// use symc::plan::Activation;
/// let (s, d1, d2) = derivatives(Activation::Tanh, 0.0);
/// assert_eq!((s, d1, d2), (0.0, 1.0, 0.0));
/// ```
#[inline(always)]
pub fn derivatives(kind: Activation, x: f32) -> (f32, f32, f32) {
    match kind {
        Activation::Tanh => Tanh::eval(x),
        Activation::Relu => Relu::eval(x),
        Activation::Softplus => Softplus::eval(x),
        Activation::Swish => Swish::eval(x),
        Activation::Sigmoid => Sigmoid::eval(x),
    }
}

/// One pointwise nonlinearity as a type, so that the slice kernels are
/// monomorphised per activation with no dispatch in the inner loop.
trait Pointwise {
    /// (σ, σ′, σ″) at `x`; unused parts are removed by the optimiser.
    fn eval(x: f32) -> (f32, f32, f32);
}

struct Tanh;
struct Relu;
struct Softplus;
struct Swish;
struct Sigmoid;

#[inline(always)]
fn logistic(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

impl Pointwise for Tanh {
    #[inline(always)]
    fn eval(x: f32) -> (f32, f32, f32) {
        // tanh x = 1 − 2/(e^{2x} + 1): exact limits ±1, absolute error ~1e-7 near 0.
        let t = 1.0 - 2.0 / (exp(2.0 * x) + 1.0);
        let d = 1.0 - t * t;
        (t, d, -2.0 * t * d)
    }
}

impl Pointwise for Relu {
    #[inline(always)]
    fn eval(x: f32) -> (f32, f32, f32) {
        if x > 0.0 {
            (x, 1.0, 0.0)
        } else {
            (0.0, 0.0, 0.0)
        }
    }
}

impl Pointwise for Softplus {
    #[inline(always)]
    fn eval(x: f32) -> (f32, f32, f32) {
        // log(1 + eˣ) = max(x, 0) + log(1 + e^{−|x|}) never overflows.
        let s = logistic(x);
        let value = x.max(0.0) + exp(-x.abs()).ln_1p();
        (value, s, s * (1.0 - s))
    }
}

impl Pointwise for Swish {
    #[inline(always)]
    fn eval(x: f32) -> (f32, f32, f32) {
        let s = logistic(x);
        let ds = s * (1.0 - s);
        (x * s, s + x * ds, ds * (2.0 + x * (1.0 - 2.0 * s)))
    }
}

impl Pointwise for Sigmoid {
    #[inline(always)]
    fn eval(x: f32) -> (f32, f32, f32) {
        let s = logistic(x);
        let ds = s * (1.0 - s);
        (s, ds, ds * (1.0 - 2.0 * s))
    }
}

/// Outputs of [`bias_act`] besides the activated values.
#[derive(Debug, Default)]
pub struct Derivatives<'a> {
    /// Receives σ′(z + b), same layout as `z`.
    pub first: Option<&'a mut [f32]>,
    /// Receives σ″(z + b), same layout as `z`.
    pub second: Option<&'a mut [f32]>,
}

/// In one pass over the row-major matrix `z` (rows of length `bias.len()` or
/// `cols`): adds the bias to each row, replaces each entry by σ of it, and
/// writes σ′ and σ″ where asked.
///
/// ```
/// use symc::backend::kernels::activation::{bias_act, Derivatives};
/// use symc::plan::Activation;
/// let mut z = [-1.0, 2.0, 0.5, -3.0];
/// let mut d1 = [0.0; 4];
/// bias_act(Activation::Relu, &mut z, 2, Some(&[1.5, 0.0]), Derivatives { first: Some(&mut d1), second: None });
/// assert_eq!(z, [0.5, 2.0, 2.0, 0.0]);
/// assert_eq!(d1, [1.0, 1.0, 1.0, 0.0]);
/// ```
///
/// # Panics
/// If `cols` is zero or does not divide `z.len()`, or the bias or a derivative
/// buffer does not match.
pub fn bias_act(
    kind: Activation,
    z: &mut [f32],
    cols: usize,
    bias: Option<&[f32]>,
    derivatives: Derivatives<'_>,
) {
    assert!(
        cols > 0 && z.len() % cols == 0,
        "activation input is not a whole number of rows"
    );
    if let Some(b) = bias {
        assert_eq!(b.len(), cols, "bias length differs from the row length");
    }
    for d in [&derivatives.first, &derivatives.second]
        .into_iter()
        .flatten()
    {
        assert_eq!(d.len(), z.len(), "derivative buffer differs from the input");
    }
    match kind {
        Activation::Tanh => dispatch::<Tanh>(z, cols, bias, derivatives),
        Activation::Relu => dispatch::<Relu>(z, cols, bias, derivatives),
        Activation::Softplus => dispatch::<Softplus>(z, cols, bias, derivatives),
        Activation::Swish => dispatch::<Swish>(z, cols, bias, derivatives),
        Activation::Sigmoid => dispatch::<Sigmoid>(z, cols, bias, derivatives),
    }
}

fn dispatch<P: Pointwise>(z: &mut [f32], cols: usize, bias: Option<&[f32]>, d: Derivatives<'_>) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the processor supports the features the function is compiled for.
        unsafe { dispatch_avx2::<P>(z, cols, bias, d) };
        return;
    }
    by_outputs::<P>(z, cols, bias, d);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dispatch_avx2<P: Pointwise>(
    z: &mut [f32],
    cols: usize,
    bias: Option<&[f32]>,
    d: Derivatives<'_>,
) {
    by_outputs::<P>(z, cols, bias, d);
}

/// Picks a loop specialised to the outputs requested, so that none of them is
/// an `Option` test per element.
#[inline(always)]
fn by_outputs<P: Pointwise>(z: &mut [f32], cols: usize, bias: Option<&[f32]>, d: Derivatives<'_>) {
    let zeros;
    let bias = match bias {
        Some(b) => b,
        None => {
            zeros = vec![0.0; cols];
            &zeros
        }
    };
    match (d.first, d.second) {
        (None, None) => {
            for row in z.chunks_exact_mut(cols) {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v = P::eval(*v + b).0;
                }
            }
        }
        (Some(d1), None) => {
            for (row, d1) in z.chunks_exact_mut(cols).zip(d1.chunks_exact_mut(cols)) {
                for ((v, b), d1) in row.iter_mut().zip(bias).zip(d1) {
                    let (s, s1, _) = P::eval(*v + b);
                    *v = s;
                    *d1 = s1;
                }
            }
        }
        (first, Some(d2)) => {
            let mut scratch;
            let d1 = match first {
                Some(d1) => d1,
                None => {
                    scratch = vec![0.0; d2.len()];
                    &mut scratch[..]
                }
            };
            let rows = z.chunks_exact_mut(cols).zip(d1.chunks_exact_mut(cols));
            for ((row, d1), d2) in rows.zip(d2.chunks_exact_mut(cols)) {
                for (((v, b), d1), d2) in row.iter_mut().zip(bias).zip(d1).zip(d2) {
                    let (s, s1, s2) = P::eval(*v + b);
                    *v = s;
                    *d1 = s1;
                    *d2 = s2;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Activation; 5] = [
        Activation::Tanh,
        Activation::Relu,
        Activation::Softplus,
        Activation::Swish,
        Activation::Sigmoid,
    ];

    /// Closed forms in f64.
    fn reference(kind: Activation, x: f64) -> f64 {
        let s = 1.0 / (1.0 + (-x).exp());
        match kind {
            Activation::Tanh => x.tanh(),
            Activation::Relu => x.max(0.0),
            Activation::Softplus => x.exp().ln_1p(),
            Activation::Swish => x * s,
            Activation::Sigmoid => s,
        }
    }

    fn grid() -> impl Iterator<Item = f32> {
        (-400..=400).map(|i| i as f32 * 0.02 + 0.001)
    }

    #[test]
    fn exp_is_accurate_to_a_few_ulp_and_keeps_nan() {
        for i in -8700..=8800 {
            let x = i as f32 * 0.01;
            let rel = ((exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            assert!(rel < 3e-7, "exp({x}): relative error {rel}");
        }
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(-1000.0) > 0.0 && exp(1000.0).is_finite());
    }

    #[test]
    fn values_match_closed_forms() {
        for kind in ALL {
            for x in grid() {
                let got = derivatives(kind, x).0 as f64;
                let want = reference(kind, x as f64);
                assert!(
                    (got - want).abs() < 2e-6 * (1.0 + want.abs()),
                    "{kind:?}({x}): {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn derivatives_match_central_differences() {
        let h = 1e-3;
        for kind in ALL {
            for x in grid() {
                if kind == Activation::Relu && (x as f64).abs() < 2.0 * h {
                    continue;
                }
                let x64 = x as f64;
                let fd1 = (reference(kind, x64 + h) - reference(kind, x64 - h)) / (2.0 * h);
                let fd2 = (reference(kind, x64 + h) - 2.0 * reference(kind, x64)
                    + reference(kind, x64 - h))
                    / (h * h);
                let (_, d1, d2) = derivatives(kind, x);
                assert!(
                    (d1 as f64 - fd1).abs() < 1e-4,
                    "{kind:?}'({x}): {d1} vs {fd1}"
                );
                assert!(
                    (d2 as f64 - fd2).abs() < 1e-3,
                    "{kind:?}''({x}): {d2} vs {fd2}"
                );
            }
        }
    }

    #[test]
    fn bias_act_agrees_with_the_scalar_function_for_every_output_set() {
        let cols = 7;
        let bias: Vec<f32> = (0..cols).map(|j| j as f32 * 0.3 - 1.0).collect();
        let input: Vec<f32> = grid().take(cols * 11).collect();
        for kind in ALL {
            let mut z = input.clone();
            let (mut d1, mut d2) = (vec![0.0; z.len()], vec![0.0; z.len()]);
            let derivs = Derivatives {
                first: Some(&mut d1),
                second: Some(&mut d2),
            };
            bias_act(kind, &mut z, cols, Some(&bias), derivs);
            let mut only_second = input.clone();
            let mut d2_alone = vec![0.0; z.len()];
            let derivs = Derivatives {
                first: None,
                second: Some(&mut d2_alone),
            };
            bias_act(kind, &mut only_second, cols, Some(&bias), derivs);
            let mut plain = input.clone();
            bias_act(kind, &mut plain, cols, None, Derivatives::default());
            for (i, &x) in input.iter().enumerate() {
                let (s, s1, s2) = derivatives(kind, x + bias[i % cols]);
                assert_eq!((z[i], d1[i], d2[i]), (s, s1, s2));
                assert_eq!((only_second[i], d2_alone[i]), (s, s2));
                assert_eq!(plain[i], derivatives(kind, x).0);
            }
        }
    }
}
