//! The matrix exponential and its reverse-mode derivative, in f64.
//!
//! The learned matrices are tiny (n ≤ 10), so both are plain dense nalgebra
//! code rather than tape operations: the training loop of [`super`] applies
//! the chain rule itself, like the physics heads of the backend do.
//!
//! [`expm`] uses scaling and squaring: exp(A) = exp(A / 2ˢ)^(2ˢ) with s chosen
//! so that ‖A / 2ˢ‖₁ ≤ ½, where a Taylor series of [`TAYLOR_TERMS`] terms is
//! accurate to far below f64 rounding (½¹⁸ / 18! ≈ 6·10⁻²³).
//!
//! [`expm_vjp`] is the derivative in reverse mode: for a scalar loss ℓ that
//! depends on E = exp(A) through the upstream gradient U = ∂ℓ/∂E, it returns
//! ∂ℓ/∂A = L(Aᵀ, U), the Fréchet derivative of exp at Aᵀ in the direction U.
//! That derivative is the upper-right block of
//! exp([[Aᵀ, U], [0, Aᵀ]]) (Mathias 1996), one exponential of twice the size.

use nalgebra::DMatrix;

/// Terms of the Taylor series after scaling (degrees 0 to 17).
const TAYLOR_TERMS: usize = 18;

/// The 1-norm bound that the scaled matrix must meet.
const SCALED_NORM: f64 = 0.5;

/// exp(A) for a square matrix A.
///
/// ```
/// use nalgebra::DMatrix;
/// use symc::discover::expm;
/// // exp(t·J) with J = [[0, −1], [1, 0]] is the rotation by t.
/// let t = 0.7_f64;
/// let r = expm(&DMatrix::from_row_slice(2, 2, &[0.0, -t, t, 0.0]));
/// assert!((r[(0, 0)] - t.cos()).abs() < 1e-14);
/// assert!((r[(1, 0)] - t.sin()).abs() < 1e-14);
/// ```
pub fn expm(a: &DMatrix<f64>) -> DMatrix<f64> {
    let n = a.nrows();
    let norm = one_norm(a);
    let squarings = if norm > SCALED_NORM {
        (norm / SCALED_NORM).log2().ceil() as i32
    } else {
        0
    };
    let b = a / 2f64.powi(squarings);
    // Horner's scheme: I + B(I + B/2(I + B/3(…))).
    let eye = DMatrix::<f64>::identity(n, n);
    let mut e = eye.clone();
    for k in (1..TAYLOR_TERMS).rev() {
        e = &eye + &b * e / k as f64;
    }
    for _ in 0..squarings {
        e = &e * &e;
    }
    e
}

/// ∂ℓ/∂A for ℓ depending on exp(A) through `upstream` = ∂ℓ/∂exp(A).
///
/// ```
/// use nalgebra::DMatrix;
/// use symc::discover::expm_vjp;
/// // For a 1×1 matrix, d exp(a)/da = exp(a).
/// let g = expm_vjp(&DMatrix::from_element(1, 1, 0.3), &DMatrix::from_element(1, 1, 2.0));
/// assert!((g[(0, 0)] - 2.0 * 0.3_f64.exp()).abs() < 1e-14);
/// ```
pub fn expm_vjp(a: &DMatrix<f64>, upstream: &DMatrix<f64>) -> DMatrix<f64> {
    let n = a.nrows();
    // The derivative is linear in U: exponentiate with U scaled to A's size so
    // that U alone never forces extra squarings, then scale back.
    let size = upstream.amax();
    if size == 0.0 {
        return DMatrix::zeros(n, n);
    }
    let scale = size / one_norm(a).max(1.0);
    let mut block = DMatrix::zeros(2 * n, 2 * n);
    let at = a.transpose();
    block.view_mut((0, 0), (n, n)).copy_from(&at);
    block.view_mut((n, n), (n, n)).copy_from(&at);
    block
        .view_mut((0, n), (n, n))
        .copy_from(&(upstream / scale));
    expm(&block).view((0, n), (n, n)) * scale
}

