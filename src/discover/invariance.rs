//! The `invariance` method (the predictor line of LieGAN, Yang et al. 2023):
//! learn the generators along which a trained predictor's output does not
//! change.
//!
//! **1. The predictor.** The spec's `net` (an MLP) is trained on (x, y) as an
//! ordinary regression model, by [`crate::train::train`] with the spec's
//! settings; its losses go to the caller's progress as it trains.
//!
//! **2. The quadratic form.** A generator G (n×n) acts on a sample of m·n
//! components as m points moved together, x_c ↦ G x_c. The Lie derivative of
//! one output f along G is
//!
//! L_G f(x) = Σ_c ∇_c f(x) · G x_c = Σ_ab G_ab (Γ Xᵀ)_ab = ⟨G, Γ Xᵀ⟩,
//!
//! with X = [x₁ … x_m] and Γ = [∇₁f … ∇_m f] (n×m). It is linear in G, so
//! its mean square over the data is a quadratic form
//!
//! q(G) = mean_x (L_G f(x) / (‖Γ‖ ‖X‖))² = vec(G)ᵀ M vec(G),  M = mean_x d dᵀ,
//! d = vec(Γ Xᵀ) / (‖Γ‖ ‖X‖),
//!
//! M (n²×n²) being the Gram matrix of the Lie derivatives along the basis
//! matrices E_ab. Dividing by ‖Γ‖‖X‖ weighs every sample alike (without it the
//! samples where f is steepest would decide alone) and bounds q: by
//! Cauchy–Schwarz q(G) ≤ ‖G‖² for every G, so an eigenvalue is the mean
//! squared relative change of f per unit of G. Every output of a vector-valued
//! predictor contributes its own term. ∇f is taken by central differences in
//! f32, with a step of [`STEP`] times the inputs' root mean square: the cube
//! root of f32's rounding, where the truncation error (∝ h²) and the rounding
//! error (∝ 1/h) of the difference balance.
//!
//! **3. The generators.** The k unit generators minimising Σᵢ q(Gᵢ) under
//! ⟨Gᵢ, Gⱼ⟩ = δᵢⱼ are the eigenvectors of M's k smallest eigenvalues
//! (Ky Fan). Orthonormality is LieGAN's penalty against duplicate generators
//! made exact. The whole spectrum is reported: the ratio λ_{k+1}/λ_k (the
//! *gap*) says whether the data support k generators — a large gap after the
//! k-th eigenvalue means k invariant directions and no more. The method's
//! training loss is the mean of the k smallest eigenvalues, its validation
//! loss the mean of q(Gᵢ) with M built on the validation set.
//!
//! **4. Checks with finite transformations.** Infinitesimal invariance is
//! tested at finite group elements: for t on a range, the root mean square of
//! f(exp(tG)x) − f(x) over held-out samples, relative to the standard deviation
//! of f, for the found generators and for as many random unit generators.
//!
//! **5. Augerino's extent** (Benton et al. 2020), for the found generators as
//! a fixed set: for each Gᵢ the half-width θ of t ~ U(−θ, θ) minimising
//! E_t mean_x ℓ(f(exp(tGᵢ)x), y) − λθ, with ℓ the squared error relative to
//! the variance of y. **The predictor is frozen**: this is not Augerino's joint
//! training of network and extent, only its objective for the extent given the
//! trained f. With one scalar per generator the expectation over t is a mean
//! over a symmetric grid of t and the minimum is taken over the grid's θ, up to
//! [`MAX_EXTENT`]. An invariant direction earns the largest θ (its loss does
//! not grow and −λθ rewards width); a direction that breaks f stops early.
//!
//! The caller's progress follows the predictor's training. The [`Fit`] of this
//! method holds one history point, the quadratic form on the training and the
//! validation set: the generators take no steps of their own.

use super::expm::expm;
use super::fit::{Fit, LossPoint};
use super::DiscoverError;
use crate::backend::BackendError;
use crate::data::{Splits, Table};
use crate::plan::{ModelGraph, Task};
use crate::train::{Progress, Record};
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::Serialize;

