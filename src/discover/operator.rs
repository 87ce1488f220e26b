//! The `operator` method (Rao & Ruderman 1999; Sohl-Dickstein et al. 2010):
//! learn generators G₁…G_k and one coefficient vector tₚ per pair such that
//! x′ₚ ≈ exp(Σᵢ tₚᵢ Ĝᵢ) xₚ, with Ĝᵢ = Gᵢ / ‖Gᵢ‖.
//!
//! The objective is
//!
//! ℓ = (1/N) Σₚ ‖exp(Aₚ)Xₚ − X′ₚ‖² + λ Σ_{i<j} ⟨Ĝᵢ, Ĝⱼ⟩²,  Aₚ = Σᵢ tₚᵢ Ĝᵢ.
//!
//! A sample of m·n components is m points of Rⁿ moved by one transformation:
//! Xₚ is n×m, one point per column. With one point per sample and k = n
//! generators, any generic span fits any pair (n equations, n unknowns
//! tₚ), so learning an n-dimensional algebra such as so(3) needs several
//! points per sample.
//!
//! Normalising G is the gauge fix: t and G share one scale, which t alone
//! carries. The second term (LieGAN's penalty against duplicate generators,
//! the squared normalised Frobenius correlation) keeps the generators apart
//! without biasing their span, since every span has an orthonormal basis.
//!
//! The gradient is written out by hand in f64: the residual Rₚ gives
//! ∂ℓ/∂exp(Aₚ) = (2/N) RₚXₚᵀ, [`expm_vjp`] turns it into ∂ℓ/∂Aₚ, which
//! gives ∂ℓ/∂Ĝᵢ = Σₚ tₚᵢ ∂ℓ/∂Aₚ and ∂ℓ/∂tₚᵢ = ⟨∂ℓ/∂Aₚ, Ĝᵢ⟩, and the
//! normalisation's Jacobian maps ∂ℓ/∂Ĝ to ∂ℓ/∂G = (D − Ĝ⟨Ĝ, D⟩)/‖G‖.
//!
//! The validation pairs get coefficients of their own, fitted in the same
//! steps with the generators held fixed, so their loss measures how well the
//! generators explain pairs they were not fitted to.

use super::expm::{expm, expm_vjp};
use super::fit::{Adam, Fit, LossPoint};
use super::DiscoverError;
use crate::data::Table;
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Settings of one operator fit.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorConfig {
    /// How many generators to learn.
    pub generators: usize,
    /// Their size n: each sample holds (its size / n) points of Rⁿ.
    pub dim: usize,
    /// Full-batch Adam steps.
    pub steps: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Weight λ of the penalty against duplicate generators.
    pub duplicate_weight: f64,
    pub seed: u64,
}

/// Pairs as f64 matrices of n rows, one column per point.
struct Pairs {
    x: Vec<DMatrix<f64>>,
    x_next: Vec<DMatrix<f64>>,
}

impl Pairs {
    fn new(table: &Table, n: usize) -> Pairs {
        let points =
            |r: &[f32]| DMatrix::from_iterator(n, r.len() / n, r.iter().map(|&a| f64::from(a)));
        Pairs {
            x: (0..table.rows).map(|i| points(table.x_row(i))).collect(),
            x_next: (0..table.rows).map(|i| points(table.y_row(i))).collect(),
        }
    }
}

/// The parameters, laid out in one vector: k generators (n×n, column-major),
/// then k coefficients per training pair, then k per validation pair.
struct Layout {
    n: usize,
    k: usize,
    train: usize,
}

impl Layout {
    fn generator(&self, theta: &[f64], i: usize) -> DMatrix<f64> {
        let nn = self.n * self.n;
        DMatrix::from_column_slice(self.n, self.n, &theta[i * nn..(i + 1) * nn])
    }

    /// Offset of pair `p`'s coefficients (validation pairs follow the training pairs).
    fn coefficients(&self, p: usize) -> usize {
        self.k * self.n * self.n + p * self.k
    }
}

