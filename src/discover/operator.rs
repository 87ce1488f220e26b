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
/// then k coefficients per training pair, then k per validation pair. The
/// `latent` method appends its networks' parameters after these.
pub(super) struct Layout {
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) train: usize,
}

impl Layout {
    pub(super) fn generator(&self, theta: &[f64], i: usize) -> DMatrix<f64> {
        let nn = self.n * self.n;
        DMatrix::from_column_slice(self.n, self.n, &theta[i * nn..(i + 1) * nn])
    }

    /// Offset of pair `p`'s coefficients (validation pairs follow the training pairs).
    pub(super) fn coefficients(&self, p: usize) -> usize {
        self.k * self.n * self.n + p * self.k
    }

    /// The starting generators and coefficients of `pairs` pairs: standard
    /// normal generators and small coefficients, so that the first steps see
    /// nearly linear flows.
    pub(super) fn initial(&self, pairs: usize, rng: &mut StdRng) -> Vec<f64> {
        let generators = self.coefficients(0);
        (0..self.coefficients(pairs))
            .map(|i| {
                let z: f64 = rng.sample(StandardNormal);
                if i < generators {
                    z
                } else {
                    0.1 * z
                }
            })
            .collect()
    }
}

/// The unit generators Ĝᵢ = Gᵢ / ‖Gᵢ‖ at θ, and ∂ℓ/∂Ĝ as the pairs add to it.
pub(super) struct UnitGenerators {
    norms: Vec<f64>,
    unit: Vec<DMatrix<f64>>,
    d_unit: Vec<DMatrix<f64>>,
}

impl UnitGenerators {
    pub(super) fn new(layout: &Layout, theta: &[f64]) -> UnitGenerators {
        let raw: Vec<DMatrix<f64>> = (0..layout.k).map(|i| layout.generator(theta, i)).collect();
        let norms: Vec<f64> = raw
            .iter()
            .map(|g| g.norm().max(f64::MIN_POSITIVE))
            .collect();
        let unit = raw.iter().zip(&norms).map(|(g, s)| g / *s).collect();
        UnitGenerators {
            norms,
            unit,
            d_unit: vec![DMatrix::zeros(layout.n, layout.n); layout.k],
        }
    }

    /// The unit generators Ĝᵢ.
    pub(super) fn unit(&self) -> &[DMatrix<f64>] {
        &self.unit
    }

    /// A = Σᵢ tᵢ Ĝᵢ.
    pub(super) fn algebra(&self, t: &[f64]) -> DMatrix<f64> {
        let n = self.unit[0].nrows();
        self.unit
            .iter()
            .zip(t)
            .fold(DMatrix::zeros(n, n), |acc, (g, ti)| acc + g * *ti)
    }

    /// Takes ∂ℓ/∂Aₚ of the pair whose coefficients tₚ start at `at`: writes
    /// ∂ℓ/∂tₚᵢ = ⟨∂ℓ/∂Aₚ, Ĝᵢ⟩ into `grad`, and adds ∂ℓ/∂Ĝᵢ = tₚᵢ ∂ℓ/∂Aₚ
    /// when the pair trains the generators (validation pairs do not).
    pub(super) fn pull(
        &mut self,
        theta: &[f64],
        at: usize,
        d_a: &DMatrix<f64>,
        trains_generators: bool,
        grad: &mut [f64],
    ) {
        for (i, unit) in self.unit.iter().enumerate() {
            grad[at + i] = d_a.dot(unit);
            if trains_generators {
                self.d_unit[i] += d_a * theta[at + i];
            }
        }
    }

    /// Adds the penalty λ Σ_{i<j} ⟨Ĝᵢ, Ĝⱼ⟩² against duplicate generators and
    /// writes ∂ℓ/∂G = (D − Ĝ⟨Ĝ, D⟩)/‖G‖ into the generators' slots of `grad`.
    pub(super) fn finish(mut self, duplicate_weight: f64, grad: &mut [f64]) {
        let k = self.unit.len();
        let nn = self.unit[0].len();
        for i in 0..k {
            for j in (0..k).filter(|&j| j != i) {
                let correlation = self.unit[i].dot(&self.unit[j]);
                self.d_unit[i] += &self.unit[j] * (2.0 * duplicate_weight * correlation);
            }
            let unit = &self.unit[i];
            let d_raw = (&self.d_unit[i] - unit * unit.dot(&self.d_unit[i])) / self.norms[i];
            grad[i * nn..(i + 1) * nn].copy_from_slice(d_raw.as_slice());
        }
    }
}

