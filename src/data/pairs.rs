//! Pairs (x, x′) related by a one-parameter transformation x′ = exp(A)x, for
//! learning symmetries: the input is x, the target x′.
//!
//! | name | n | A | truth |
//! | --- | --- | --- | --- |
//! | `rotation2_pairs` | 2 | t·[[0, −1], [1, 0]] | so(2) |
//! | `boost2_pairs` | 2 | t·[[0, 1], [1, 0]] | so(1,1) |
//! | `scaling2_pairs` | 2 | t·I | scaling |
//! | `rotation3_pairs` | 3 | Σᵢ tᵢLᵢ, the three rotations Lᵢ | so(3) |
//! | `oscillator_pairs` | 2 | Δt·[[0, 1], [−ω², 0]] | the flow of H = (p² + ω²q²)/2 |
//! | `observed_oscillator_pairs` | 2, seen in R⁶ | as `oscillator_pairs` | the same flow, acting on (q, p) |
//!
//! x ~ N(0, I) and every tᵢ ~ U(−`extent`, `extent`) (default 1). A sample
//! holds `points` such points (default 1; x and x′ then have `points`·n
//! components, point after point), all moved by the same transformation —
//! with one point per sample, n generators of Rⁿ would fit any pair. For the
//! oscillator, x is a point of a trajectory — a standard normal start
//! evolved for a uniform time in one period — and x′ the point `dt` later
//! (`omega` default 2, `dt` default 0.3). The observed oscillator is the
//! same pair of states seen through the fixed smooth map φ: R² → R⁶ of
//! [`observe`], so its flow is nonlinear in the observations and linear only
//! in a latent (q, p) that a method must find. Gaussian noise of standard
//! deviation `noise` (default 0; the data have unit scale, so 0.01 is 1%) is
//! added to x and to x′ independently. Parameters `train`, `val`, `test`
//! (defaults 1000, 200, 200) and `seed` as for every generator.

use super::{DataError, Params, Splits, Table};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::collections::BTreeMap;

/// The transformations, by name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Rotation2,
    Boost2,
    Scaling2,
    Rotation3,
    Oscillator,
    ObservedOscillator,
}

impl Kind {
    fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "rotation2_pairs" => Kind::Rotation2,
            "boost2_pairs" => Kind::Boost2,
            "scaling2_pairs" => Kind::Scaling2,
            "rotation3_pairs" => Kind::Rotation3,
            "oscillator_pairs" => Kind::Oscillator,
            "observed_oscillator_pairs" => Kind::ObservedOscillator,
            _ => return None,
        })
    }

    /// The size of the space the transformation acts on linearly.
    fn dim(self) -> usize {
        if self == Kind::Rotation3 {
            3
        } else {
            2
        }
    }

    /// The components of one point as the data show it.
    fn observed(self) -> usize {
        if self == Kind::ObservedOscillator {
            OBSERVED
        } else {
            self.dim()
        }
    }

    fn oscillates(self) -> bool {
        matches!(self, Kind::Oscillator | Kind::ObservedOscillator)
    }
}

/// Components of an observed oscillator state.
const OBSERVED: usize = 6;

/// The observation of an oscillator state (q, p) of angular frequency ω:
/// with u = ωq/s and v = p/s, where s = √((1 + ω²)/2) is the states'
/// standard deviation,
///
/// φ(q, p) = (tanh 0.8u, tanh 0.8v, tanh ½(u + v), tanh ½(u − v), tanh 0.4uv, sin(0.6u + 0.4v)).
///
/// The flow turns (u, v) rigidly by ωΔt; φ bends that turn out of any
/// plane. φ is smooth, and injective through its first two components.
fn observe(q: f64, p: f64, omega: f64) -> [f64; OBSERVED] {
    let s = ((1.0 + omega * omega) / 2.0).sqrt();
    let (u, v) = (omega * q / s, p / s);
    [
        (0.8 * u).tanh(),
        (0.8 * v).tanh(),
        (0.5 * (u + v)).tanh(),
        (0.5 * (u - v)).tanh(),
        (0.4 * u * v).tanh(),
        (0.6 * u + 0.4 * v).sin(),
    ]
}