/// Fits `config.generators` generators to the pairs of `train` (inputs x,
/// targets x′), reporting each step's losses to `progress`.
///
/// ```
/// use symc::data::Table;
/// use symc::discover::{fit_operator, OperatorConfig};
/// // Points of the plane and the same points turned by 0.5 rad.
/// let (c, s) = (0.5f32.cos(), 0.5f32.sin());
/// let xs = [[1.0f32, 0.0], [0.0, 1.0], [0.6, -0.8], [-1.0, 0.3]];
/// let table = Table {
///     x: xs.iter().flatten().copied().collect(),
///     y: xs.iter().flat_map(|v| [c * v[0] - s * v[1], s * v[0] + c * v[1]]).collect(),
///     rows: 4, x_dim: 2, y_dim: 2,
/// };
/// let config = OperatorConfig { generators: 1, dim: 2, steps: 400, lr: 0.05, duplicate_weight: 1.0, seed: 0 };
/// let fit = fit_operator(&table, &table, &config, &mut |_| {}).unwrap();
/// let g = &fit.generators[0];
/// // A multiple of [[0, −1], [1, 0]], normalised: entries ±1/√2 off the diagonal.
/// assert!((g[(1, 0)].abs() - 0.5f64.sqrt()).abs() < 1e-2);
/// assert!(g[(0, 0)].abs() < 1e-2);
/// ```
pub fn fit_operator(
    train: &Table,
    val: &Table,
    config: &OperatorConfig,
    progress: &mut dyn FnMut(&LossPoint),
) -> Result<Fit, DiscoverError> {
    let n = config.dim;
    let size = train.x_dim;
    if train.y_dim != size || val.x_dim != size || val.y_dim != size {
        return Err(DiscoverError::Invalid(format!(
            "pairs (x, x′) must have equal sizes, found {} and {}",
            train.x_dim, train.y_dim
        )));
    }
    if n == 0 || size % n != 0 {
        return Err(DiscoverError::Invalid(format!(
            "samples of {size} components are not points of R^{n}"
        )));
    }
    if train.rows == 0 {
        return Err(DiscoverError::Invalid("there are no training pairs".into()));
    }
    if config.generators == 0 || config.generators > n * n {
        return Err(DiscoverError::Invalid(format!(
            "cannot learn {} generators of {n}×{n} matrices (at most {})",
            config.generators,
            n * n
        )));
    }
    let (train_pairs, val_pairs) = (Pairs::new(train, n), Pairs::new(val, n));
    let layout = Layout {
        n,
        k: config.generators,
        train: train.rows,
    };
    let len = layout.coefficients(train.rows + val.rows);
    let mut rng = StdRng::seed_from_u64(config.seed);
    // Generators start as standard normal matrices; coefficients small, so
    // that the first steps see nearly linear flows.
    let mut theta: Vec<f64> = (0..len)
        .map(|i| {
            let z: f64 = rng.sample(StandardNormal);
            if i < layout.coefficients(0) {
                z
            } else {
                0.1 * z
            }
        })
        .collect();
    let mut adam = Adam::new(len);
    let mut history = Vec::with_capacity(config.steps);
    let mut grad = vec![0.0; len];
    for step in 1..=config.steps {
        let point = gradient(
            &layout,
            &theta,
            &train_pairs,
            &val_pairs,
            config,
            &mut grad,
            step,
        );
        if !(point.train.is_finite() && point.val.is_finite()) {
            return Err(DiscoverError::Diverged { step });
        }
        adam.update(&mut theta, &grad, config.lr);
        progress(&point);
        history.push(point);
    }
    let raw: Vec<DMatrix<f64>> = (0..layout.k).map(|i| layout.generator(&theta, i)).collect();
    Ok(Fit {
        generators: crate::group::normalize(&raw),
        history,
    })
}