/// Refuses pairs of unequal sizes, an empty training set and more
/// generators than n×n matrices can hold.
pub(super) fn check_pairs(
    train: &Table,
    val: &Table,
    generators: usize,
    n: usize,
) -> Result<(), DiscoverError> {
    let size = train.x_dim;
    for (name, table) in [("training", train), ("validation", val)] {
        if table.x_dim != size || table.y_dim != size {
            return Err(DiscoverError::Invalid(format!(
                "{name} pairs (x, x′) must have sizes {size} and {size}, found {} and {}",
                table.x_dim, table.y_dim
            )));
        }
    }
    if train.rows == 0 {
        return Err(DiscoverError::Invalid("there are no training pairs".into()));
    }
    if generators == 0 || generators > n * n {
        return Err(DiscoverError::Invalid(format!(
            "cannot learn {generators} generators of {n}×{n} matrices (at most {})",
            n * n
        )));
    }
    Ok(())
}

/// Full-batch Adam on θ for `steps` steps: `gradient` writes ∂ℓ/∂θ at θ and
/// returns that step's losses, which go to `progress` and into the history.
pub(super) fn descend(
    theta: &mut [f64],
    steps: usize,
    lr: f64,
    progress: &mut dyn FnMut(&LossPoint),
    mut gradient: impl FnMut(&[f64], &mut [f64], usize) -> LossPoint,
) -> Result<Vec<LossPoint>, DiscoverError> {
    let mut adam = Adam::new(theta.len());
    let mut history = Vec::with_capacity(steps);
    let mut grad = vec![0.0; theta.len()];
    for step in 1..=steps {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let point = gradient(theta, &mut grad, step);
        if !(point.train.is_finite() && point.val.is_finite()) {
            return Err(DiscoverError::Diverged { step });
        }
        adam.update(theta, &grad, lr);
        progress(&point);
        history.push(point);
    }
    Ok(history)
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
    check_pairs(train, val, config.generators, n)?;
    let size = train.x_dim;
    if size % n != 0 {
        return Err(DiscoverError::Invalid(format!(
            "samples of {size} components are not points of R^{n}"
        )));
    }
    let (train_pairs, val_pairs) = (Pairs::new(train, n), Pairs::new(val, n));
    let layout = Layout {
        n,
        k: config.generators,
        train: train.rows,
    };
    let mut theta = layout.initial(
        train.rows + val.rows,
        &mut StdRng::seed_from_u64(config.seed),
    );
    let history = descend(
        &mut theta,
        config.steps,
        config.lr,
        progress,
        |theta, grad, step| gradient(&layout, theta, &train_pairs, &val_pairs, config, grad, step),
    )?;
    let raw: Vec<DMatrix<f64>> = (0..layout.k).map(|i| layout.generator(&theta, i)).collect();
    Ok(Fit {
        generators: crate::group::normalize(&raw),
        history,
    })
}

/// Adds ∂ℓ/∂θ to `grad` (zero on entry) and returns the losses at θ.
fn gradient(
    layout: &Layout,
    theta: &[f64],
    train: &Pairs,
    val: &Pairs,
    config: &OperatorConfig,
    grad: &mut [f64],
    step: usize,
) -> LossPoint {
    let k = layout.k;
    let mut generators = UnitGenerators::new(layout, theta);
    let mut losses = [0.0; 2];
    let sets = [(train, 0), (val, layout.train)];
    for (set, ((pairs, first), loss)) in sets.iter().zip(&mut losses).enumerate() {
        let scale = 1.0 / pairs.x.len().max(1) as f64;
        for (p, (x, x_next)) in pairs.x.iter().zip(&pairs.x_next).enumerate() {
            let at = layout.coefficients(first + p);
            let a = generators.algebra(&theta[at..at + k]);
            let residual = expm(&a) * x - x_next;
            *loss += scale * residual.norm_squared();
            let d_a = expm_vjp(&a, &(&residual * x.transpose() * (2.0 * scale)));
            generators.pull(theta, at, &d_a, set == 0, grad);
        }
    }
    generators.finish(config.duplicate_weight, grad);
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