/// The settings of one pair set.
struct Settings {
    kind: Kind,
    extent: f64,
    noise: f64,
    omega: f64,
    dt: f64,
    points: usize,
}

impl Settings {
    fn read(kind: Kind, params: &Params) -> Result<Settings, DataError> {
        Ok(Settings {
            kind,
            extent: params.positive("extent", 1.0)?,
            noise: params.fraction("noise", 0.0)?,
            omega: params.positive("omega", 2.0)?,
            dt: params.positive("dt", 0.3)?,
            points: params.count("points", 1)?.max(1) as usize,
        })
    }

    /// The generators of the true symmetry (unnormalised).
    fn generators(&self) -> Vec<DMatrix<f64>> {
        let m = |a: f64, b: f64, c: f64, d: f64| DMatrix::from_row_slice(2, 2, &[a, b, c, d]);
        match self.kind {
            Kind::Rotation2 => vec![m(0.0, -1.0, 1.0, 0.0)],
            Kind::Boost2 => vec![m(0.0, 1.0, 1.0, 0.0)],
            Kind::Scaling2 => vec![DMatrix::identity(2, 2)],
            Kind::Oscillator | Kind::ObservedOscillator => {
                vec![m(0.0, 1.0, -self.omega * self.omega, 0.0)]
            }
            Kind::Rotation3 => [(0, 1), (0, 2), (1, 2)]
                .iter()
                .map(|&(i, j)| {
                    let mut l = DMatrix::zeros(3, 3);
                    l[(i, j)] = 1.0;
                    l[(j, i)] = -1.0;
                    l
                })
                .collect(),
        }
    }

    /// One sample (x, x′) of `points` points (columns), noise included.
    fn sample(
        &self,
        rng: &mut StdRng,
        generators: &[DMatrix<f64>],
    ) -> (DMatrix<f64>, DMatrix<f64>) {
        let n = self.kind.dim();
        let start = DMatrix::from_fn(n, self.points, |_, _| rng.sample::<f64, _>(StandardNormal));
        let (x, x_next) = if self.kind.oscillates() {
            let period = 2.0 * std::f64::consts::PI / self.omega;
            let x = (&generators[0] * rng.gen_range(0.0..period)).exp() * start;
            let x_next = (&generators[0] * self.dt).exp() * &x;
            (x, x_next)
        } else {
            let algebra = generators.iter().fold(DMatrix::zeros(n, n), |acc, g| {
                acc + g * rng.gen_range(-self.extent..self.extent)
            });
            let x_next = algebra.exp() * &start;
            (start, x_next)
        };
        let (x, x_next) = if self.kind == Kind::ObservedOscillator {
            let seen = |states: DMatrix<f64>| {
                let columns = states
                    .column_iter()
                    .flat_map(|s| observe(s[0], s[1], self.omega));
                DMatrix::from_iterator(OBSERVED, self.points, columns)
            };
            (seen(x), seen(x_next))
        } else {
            (x, x_next)
        };
        let mut noisy =
            |v: DMatrix<f64>| v.map(|a| a + self.noise * rng.sample::<f64, _>(StandardNormal));
        (noisy(x), noisy(x_next))
    }
}

const KNOWN: [&str; 9] = [
    "train", "val", "test", "seed", "extent", "noise", "omega", "dt", "points",
];

/// The generated pair set `name`, or `None` when `name` is not one of this module's.
pub(super) fn generate(
    name: &str,
    params: &BTreeMap<String, f64>,
) -> Option<Result<Splits, DataError>> {
    let kind = Kind::from_name(name)?;
    Some(generate_kind(name, kind, params))
}