/// The central-difference step relative to the inputs' root mean square.
pub const STEP: f32 = 1e-2;
/// Augerino's weight λ on the extent, against a loss relative to var(y).
pub const EXTENT_WEIGHT: f64 = 1e-2;
/// The largest extent tried: π√2 turns a unit generator that rotates one
/// plane (entries ±1/√2) by π, so t ∈ [−θ, θ] covers the whole circle.
pub const MAX_EXTENT: f64 = std::f64::consts::PI * std::f64::consts::SQRT_2;
/// Rows whose shifted copies go through the predictor in one call.
const GRADIENT_ROWS: usize = 256;
/// The extent grid has this many points on each side of t = 0.
const EXTENT_POINTS: usize = 12;
/// Held-out samples behind the finite checks and the extents.
const CHECK_ROWS: usize = 500;
const EXTENT_ROWS: usize = 200;
/// The group parameters t of the finite checks.
const CHECK_TIMES: [f64; 4] = [0.1, 0.3, 1.0, 3.0];

/// Settings of one invariance fit (the predictor's come from the graph).
#[derive(Debug, Clone, PartialEq)]
pub struct InvarianceConfig {
    /// How many generators to keep.
    pub generators: usize,
    /// Their size n: each sample holds (its size / n) points of Rⁿ.
    pub dim: usize,
    /// Seed of the random generators the found ones are compared with.
    pub seed: u64,
}

/// What the method measured beside the generators (`invariance:` in `report.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvarianceReport {
    /// The predictor's mean squared error on the held-out samples (the test
    /// set, or the validation set when there is none), in the data's units.
    pub predictor_mse: f64,
    /// The same divided by the variance of the held-out targets.
    pub predictor_relative_mse: f64,
    /// The optimiser step whose parameters the predictor kept.
    pub predictor_step: usize,
    /// The eigenvalues of M on the training set, ascending.
    pub eigenvalues: Vec<f64>,
    /// λ_{k+1}/λ_k: how far the kept eigenvalues lie below the next one.
    pub gap: f64,
    /// Relative changes of f under finite transformations.
    pub transformations: Vec<FiniteCheck>,
    /// Augerino's extents.
    pub extents: Extents,
}

/// The relative change rms(f(exp(tG)x) − f(x)) / std(f) at one t, averaged
/// over the found generators and over as many random unit generators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FiniteCheck {
    /// The group parameter of exp(tG).
    pub t: f64,
    /// The change under the found generators.
    pub found: f64,
    /// The change under random unit generators: what breaking f looks like.
    pub random: f64,
}

/// Augerino's learned half-widths θ of t ~ U(−θ, θ), one per generator, the
/// predictor frozen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Extents {
    /// The weight λ of −λθ.
    pub weight: f64,
    /// The largest θ tried.
    pub max: f64,
    /// θ for each found generator.
    pub found: Vec<f64>,
    /// The same for the random generators of the finite checks.
    pub random: Vec<f64>,
}

/// The result of [`fit_invariance`].
#[derive(Debug, Clone)]
pub struct Invariance {
    /// The generators and the quadratic form as the method's loss.
    pub fit: Fit,
    /// The spectrum, the finite checks and the extents.
    pub report: InvarianceReport,
}