/// The largest absolute column sum.
fn one_norm(a: &DMatrix<f64>) -> f64 {
    a.column_iter()
        .map(|c| c.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random(rng: &mut StdRng, n: usize, size: f64) -> DMatrix<f64> {
        DMatrix::from_fn(n, n, |_, _| rng.gen_range(-size..size))
    }

    /// Closed forms: rotation (cos, sin), boost (cosh, sinh), scaling (eᵗ I),
    /// and a nilpotent matrix whose series stops after two terms.
    #[test]
    fn matches_closed_forms() {
        for t in [-4.0, -0.3, 0.0, 1e-3, 2.5, 9.0] {
            let m = |a: f64, b: f64, c: f64, d: f64| DMatrix::from_row_slice(2, 2, &[a, b, c, d]);
            let (c, s) = (f64::cos(t), f64::sin(t));
            let (ch, sh) = (f64::cosh(t), f64::sinh(t));
            let cases = [
                (m(0.0, -t, t, 0.0), m(c, -s, s, c)),
                (m(0.0, t, t, 0.0), m(ch, sh, sh, ch)),
                (m(t, 0.0, 0.0, t), m(t.exp(), 0.0, 0.0, t.exp())),
                (m(0.0, t, 0.0, 0.0), m(1.0, t, 0.0, 1.0)),
            ];
            for (a, expected) in cases {
                let scale = expected.amax();
                assert!(
                    (expm(&a) - &expected).amax() <= 1e-13 * scale,
                    "exp({a}) = {} not {expected}",
                    expm(&a)
                );
            }
        }
    }

    #[test]
    fn matches_nalgebra_on_random_matrices() {
        let mut rng = StdRng::seed_from_u64(0);
        for n in 1..=6 {
            let a = random(&mut rng, n, 1.5);
            let ours = expm(&a);
            let theirs = a.clone().exp();
            assert!((&ours - &theirs).amax() <= 1e-12 * theirs.amax());
        }
    }

    /// ⟨U, ∂exp⟩ against central differences of ℓ(A) = ⟨U, exp(A)⟩, entry by entry.
    #[test]
    fn derivative_matches_finite_differences() {
        let mut rng = StdRng::seed_from_u64(1);
        let h = 1e-6;
        for (n, size) in [(1, 0.5), (2, 2.0), (3, 1.0), (5, 0.8)] {
            let a = random(&mut rng, n, size);
            let u = random(&mut rng, n, 3.0);
            let loss = |a: &DMatrix<f64>| expm(a).dot(&u);
            let grad = expm_vjp(&a, &u);
            for i in 0..n {
                for j in 0..n {
                    let mut plus = a.clone();
                    plus[(i, j)] += h;
                    let mut minus = a.clone();
                    minus[(i, j)] -= h;
                    let fd = (loss(&plus) - loss(&minus)) / (2.0 * h);
                    assert!(
                        (fd - grad[(i, j)]).abs() <= 1e-6 * (1.0 + fd.abs()),
                        "n = {n}, ({i}, {j}): {fd} vs {}",
                        grad[(i, j)]
                    );
                }
            }
        }
    }

    /// Along A = tG with G commuting with itself, d/dt ⟨U, exp(tG)⟩ = ⟨U, G exp(tG)⟩:
    /// for the rotation generator this is the closed form ⟨U, [[−sin, −cos], [cos, −sin]]⟩.
    #[test]
    fn derivative_along_a_rotation_has_its_closed_form() {
        let g = DMatrix::from_row_slice(2, 2, &[0.0, -1.0, 1.0, 0.0]);
        let u = DMatrix::from_row_slice(2, 2, &[0.3, -1.2, 0.7, 2.0]);
        for t in [-2.0, 0.4, 3.0] {
            let (c, s) = (f64::cos(t), f64::sin(t));
            let derivative = DMatrix::from_row_slice(2, 2, &[-s, -c, c, -s]);
            let along = expm_vjp(&(&g * t), &u).dot(&g);
            assert!((along - u.dot(&derivative)).abs() < 1e-13);
        }
        // The boost: d/dt exp(tK) = [[sinh, cosh], [cosh, sinh]].
        let k = DMatrix::from_row_slice(2, 2, &[0.0, 1.0, 1.0, 0.0]);
        let t = 1.3_f64;
        let derivative = DMatrix::from_row_slice(2, 2, &[t.sinh(), t.cosh(), t.cosh(), t.sinh()]);
        let along = expm_vjp(&(&k * t), &u).dot(&k);
        assert!((along - u.dot(&derivative)).abs() < 1e-12);
    }
}