fn generate_kind(
    name: &str,
    kind: Kind,
    params: &BTreeMap<String, f64>,
) -> Result<Splits, DataError> {
    let params = Params::new(name, params, &KNOWN)?;
    let settings = Settings::read(kind, &params)?;
    let seed = params.count("seed", 0)?;
    let generators = settings.generators();
    let n = kind.observed() * settings.points;
    let split = |index: u64, rows: u64| -> Table {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(3).wrapping_add(index));
        let rows = rows as usize;
        let mut table = Table {
            x: Vec::with_capacity(rows * n),
            y: Vec::with_capacity(rows * n),
            rows,
            x_dim: n,
            y_dim: n,
        };
        for _ in 0..rows {
            let (x, x_next) = settings.sample(&mut rng, &generators);
            table.x.extend(x.iter().map(|&v| v as f32));
            table.y.extend(x_next.iter().map(|&v| v as f32));
        }
        table
    };
    Ok(Splits {
        train: split(0, params.count("train", 1000)?),
        val: split(1, params.count("val", 200)?),
        test: split(2, params.count("test", 200)?),
    })
}

/// The generators of the symmetry behind the pair set `name`, for comparing
/// learned generators with the truth; `None` for any other data set.
///
/// ```
/// use std::collections::BTreeMap;
/// let truth = symc::data::true_generators("rotation3_pairs", &BTreeMap::new()).unwrap().unwrap();
/// assert_eq!(truth.len(), 3);
/// assert!(symc::data::true_generators("o5_synthetic", &BTreeMap::new()).is_none());
/// ```
pub fn true_generators(
    name: &str,
    params: &BTreeMap<String, f64>,
) -> Option<Result<Vec<DMatrix<f64>>, DataError>> {
    let kind = Kind::from_name(name)?;
    Some(
        Params::new(name, params, &KNOWN)
            .and_then(|p| Settings::read(kind, &p))
            .map(|s| s.generators()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DVector;

    fn params(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn rows(t: &Table, i: usize) -> (DVector<f64>, DVector<f64>) {
        let v = |r: &[f32]| DVector::from_iterator(r.len(), r.iter().map(|&a| a as f64));
        (v(t.x_row(i)), v(t.y_row(i)))
    }

    /// Without noise each pair keeps what its group keeps: the norm under
    /// rotations, x₀² − x₁² under boosts, the ratio x₀/x₁ under scaling, the
    /// energy (p² + ω²q²)/2 along the oscillator's flow.
    #[test]
    fn noiseless_pairs_keep_their_invariants() {
        let quiet = params(&[("train", 50.0), ("val", 0.0), ("test", 0.0)]);
        type Invariant = fn(&DVector<f64>) -> f64;
        let cases: [(&str, Invariant); 5] = [
            ("rotation2_pairs", |v| v.norm()),
            ("rotation3_pairs", |v| v.norm()),
            ("boost2_pairs", |v| v[0] * v[0] - v[1] * v[1]),
            ("scaling2_pairs", |v| v[0] / v[1]),
            ("oscillator_pairs", |v| {
                (v[1] * v[1] + 4.0 * v[0] * v[0]) / 2.0
            }),
        ];
        for (name, invariant) in cases {
            let splits = generate(name, &quiet).unwrap().unwrap();
            assert_eq!(splits.train.rows, 50);
            for i in 0..50 {
                let (x, x_next) = rows(&splits.train, i);
                let (a, b) = (invariant(&x), invariant(&x_next));
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                    "{name}: {a} vs {b}"
                );
            }
        }
    }

    /// The oscillator's pairs are exp(dt·A) apart: the closed-form flow
    /// q(t) = q cos ωt + (p/ω) sin ωt, p(t) = −qω sin ωt + p cos ωt.
    #[test]
    fn oscillator_pairs_follow_the_closed_form_flow() {
        let p = params(&[("train", 20.0), ("omega", 3.0), ("dt", 0.2)]);
        let splits = generate("oscillator_pairs", &p).unwrap().unwrap();
        let (s, c) = (0.6_f64.sin(), 0.6_f64.cos());
        for i in 0..20 {
            let (x, x_next) = rows(&splits.train, i);
            let q = x[0] * c + x[1] / 3.0 * s;
            let pp = -x[0] * 3.0 * s + x[1] * c;
            assert!((q - x_next[0]).abs() < 1e-5 && (pp - x_next[1]).abs() < 1e-5);
        }
    }

    /// Undoing φ through its first two components, (tanh 0.8u, tanh 0.8v),
    /// gives states (u, v) that each pair turns rigidly by ωΔt, and the other
    /// four components are φ's at that state.
    #[test]
    fn observed_oscillator_pairs_are_a_turn_seen_through_the_map() {
        let p = params(&[("train", 30.0), ("omega", 3.0), ("dt", 0.2)]);
        let splits = generate("observed_oscillator_pairs", &p).unwrap().unwrap();
        assert_eq!((splits.train.x_dim, splits.train.y_dim), (6, 6));
        let (s, c) = (0.6_f64.sin(), 0.6_f64.cos());
        let state = |y: &DVector<f64>| (y[0].atanh() / 0.8, y[1].atanh() / 0.8);
        let scale = 5.0_f64.sqrt();
        for i in 0..30 {
            let (x, x_next) = rows(&splits.train, i);
            let ((u, v), (u_next, v_next)) = (state(&x), state(&x_next));
            // u = ωq/s, v = p/s and q̇ = p, ṗ = −ω²q turn (u, v) clockwise.
            assert!((u * c + v * s - u_next).abs() < 1e-3, "{u}, {v} → {u_next}");
            assert!(
                (-u * s + v * c - v_next).abs() < 1e-3,
                "{u}, {v} → {v_next}"
            );
            let seen = observe(u * scale / 3.0, v * scale, 3.0);
            assert!(seen.iter().zip(x.iter()).all(|(a, b)| (a - b).abs() < 1e-4));
        }
        let truth = true_generators("observed_oscillator_pairs", &p)
            .unwrap()
            .unwrap();
        assert_eq!(truth[0][(1, 0)], -9.0);
    }

    /// Noise of standard deviation σ shows as the spread of ‖x′‖ − ‖x‖ for rotations.
    #[test]
    fn noise_has_the_requested_size() {
        let p = params(&[("train", 4000.0), ("noise", 0.1), ("seed", 2.0)]);
        let splits = generate("rotation2_pairs", &p).unwrap().unwrap();
        let diffs: Vec<f64> = (0..4000)
            .map(|i| {
                let (x, x_next) = rows(&splits.train, i);
                x_next.norm() - x.norm()
            })
            .collect();
        let var = diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64;
        // The difference of two radial noises of variance σ² each has variance 2σ².
        assert!((var / 0.02 - 1.0).abs() < 0.15, "variance {var}");
    }

    /// The points of one sample share their rotation: the Gram matrix XᵀX of
    /// a sample's points (all their lengths and angles) is kept.
    #[test]
    fn points_of_a_sample_move_together() {
        let p = params(&[("train", 10.0), ("points", 4.0)]);
        let splits = generate("rotation3_pairs", &p).unwrap().unwrap();
        assert_eq!(splits.train.x_dim, 12);
        for i in 0..10 {
            let points = |r: &[f32]| DMatrix::from_iterator(3, 4, r.iter().map(|&a| a as f64));
            let (x, x_next) = (points(splits.train.x_row(i)), points(splits.train.y_row(i)));
            let gram = x.transpose() * &x;
            assert!((x_next.transpose() * &x_next - &gram).amax() < 1e-5 * gram.amax());
            assert!((x_next - &x).amax() > 1e-3);
        }
    }

    #[test]
    fn unknown_parameters_and_names_are_refused() {
        assert!(generate("rotation2_pairs", &params(&[("angle", 1.0)]))
            .unwrap()
            .is_err());
        assert!(generate("rotation2_pairs", &params(&[("noise", 2.0)]))
            .unwrap()
            .is_err());
        assert!(generate("rotation4_pairs", &params(&[])).is_none());
    }
}