/// Trains the graph's predictor on `splits`, then finds the `config.generators`
/// directions its output is most invariant along (see the module's text).
pub fn fit_invariance(
    graph: &ModelGraph,
    splits: &Splits,
    config: &InvarianceConfig,
    progress: &mut dyn FnMut(&LossPoint),
) -> Result<Invariance, DiscoverError> {
    let (n, size) = (config.dim, splits.train.x_dim);
    if n == 0 || size % n != 0 {
        return Err(DiscoverError::Invalid(format!(
            "samples of {size} components are not points of R^{n}"
        )));
    }
    if config.generators == 0 || config.generators >= n * n {
        return Err(DiscoverError::Invalid(format!(
            "cannot keep {} of the {} directions of {n}×{n} matrices: \
             the gap needs the next eigenvalue",
            config.generators,
            n * n
        )));
    }
    if splits.train.rows == 0 || splits.val.rows == 0 {
        return Err(DiscoverError::Invalid(
            "the invariance method needs training and validation samples".into(),
        ));
    }
    let mut predictor_graph = graph.clone();
    predictor_graph.task = Task::Regression;
    let mut relay = Relay {
        progress,
        val: f64::NAN,
    };
    let outcome = crate::train::train(&predictor_graph, splits, &mut relay)?;
    let predictor = outcome.predictor();
    let f = |x: &[f32], rows: usize| predictor.predict(x, rows);

    let step = STEP * rms(&splits.train.x);
    if !(step > 0.0 && step.is_finite()) {
        return Err(DiscoverError::Invalid(
            "the inputs are all zero (or not finite): there is nothing to move".into(),
        ));
    }
    let gram = |t: &Table| -> Result<DMatrix<f64>, DiscoverError> {
        let gradients = input_gradients(f, &t.x, t.rows, step).map_err(train_error)?;
        if gradients.iter().any(|g| !g.is_finite()) {
            return Err(DiscoverError::Invalid(
                "the trained predictor's gradient is not finite; lower the learning rate".into(),
            ));
        }
        Ok(lie_gram(&t.x, &gradients, t.rows, n))
    };
    let (m_train, m_val) = (gram(&splits.train)?, gram(&splits.val)?);
    let (eigenvalues, generators) = smallest_eigenvectors(&m_train, config.generators);
    let form = |m: &DMatrix<f64>| {
        let q: f64 = generators
            .iter()
            .map(|g| {
                let v = DVector::from_column_slice(g.as_slice());
                v.dot(&(m * &v))
            })
            .sum();
        q / generators.len() as f64
    };
    let point = LossPoint {
        step: outcome.steps,
        train: form(&m_train),
        val: form(&m_val),
    };

    let held_out = if splits.test.rows > 0 {
        &splits.test
    } else {
        &splits.val
    };
    let mut rng = StdRng::seed_from_u64(config.seed);
    let random: Vec<DMatrix<f64>> = (0..config.generators)
        .map(|_| DMatrix::from_fn(n, n, |_, _| rng.sample::<f64, _>(StandardNormal)).normalize())
        .collect();
    let checks = held_out.select(&(0..held_out.rows.min(CHECK_ROWS)).collect::<Vec<_>>());
    let transformations = finite_checks(&f, &checks, &generators, &random)?;
    let extent_rows = splits.val.rows.min(EXTENT_ROWS);
    let extent_set = splits.val.select(&(0..extent_rows).collect::<Vec<_>>());
    let extents = |gs: &[DMatrix<f64>]| -> Result<Vec<f64>, DiscoverError> {
        gs.iter()
            .map(|g| augerino_extent(&f, &extent_set, g))
            .collect()
    };
    let k = config.generators;
    let predictor_mse = predictor.mse(held_out).map_err(train_error)?;
    let report = InvarianceReport {
        predictor_mse,
        predictor_relative_mse: predictor_mse / variance(&held_out.y).max(f64::MIN_POSITIVE),
        predictor_step: outcome.best_step,
        gap: eigenvalues[k] / eigenvalues[k - 1].max(f64::MIN_POSITIVE),
        eigenvalues,
        transformations,
        extents: Extents {
            weight: EXTENT_WEIGHT,
            max: MAX_EXTENT,
            found: extents(&generators)?,
            random: extents(&random)?,
        },
    };
    Ok(Invariance {
        fit: Fit {
            generators,
            history: vec![point],
        },
        report,
    })
}

/// Hands the predictor's training steps on as loss points, each with the
/// validation loss of the latest validation.
struct Relay<'a> {
    progress: &'a mut dyn FnMut(&LossPoint),
    val: f64,
}

impl Progress for Relay<'_> {
    fn step(&mut self, step: usize, _: usize, loss: f64) {
        (self.progress)(&LossPoint {
            step,
            train: loss,
            val: self.val,
        });
    }

    fn validated(&mut self, record: &Record) {
        self.val = record.val_loss;
    }
}

fn train_error(e: BackendError) -> DiscoverError {
    DiscoverError::Train(e.into())
}