/// Writes ∂ℓ/∂θ into `grad` and returns the losses at θ.
fn gradient(
    layout: &Layout,
    theta: &[f64],
    train: &Pairs,
    val: &Pairs,
    config: &OperatorConfig,
    grad: &mut [f64],
    step: usize,
) -> LossPoint {
    let (n, k) = (layout.n, layout.k);
    grad.iter_mut().for_each(|g| *g = 0.0);
    let raw: Vec<DMatrix<f64>> = (0..k).map(|i| layout.generator(theta, i)).collect();
    let norms: Vec<f64> = raw
        .iter()
        .map(|g| g.norm().max(f64::MIN_POSITIVE))
        .collect();
    let unit: Vec<DMatrix<f64>> = raw.iter().zip(&norms).map(|(g, s)| g / *s).collect();
    let mut d_unit = vec![DMatrix::<f64>::zeros(n, n); k];
    let mut losses = [0.0; 2];
    let sets = [(train, 0), (val, layout.train)];
    for (set, ((pairs, first), loss)) in sets.iter().zip(&mut losses).enumerate() {
        let scale = 1.0 / pairs.x.len().max(1) as f64;
        for (p, (x, x_next)) in pairs.x.iter().zip(&pairs.x_next).enumerate() {
            let at = layout.coefficients(first + p);
            let t = &theta[at..at + k];
            let a = unit
                .iter()
                .zip(t)
                .fold(DMatrix::zeros(n, n), |acc, (g, ti)| acc + g * *ti);
            let residual = expm(&a) * x - x_next;
            *loss += scale * residual.norm_squared();
            let d_a = expm_vjp(&a, &(&residual * x.transpose() * (2.0 * scale)));
            for i in 0..k {
                grad[at + i] = d_a.dot(&unit[i]);
                // Only the training pairs move the generators.
                if set == 0 {
                    d_unit[i] += &d_a * t[i];
                }
            }
        }
    }
    for i in 0..k {
        for j in 0..k {
            if i != j {
                let correlation = unit[i].dot(&unit[j]);
                d_unit[i] += &unit[j] * (2.0 * config.duplicate_weight * correlation);
            }
        }
        let d_raw = (&d_unit[i] - &unit[i] * unit[i].dot(&d_unit[i])) / norms[i];
        let nn = n * n;
        grad[i * nn..(i + 1) * nn].copy_from_slice(d_raw.as_slice());
    }
    LossPoint {
        step,
        train: losses[0],
        val: losses[1],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(x: Vec<f32>, y: Vec<f32>, n: usize) -> Table {
        Table {
            rows: x.len() / n,
            x,
            y,
            x_dim: n,
            y_dim: n,
        }
    }

    /// The hand-written gradient of the whole objective (residuals and the
    /// duplicate penalty, through the normalisation) against central differences.
    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = StdRng::seed_from_u64(4);
        let n = 3;
        let mut random = |len: usize| {
            (0..len)
                .map(|_| rng.gen_range(-1.0f32..1.0))
                .collect::<Vec<_>>()
        };
        // Training samples of two points each, validation samples of one.
        let train = Pairs::new(&table(random(24), random(24), 2 * n), n);
        let val = Pairs::new(&table(random(6), random(6), n), n);
        let layout = Layout { n, k: 2, train: 4 };
        let len = layout.coefficients(6);
        let mut rng = StdRng::seed_from_u64(5);
        let theta: Vec<f64> = (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let config = OperatorConfig {
            generators: 2,
            dim: n,
            steps: 1,
            lr: 0.0,
            duplicate_weight: 0.7,
            seed: 0,
        };
        let mut grad = vec![0.0; len];
        let total = |theta: &[f64]| {
            let mut scratch = vec![0.0; len];
            let point = gradient(&layout, theta, &train, &val, &config, &mut scratch, 0);
            let unit: Vec<_> = (0..2)
                .map(|i| layout.generator(theta, i).normalize())
                .collect();
            // The training objective, and the validation loss that the
            // validation coefficients descend.
            point.train + 0.7 * unit[0].dot(&unit[1]).powi(2) + point.val
        };
        gradient(&layout, &theta, &train, &val, &config, &mut grad, 0);
        let h = 1e-6;
        for index in 0..len {
            let (mut plus, mut minus) = (theta.clone(), theta.clone());
            plus[index] += h;
            minus[index] -= h;
            let fd = (total(&plus) - total(&minus)) / (2.0 * h);
            // The validation pairs do not move the generators: their share of
            // the generators' finite difference is left out of the gradient.
            if index < layout.coefficients(0) {
                continue;
            }
            assert!(
                (fd - grad[index]).abs() < 1e-6 * (1.0 + fd.abs()),
                "θ[{index}]: {fd} vs {}",
                grad[index]
            );
        }
        // The generators' gradient against differences of the training objective alone.
        let train_only = |theta: &[f64]| {
            let mut scratch = vec![0.0; len];
            let point = gradient(&layout, theta, &train, &val, &config, &mut scratch, 0);
            let unit: Vec<_> = (0..2)
                .map(|i| layout.generator(theta, i).normalize())
                .collect();
            point.train + 0.7 * unit[0].dot(&unit[1]).powi(2)
        };
        for index in 0..layout.coefficients(0) {
            let (mut plus, mut minus) = (theta.clone(), theta.clone());
            plus[index] += h;
            minus[index] -= h;
            let fd = (train_only(&plus) - train_only(&minus)) / (2.0 * h);
            assert!(
                (fd - grad[index]).abs() < 1e-6 * (1.0 + fd.abs()),
                "θ[{index}]: {fd} vs {}",
                grad[index]
            );
        }
    }

    #[test]
    fn mismatched_pairs_and_too_many_generators_are_refused() {
        let t = table(vec![0.0; 6], vec![0.0; 6], 3);
        let mut config = OperatorConfig {
            generators: 10,
            dim: 3,
            steps: 1,
            lr: 0.1,
            duplicate_weight: 1.0,
            seed: 0,
        };
        assert!(fit_operator(&t, &t, &config, &mut |_| {}).is_err());
        config.generators = 1;
        let uneven = Table {
            y_dim: 2,
            y: vec![0.0; 4],
            ..t.clone()
        };
        assert!(fit_operator(&uneven, &t, &config, &mut |_| {}).is_err());
    }
}
