//! The built-in benchmark generators (EMLP's synthetic tasks) and the digits set.

use super::{DataError, Params, SplitRule, Splits, Table};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use std::collections::BTreeMap;

/// A sampler of one (x, y) pair, computed in f64.
struct Task {
    x_dim: usize,
    y_dim: usize,
    sample: fn(&mut StdRng, &mut [f64], &mut [f64]),
    /// Whether the set takes a `noise` parameter (see [`add_noise`]).
    noisy: bool,
}

const O5: Task = Task {
    x_dim: 10,
    y_dim: 1,
    sample: o5_synthetic,
    noisy: true,
};
const INERTIA: Task = Task {
    x_dim: 20,
    y_dim: 9,
    sample: inertia,
    noisy: false,
};
const MODIFIED_INERTIA: Task = Task {
    x_dim: 20,
    y_dim: 9,
    sample: modified_inertia,
    noisy: false,
};
const LORENTZ: Task = Task {
    x_dim: 16,
    y_dim: 1,
    sample: lorentz,
    noisy: false,
};

/// The generated data set `name`, or `None` when `name` is not one of this module's.
pub(super) fn generate(
    name: &str,
    params: &BTreeMap<String, f64>,
) -> Option<Result<Splits, DataError>> {
    let task = match name {
        "o5_synthetic" => O5,
        "inertia" => INERTIA,
        "modified_inertia" => MODIFIED_INERTIA,
        "lorentz" => LORENTZ,
        "digits" => return Some(digits(params)),
        _ => return None,
    };
    Some(sampled(name, &task, params))
}

fn sampled(name: &str, task: &Task, params: &BTreeMap<String, f64>) -> Result<Splits, DataError> {
    let known: &[&str] = if task.noisy {
        &["train", "val", "test", "seed", "noise"]
    } else {
        &["train", "val", "test", "seed"]
    };
    let params = Params::new(name, params, known)?;
    let seed = params.count("seed", 0)?;
    let noise = if task.noisy {
        params.fraction("noise", 0.0)?
    } else {
        0.0
    };
    let split = |index: u64, rows: u64| -> Table {
        // Each split has its own stream, so one split's size never moves another's samples.
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(3).wrapping_add(index));
        let rows = rows as usize;
        let (mut x, mut y) = (vec![0.0; task.x_dim], vec![0.0; task.y_dim]);
        let mut table = Table {
            x: Vec::with_capacity(rows * task.x_dim),
            y: Vec::with_capacity(rows * task.y_dim),
            rows,
            x_dim: task.x_dim,
            y_dim: task.y_dim,
        };
        for _ in 0..rows {
            (task.sample)(&mut rng, &mut x, &mut y);
            table.x.extend(x.iter().map(|&v| v as f32));
            table.y.extend(y.iter().map(|&v| v as f32));
        }
        if noise > 0.0 {
            let mut rng =
                StdRng::seed_from_u64(seed.wrapping_mul(3).wrapping_add(index) ^ NOISE_STREAM);
            add_noise(&mut table, noise, &mut rng);
        }
        table
    };
    Ok(Splits {
        train: split(0, params.count("train", 1000)?),
        val: split(1, params.count("val", 1000)?),
        test: split(2, params.count("test", 5000)?),
    })
}

/// Seeds the noise apart from the samples, so that every noise level keeps the same inputs.
const NOISE_STREAM: u64 = 0x006e_6f69_7365;

/// Adds to each target column Gaussian noise of standard deviation `noise`
/// times the column's standard deviation over the split: `noise = 0.01` is
/// 1% noise whatever the target's units. The inputs are left exact, so an
/// invariant target stays a function of the invariants, only observed with error.
fn add_noise(table: &mut Table, noise: f64, rng: &mut StdRng) {
    let (rows, width) = (table.rows.max(1) as f64, table.y_dim);
    for column in 0..width {
        let values = || {
            table
                .y
                .iter()
                .skip(column)
                .step_by(width)
                .map(|&v| f64::from(v))
        };
        let mean = values().sum::<f64>() / rows;
        let std = (values().map(|v| (v - mean).powi(2)).sum::<f64>() / rows).sqrt();
        for v in table.y.iter_mut().skip(column).step_by(width) {
            *v += (noise * std * normal(rng)) as f32;
        }
    }
}