/// ∇f at each of `rows` inputs by central differences with step `h`, laid out
/// `[row][output][coordinate]`; `f` maps rows of inputs to rows of outputs.
///
/// ```
/// use symc::discover::input_gradients;
/// // f(x) = x₀² + 3x₁ at (1, 2) and (−1, 0): ∇f = (2x₀, 3).
/// let f = |x: &[f32], _: usize| -> Result<Vec<f32>, ()> {
///     Ok(x.chunks(2).map(|r| r[0] * r[0] + 3.0 * r[1]).collect())
/// };
/// let g = input_gradients(&f, &[1.0, 2.0, -1.0, 0.0], 2, 1e-2).unwrap();
/// let expected = [2.0, 3.0, -2.0, 3.0];
/// assert!(g.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-4));
/// ```
pub fn input_gradients<E>(
    f: impl Fn(&[f32], usize) -> Result<Vec<f32>, E>,
    x: &[f32],
    rows: usize,
    h: f32,
) -> Result<Vec<f64>, E> {
    let width = x.len().checked_div(rows).unwrap_or(0);
    let mut gradients = Vec::new();
    // Every row shifted by ±h along every coordinate, a block of rows per
    // call: one batch of all of them would hold 2·width copies of the data.
    for block in x.chunks(width.max(1) * GRADIENT_ROWS) {
        let block_rows = block.len() / width.max(1);
        let mut shifted = Vec::with_capacity(2 * width * block.len());
        for row in block.chunks(width.max(1)) {
            for j in 0..width {
                for sign in [1.0, -1.0] {
                    let start = shifted.len();
                    shifted.extend_from_slice(row);
                    shifted[start + j] += sign * h;
                }
            }
        }
        let values = f(&shifted, 2 * width * block_rows)?;
        let outputs = values
            .len()
            .checked_div(2 * width * block_rows)
            .unwrap_or(0);
        let first = gradients.len();
        gradients.resize(first + block_rows * outputs * width, 0.0);
        for r in 0..block_rows {
            for j in 0..width {
                let at = (r * width + j) * 2 * outputs;
                let (plus, minus) = (
                    &values[at..at + outputs],
                    &values[at + outputs..at + 2 * outputs],
                );
                for o in 0..outputs {
                    gradients[first + (r * outputs + o) * width + j] =
                        (f64::from(plus[o]) - f64::from(minus[o])) / (2.0 * f64::from(h));
                }
            }
        }
    }
    Ok(gradients)
}

/// The Gram matrix M (n²×n², over column-major vec(G)) of the normalised Lie
/// derivatives: q(G) = vec(G)ᵀ M vec(G) is the mean of (⟨G, ΓXᵀ⟩ / ‖Γ‖‖X‖)²
/// over rows and outputs, for the `rows` inputs `x` and their gradients laid
/// out as [`input_gradients`] returns them. Samples where f is flat add nothing.
///
/// ```
/// use nalgebra::DMatrix;
/// use symc::discover::lie_gram;
/// // f(x) = ‖x‖² on the plane, ∇f = 2x: only rotations leave it unchanged.
/// let x = [1.0f32, 0.0, 0.3, -2.0, -0.5, 0.8];
/// let gradients: Vec<f64> = x.iter().map(|&v| 2.0 * f64::from(v)).collect();
/// let m = lie_gram(&x, &gradients, 3, 2);
/// let rotation = DMatrix::from_row_slice(2, 2, &[0.0, -1.0, 1.0, 0.0]);
/// let v = nalgebra::DVector::from_column_slice(rotation.as_slice());
/// assert!(v.dot(&(&m * &v)).abs() < 1e-12);
/// let scaling = nalgebra::DVector::from_column_slice(&[1.0, 0.0, 0.0, 1.0]);
/// assert!(scaling.dot(&(&m * &scaling)) > 0.1);
/// ```
pub fn lie_gram(x: &[f32], gradients: &[f64], rows: usize, n: usize) -> DMatrix<f64> {
    let mut m = DMatrix::zeros(n * n, n * n);
    if rows == 0 || n == 0 {
        return m;
    }
    let width = x.len() / rows;
    let outputs = gradients.len() / (rows * width).max(1);
    let points = width / n;
    let mut count = 0usize;
    for (r, row) in x.chunks(width).enumerate() {
        let xs = DMatrix::from_iterator(n, points, row.iter().map(|&v| f64::from(v)));
        for o in 0..outputs {
            let at = (r * outputs + o) * width;
            let gamma = DMatrix::from_column_slice(n, points, &gradients[at..at + width]);
            let scale = gamma.norm() * xs.norm();
            count += 1;
            if scale > 0.0 {
                let d = DVector::from_column_slice((&gamma * xs.transpose() / scale).as_slice());
                m.ger(1.0, &d, &d, 1.0);
            }
        }
    }
    m / count.max(1) as f64
}

/// All eigenvalues of the symmetric `m` ascending, and the eigenvectors of the
/// k smallest as n×n matrices of unit norm, each signed so that its entry of
/// largest magnitude is positive.
fn smallest_eigenvectors(m: &DMatrix<f64>, k: usize) -> (Vec<f64>, Vec<DMatrix<f64>>) {
    let n = (m.nrows() as f64).sqrt().round() as usize;
    let eigen = SymmetricEigen::new(m.clone());
    let mut order: Vec<usize> = (0..m.nrows()).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[a].total_cmp(&eigen.eigenvalues[b]));
    let generators = order[..k]
        .iter()
        .map(|&i| {
            let g = DMatrix::from_column_slice(n, n, eigen.eigenvectors.column(i).as_slice());
            let largest = g.iter().copied().max_by(|a, b| a.abs().total_cmp(&b.abs()));
            if largest.unwrap_or(0.0) < 0.0 {
                -g
            } else {
                g
            }
        })
        .collect();
    (
        order.iter().map(|&i| eigen.eigenvalues[i]).collect(),
        generators,
    )
}

/// Every point of every row of `x` moved by the matrix `a` (n×n).
fn act(a: &DMatrix<f64>, x: &[f32]) -> Vec<f32> {
    let n = a.nrows();
    x.chunks(n)
        .flat_map(|p| {
            let p = DVector::from_iterator(n, p.iter().map(|&v| f64::from(v)));
            (a * p).iter().map(|&v| v as f32).collect::<Vec<_>>()
        })
        .collect()
}

type Function<'a> = dyn Fn(&[f32], usize) -> Result<Vec<f32>, BackendError> + 'a;

fn finite_checks(
    f: &Function<'_>,
    table: &Table,
    found: &[DMatrix<f64>],
    random: &[DMatrix<f64>],
) -> Result<Vec<FiniteCheck>, DiscoverError> {
    let base = f(&table.x, table.rows).map_err(train_error)?;
    let spread = variance(&base).sqrt().max(f64::MIN_POSITIVE);
    let change = |gs: &[DMatrix<f64>], t: f64| -> Result<f64, DiscoverError> {
        let mut total = 0.0;
        for g in gs {
            let moved = f(&act(&expm(&(g * t)), &table.x), table.rows).map_err(train_error)?;
            total += mean_square_difference(&moved, &base).sqrt() / spread;
        }
        Ok(total / gs.len().max(1) as f64)
    };
    CHECK_TIMES
        .iter()
        .map(|&t| {
            Ok(FiniteCheck {
                t,
                found: change(found, t)?,
                random: change(random, t)?,
            })
        })
        .collect()
}

/// Augerino's θ for one generator: the grid point minimising the mean relative
/// loss over t ∈ [−θ, θ] minus λθ.
fn augerino_extent(
    f: &Function<'_>,
    table: &Table,
    g: &DMatrix<f64>,
) -> Result<f64, DiscoverError> {
    let scale = variance(&table.y).max(f64::MIN_POSITIVE);
    let j = EXTENT_POINTS as isize;
    let loss = |i: isize| -> Result<f64, DiscoverError> {
        let t = MAX_EXTENT * i as f64 / j as f64;
        let moved = f(&act(&expm(&(g * t)), &table.x), table.rows).map_err(train_error)?;
        Ok(mean_square_difference(&moved, &table.y) / scale)
    };
    let losses: Vec<f64> = (-j..=j).map(loss).collect::<Result<_, _>>()?;
    // losses[j] is t = 0; the window of half-width i holds 2i + 1 grid points.
    let objective = |i: usize| {
        let window = &losses[EXTENT_POINTS - i..=EXTENT_POINTS + i];
        window.iter().sum::<f64>() / window.len() as f64
            - EXTENT_WEIGHT * MAX_EXTENT * i as f64 / EXTENT_POINTS as f64
    };
    let best = (0..=EXTENT_POINTS)
        .min_by(|&a, &b| objective(a).total_cmp(&objective(b)))
        .unwrap_or(0);
    Ok(MAX_EXTENT * best as f64 / EXTENT_POINTS as f64)
}