fn normal(rng: &mut StdRng) -> f64 {
    StandardNormal.sample(rng)
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

fn o5_value(x: &[f64]) -> f64 {
    let (x1, x2) = x.split_at(5);
    let (n1, n2) = (norm(x1), norm(x2));
    let dot: f64 = x1.iter().zip(x2).map(|(a, b)| a * b).sum();
    n1.sin() - 0.5 * n2.powi(3) + dot / (n1 * n2)
}

fn o5_synthetic(rng: &mut StdRng, x: &mut [f64], y: &mut [f64]) {
    x.iter_mut().for_each(|v| *v = normal(rng));
    y[0] = o5_value(x);
}

const BODIES: usize = 5;

/// Masses (softplus of a standard normal) then positions, as EMLP's `Inertia`.
fn sample_bodies(rng: &mut StdRng, x: &mut [f64]) {
    x.iter_mut().for_each(|v| *v = normal(rng));
    for m in &mut x[..BODIES] {
        *m = m.exp().ln_1p();
    }
}

/// y = Σᵢ mᵢ (‖rᵢ‖² I − rᵢrᵢᵀ), row-major.
fn inertia_tensor(x: &[f64], y: &mut [f64]) {
    y.iter_mut().for_each(|v| *v = 0.0);
    let (masses, positions) = x.split_at(BODIES);
    for (m, r) in masses.iter().zip(positions.chunks(3)) {
        let r2: f64 = r.iter().map(|a| a * a).sum();
        for i in 0..3 {
            for j in 0..3 {
                let diagonal = if i == j { r2 } else { 0.0 };
                y[3 * i + j] += m * (diagonal - r[i] * r[j]);
            }
        }
    }
}

fn inertia(rng: &mut StdRng, x: &mut [f64], y: &mut [f64]) {
    sample_bodies(rng, x);
    inertia_tensor(x, y);
}

/// The Residual Pathway Priors task: y = I + 0.3 (I e₃) e₃ᵀ, which adds 0.3 I₍ᵢ,₃₎ to
/// the third column of every row.
fn modified_inertia(rng: &mut StdRng, x: &mut [f64], y: &mut [f64]) {
    inertia(rng, x, y);
    for i in 0..3 {
        y[3 * i + 2] += 0.3 * y[3 * i + 2];
    }
}

const ETA: [f64; 4] = [1.0, -1.0, -1.0, -1.0];

fn minkowski(a: &[f64], b: &[f64]) -> f64 {
    (0..4).map(|i| ETA[i] * a[i] * b[i]).sum()
}

fn lorentz_amplitude(x: &[f64]) -> f64 {
    let p: Vec<&[f64]> = x.chunks(4).collect();
    let electron = minkowski(p[0], p[2]) - minkowski(p[0], p[0]);
    let muon = minkowski(p[1], p[3]) - minkowski(p[1], p[1]);
    let mut sum = 0.0;
    for i in 0..4 {
        for j in 0..4 {
            let eta = if i == j { ETA[i] } else { 0.0 };
            let le = p[0][i] * p[2][j] - electron * eta;
            let lmu = ETA[i] * p[1][i] * ETA[j] * p[3][j] - muon * eta;
            sum += le * lmu;
        }
    }
    4.0 * sum
}

fn lorentz(rng: &mut StdRng, x: &mut [f64], y: &mut [f64]) {
    x.iter_mut().for_each(|v| *v = normal(rng) / 4.0);
    y[0] = lorentz_amplitude(x);
}

/// UCI optdigits' test set (as scikit-learn ships it): the label, then 64 pixel
/// columns. The bundled specs read the same file, so it is stored once.
const DIGITS_CSV: &str = include_str!("../../specs/data/digits8x8.csv");

fn digits(params: &BTreeMap<String, f64>) -> Result<Splits, DataError> {
    let params = Params::new("digits", params, &["val_fraction", "test_fraction", "seed"])?;
    let defaults = SplitRule::default();
    let rule = SplitRule {
        val: params.fraction("val_fraction", defaults.val)?,
        test: params.fraction("test_fraction", defaults.test)?,
        seed: params.count("seed", defaults.seed)?,
    };
    // The label column comes first: read it as the "input", then swap.
    let read = super::csv::parse(DIGITS_CSV, "digits8x8.csv", 1, 64)?;
    let table = Table {
        x: read.y,
        y: read.x,
        rows: read.rows,
        x_dim: read.y_dim,
        y_dim: read.x_dim,
    };
    rule.split(&table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, Matrix3, Matrix4};

    fn params(counts: &[(&str, f64)]) -> BTreeMap<String, f64> {
        counts.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn small(name: &str) -> Splits {
        generate(
            name,
            &params(&[("train", 20.0), ("val", 5.0), ("test", 7.0), ("seed", 3.0)]),
        )
        .unwrap()
        .unwrap()
    }

    /// A random orthogonal matrix (with det ±1) from the QR of a Gaussian matrix.
    fn random_orthogonal(n: usize, rng: &mut StdRng) -> DMatrix<f64> {
        let q = DMatrix::from_fn(n, n, |_, _| normal(rng)).qr().q();
        q
    }

    #[test]
    fn splits_have_requested_sizes_and_independent_streams() {
        let a = small("inertia");
        assert_eq!((a.train.rows, a.val.rows, a.test.rows), (20, 5, 7));
        assert_eq!(a.train.x.len(), 20 * 20);
        assert_eq!(a.test.y.len(), 7 * 9);
        // Growing the training set leaves the test set as it was.
        let b = generate(
            "inertia",
            &params(&[("train", 40.0), ("val", 5.0), ("test", 7.0), ("seed", 3.0)]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.test, b.test);
        assert_eq!(a.train.x[..], b.train.x[..400]);
        assert_ne!(small("inertia").train, small("lorentz").train);
    }

    #[test]
    fn bad_parameters_are_reported() {
        let err = generate("o5_synthetic", &params(&[("trian", 5.0)]))
            .unwrap()
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown parameter `trian`"),
            "{err}"
        );
        let err = generate("o5_synthetic", &params(&[("train", 2.5)]))
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("non-negative integer"), "{err}");
        assert!(generate("mass_spring", &params(&[])).is_none());
    }

    #[test]
    fn o5_target_matches_definition_and_is_o5_invariant() {
        let splits = small("o5_synthetic");
        let mut rng = StdRng::seed_from_u64(11);
        let q = random_orthogonal(5, &mut rng);
        for i in 0..splits.train.rows {
            let x: Vec<f64> = splits.train.x_row(i).iter().map(|&v| v as f64).collect();
            let x1 = nalgebra::DVector::from_column_slice(&x[..5]);
            let x2 = nalgebra::DVector::from_column_slice(&x[5..]);
            let expected =
                x1.norm().sin() - 0.5 * x2.norm().powi(3) + x1.dot(&x2) / (x1.norm() * x2.norm());
            assert!((splits.train.y_row(i)[0] as f64 - expected).abs() < 1e-5);
            let mut rotated = [0.0; 10];
            rotated[..5].copy_from_slice((&q * &x1).as_slice());
            rotated[5..].copy_from_slice((&q * &x2).as_slice());
            assert!((o5_value(&rotated) - expected).abs() < 1e-9);
        }
    }

    /// `noise` keeps the inputs and moves each target by a relative amount
    /// whose spread is the requested fraction of the targets' own.
    #[test]
    fn o5_noise_is_relative_to_the_targets_spread() {
        let sizes = [("train", 4000.0), ("val", 0.0), ("test", 0.0)];
        let clean = generate("o5_synthetic", &params(&sizes)).unwrap().unwrap();
        let noisy = generate(
            "o5_synthetic",
            &params(&[sizes[0], sizes[1], sizes[2], ("noise", 0.1)]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(clean.train.x, noisy.train.x);
        let std = |v: &mut dyn Iterator<Item = f64>| {
            let v: Vec<f64> = v.collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        let spread = std(&mut clean.train.y.iter().map(|&v| f64::from(v)));
        let errors = std(&mut clean
            .train
            .y
            .iter()
            .zip(&noisy.train.y)
            .map(|(a, b)| f64::from(b - a)));
        // 4000 draws: the sample deviation is within 5% of 0.1·spread.
        assert!((errors / spread - 0.1).abs() < 5e-3, "{errors} vs {spread}");
        let err = generate("inertia", &params(&[("noise", 0.1)]))
            .unwrap()
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown parameter `noise`"),
            "{err}"
        );
    }

    #[test]
    fn inertia_is_the_symmetric_sum_of_point_masses_and_equivariant() {
        let splits = small("inertia");
        let mut rng = StdRng::seed_from_u64(5);
        let r = Matrix3::from_iterator(random_orthogonal(3, &mut rng).iter().copied());
        for i in 0..splits.train.rows {
            let x: Vec<f64> = splits.train.x_row(i).iter().map(|&v| v as f64).collect();
            let masses = &x[..5];
            assert!(masses.iter().all(|&m| m > 0.0));
            let mut expected = Matrix3::zeros();
            for (k, m) in masses.iter().enumerate() {
                let rk = nalgebra::Vector3::from_column_slice(&x[5 + 3 * k..8 + 3 * k]);
                expected += *m * (rk.norm_squared() * Matrix3::identity() - rk * rk.transpose());
            }
            let y = Matrix3::from_row_slice(
                &splits
                    .train
                    .y_row(i)
                    .iter()
                    .map(|&v| v as f64)
                    .collect::<Vec<_>>(),
            );
            assert!((y - y.transpose()).norm() < 1e-6);
            assert!((y - expected).norm() < 1e-4 * expected.norm());
            // Rotating every position rotates the tensor: I(Rr) = R I(r) Rᵀ.
            let mut rotated = x.clone();
            for k in 0..5 {
                let rk = r * nalgebra::Vector3::from_column_slice(&x[5 + 3 * k..8 + 3 * k]);
                rotated[5 + 3 * k..8 + 3 * k].copy_from_slice(rk.as_slice());
            }
            let mut out = [0.0; 9];
            inertia_tensor(&rotated, &mut out);
            assert!((Matrix3::from_row_slice(&out) - r * expected * r.transpose()).norm() < 1e-9);
        }
    }

    #[test]
    fn modified_inertia_adds_the_e3_column_term() {
        let (plain, modified) = (small("inertia"), small("modified_inertia"));
        assert_eq!(plain.train.x, modified.train.x);
        for i in 0..plain.train.rows {
            let inertia = Matrix3::from_row_slice(
                &plain
                    .train
                    .y_row(i)
                    .iter()
                    .map(|&v| v as f64)
                    .collect::<Vec<_>>(),
            );
            let e3 = nalgebra::Vector3::z();
            let expected = inertia + 0.3 * (inertia * e3) * e3.transpose();
            let y = Matrix3::from_row_slice(
                &modified
                    .train
                    .y_row(i)
                    .iter()
                    .map(|&v| v as f64)
                    .collect::<Vec<_>>(),
            );
            assert!((y - expected).norm() < 1e-5 * expected.norm());
        }
    }

    /// A Lorentz transformation: a boost of rapidity `phi` along `axis` after a rotation.
    fn lorentz_transform(rng: &mut StdRng, phi: f64, axis: usize) -> Matrix4<f64> {
        let mut boost = Matrix4::identity();
        boost[(0, 0)] = phi.cosh();
        boost[(axis, axis)] = phi.cosh();
        boost[(0, axis)] = phi.sinh();
        boost[(axis, 0)] = phi.sinh();
        let mut rotation = Matrix4::identity();
        let r = random_orthogonal(3, rng);
        rotation.view_mut((1, 1), (3, 3)).copy_from(&r);
        boost * rotation
    }

    #[test]
    fn lorentz_amplitude_is_lorentz_invariant() {
        let splits = small("lorentz");
        let mut rng = StdRng::seed_from_u64(9);
        let eta = Matrix4::from_diagonal(&nalgebra::Vector4::from(ETA));
        for i in 0..splits.train.rows {
            let lambda = lorentz_transform(&mut rng, 0.7, 1 + i % 3);
            assert!((lambda.transpose() * eta * lambda - eta).norm() < 1e-12);
            let x: Vec<f64> = splits.train.x_row(i).iter().map(|&v| v as f64).collect();
            let y = lorentz_amplitude(&x);
            assert!((splits.train.y_row(i)[0] as f64 - y).abs() < 1e-5 * y.abs().max(1.0));
            let moved: Vec<f64> = x
                .chunks(4)
                .flat_map(|p| (lambda * nalgebra::Vector4::from_column_slice(p)).data.0[0])
                .collect();
            assert!((lorentz_amplitude(&moved) - y).abs() < 1e-10 * y.abs().max(1.0));
        }
    }

    #[test]
    fn digits_are_labelled_8x8_images() {
        let splits = generate("digits", &params(&[])).unwrap().unwrap();
        let total = splits.train.rows + splits.val.rows + splits.test.rows;
        assert_eq!(total, 1797);
        assert_eq!((splits.train.x_dim, splits.train.y_dim), (64, 1));
        assert!(splits.train.x.iter().all(|&p| (0.0..=16.0).contains(&p)));
        let labels = splits.train.y.iter().chain(&splits.test.y);
        assert!(labels
            .clone()
            .all(|&c| c.fract() == 0.0 && (0.0..10.0).contains(&c)));
        assert_eq!(labels.fold(0u32, |seen, &c| seen | 1 << c as u32), 0x3ff);
    }
}