fn rms(values: &[f32]) -> f32 {
    let sum: f64 = values.iter().map(|&v| f64::from(v).powi(2)).sum();
    (sum / values.len().max(1) as f64).sqrt() as f32
}

fn mean_square_difference(a: &[f32], b: &[f32]) -> f64 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(p, q)| (f64::from(*p) - f64::from(*q)).powi(2))
        .sum();
    sum / b.len().max(1) as f64
}

fn variance(values: &[f32]) -> f64 {
    let len = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / len;
    values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{principal_angles, Group};

    fn so(n: usize) -> Vec<DMatrix<f64>> {
        Group::builtin("SO", &[n as i64]).unwrap().lie().to_vec()
    }

    fn gaussian(rows: usize, width: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..rows * width)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect()
    }

    /// f(x) = x₁·x₂ + ‖x₂‖² on two points of R⁴ is O(4)-invariant and
    /// nothing more, so M's null space is so(4) exactly: six eigenvalues at
    /// rounding level, the six eigenvectors spanning the antisymmetric
    /// matrices, and the seventh eigenvalue far from zero.
    #[test]
    fn an_invariant_function_has_exactly_so_n_as_null_space() {
        let (n, rows) = (4, 400);
        let x = gaussian(rows, 2 * n, 1);
        // ∇₁f = x₂, ∇₂f = x₁ + 2x₂.
        let gradients: Vec<f64> = x
            .chunks(2 * n)
            .flat_map(|r| {
                let (a, b) = r.split_at(n);
                let first: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
                let second: Vec<f64> = a
                    .iter()
                    .zip(b)
                    .map(|(&p, &q)| f64::from(p + 2.0 * q))
                    .collect();
                [first, second].concat()
            })
            .collect();
        let m = lie_gram(&x, &gradients, rows, n);
        let (eigenvalues, found) = smallest_eigenvectors(&m, 6);
        assert!(eigenvalues[5] < 1e-12, "{eigenvalues:?}");
        assert!(eigenvalues[6] > 1e-3, "{eigenvalues:?}");
        let angles = principal_angles(&found, &so(n));
        assert!(angles.iter().all(|a| *a < 1e-6), "{angles:?}");
        for g in &found {
            assert!((g.norm() - 1.0).abs() < 1e-12);
        }
    }

    /// For f = ‖x‖² on one point of Rⁿ, d = vec(uuᵀ) with u = x/‖x‖ uniform
    /// on the sphere, and E[uₐu_bu_cu_d] = (δ_ab δ_cd + δ_ac δ_bd + δ_ad δ_bc)
    /// / (n(n + 2)) gives q(G) = (tr(G)² + ‖G‖² + tr(G²)) / (n(n + 2)): 0 on
    /// so(n), 2/(n(n + 2)) on the traceless symmetric matrices and 1/n on
    /// I/√n. The gradients come from f32 central differences, so this also
    /// checks [`input_gradients`] and [`STEP`].
    #[test]
    fn the_squared_norm_has_the_closed_form_spectrum() {
        let (n, rows) = (3, 20_000);
        let x = gaussian(rows, n, 2);
        let f = |x: &[f32], _: usize| -> Result<Vec<f32>, ()> {
            Ok(x.chunks(n).map(|r| r.iter().map(|v| v * v).sum()).collect())
        };
        let gradients = input_gradients(f, &x, rows, STEP * rms(&x)).unwrap();
        let exact = x.iter().map(|&v| 2.0 * f64::from(v));
        assert!(gradients
            .iter()
            .zip(exact)
            .all(|(g, e)| (g - e).abs() < 1e-3 * (1.0 + e.abs())));
        let (eigenvalues, found) = smallest_eigenvectors(&lie_gram(&x, &gradients, rows, n), 3);
        let scale = (n * (n + 2)) as f64;
        assert!(
            eigenvalues[..3].iter().all(|&l| l < 1e-7),
            "{eigenvalues:?}"
        );
        // Sampling error of 20,000 draws: a few percent.
        for &l in &eigenvalues[3..8] {
            assert!((l * scale / 2.0 - 1.0).abs() < 0.06, "{eigenvalues:?}");
        }
        assert!(
            (eigenvalues[8] * n as f64 - 1.0).abs() < 0.03,
            "{eigenvalues:?}"
        );
        let angles = principal_angles(&found, &so(n));
        assert!(angles.iter().all(|a| a.to_degrees() < 0.1), "{angles:?}");
    }

    /// The checker and planner give an `invariance` model its predictor: an
    /// MLP from x to the data's y, checked against the data like a
    /// regression, where pair methods keep refusing an output unlike the input.
    #[test]
    fn an_invariance_model_plans_its_predictor() {
        let spec = |strategy: &str, output: usize| {
            format!(
                "model m {{
  data     builtin.o5_synthetic(train = 10, val = 10, test = 10)
  input    x: R^10
  output   y: R^{output}
  symmetry learn(generators = 10, dim = 5) => {strategy}
  net      mlp(hidden = [8], act = tanh)
}}"
            )
        };
        let compile = |text: String| crate::compile(&text, "m.sym", ".".as_ref());
        let graph = &compile(spec("invariance", 1)).unwrap().graphs[0];
        let last = &graph.nodes[graph.output];
        assert_eq!(
            last.op,
            crate::plan::Op::Linear {
                inp: 8,
                out: 1,
                bias: true,
                init: crate::plan::LinearInit::Uniform,
            }
        );
        assert_eq!(graph.parameters, 10 * 8 + 8 + 8 + 1);
        let wrong = compile(spec("invariance", 2)).unwrap_err().render(false);
        assert!(wrong.contains("1 outputs"), "{wrong}");
        let pairs = compile(spec("operator", 1)).unwrap_err().render(false);
        assert!(pairs.contains("pairs (x, x′) of equal size"), "{pairs}");
        assert!(pairs.contains("no network to configure"), "{pairs}");
    }

    /// Discover, then enforce: a predictor trained on y = ‖x‖² (x ∈ R³)
    /// yields so(3) with a clear gap; its generators change the prediction far
    /// less than random ones at finite t, Augerino gives them wider extents,
    /// and the exported group builds an invariant EMLP.
    #[test]
    fn discover_so3_from_an_invariant_regression_and_enforce_it() {
        let dir = std::env::temp_dir().join(format!("symc-invariance-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rows: String = gaussian(300, 3, 3)
            .chunks(3)
            .map(|r| {
                let y: f32 = r.iter().map(|v| v * v).sum();
                format!("{},{},{},{y}\n", r[0], r[1], r[2])
            })
            .collect();
        std::fs::write(dir.join("data.csv"), format!("a,b,c,y\n{rows}")).unwrap();
        let learn = r#"
model norm {
  data     file("data.csv", inputs = 3, outputs = 1)
  input    x: R^3
  output   y: R^1
  symmetry learn(generators = 3, dim = 3) => invariance
  net      mlp(hidden = [32, 32], act = tanh)
  export   group Rot3
  train    (steps = 300, lr = 1e-2, seed = 0)
}
"#;
        let graph = &crate::compile(learn, "learn.sym", &dir).unwrap().graphs[0];
        let splits = crate::data::load(&graph.data, &dir).unwrap();
        let mut steps = 0;
        let found = super::super::discover(graph, &splits, &mut |_| steps += 1).unwrap();
        // Progress follows the predictor's training.
        assert_eq!(steps, 300);
        assert_eq!(found.method, "invariance");
        let nearest = found.analysis.nearest().unwrap();
        assert_eq!(nearest.name, "SO(3)");
        assert!(nearest.largest_angle().to_degrees() < 5.0, "{nearest:?}");
        let report = found.invariance.as_ref().unwrap();
        assert!(report.gap > 10.0, "{report:?}");
        let at_one = report.transformations.iter().find(|c| c.t == 1.0).unwrap();
        assert!(at_one.found < 0.2 * at_one.random, "{report:?}");
        let narrowest = report
            .extents
            .found
            .iter()
            .copied()
            .fold(f64::MAX, f64::min);
        assert!(
            report.extents.random.iter().all(|&r| r < narrowest),
            "{report:?}"
        );
        found.write(&dir).unwrap();
        super::super::tests::assert_enforceable(&dir, "Rot3", 3, 1, found.tolerance());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
