//! `nbody_spring`: bodies joined pairwise by springs, the graph networks' test system.
//!
//! `n` unit masses in `dims` dimensions, every pair joined by a spring of
//! stiffness 1 and rest length 1:
//! H = Σᵢ ‖pᵢ‖²/2 + Σ_{i<j} (‖xᵢ − xⱼ‖ − 1)²/2.
//! It is invariant to translations of all positions, to rotations and to
//! permutations of the bodies.
//!
//! A row is the state `(x, p)` as two blocks, every body's position (`n × dims`,
//! row-major) and then every body's momentum; the target is the exact time
//! derivative `(ẋ, ṗ)` in the same layout. Each trajectory starts at positions
//! ~ N(0, I) and momenta ~ N(0, ¼ I) and is integrated with RK4 (ten steps
//! between recorded points) over t ∈ [0, 3]; all its points go to one split.
//!
//! Parameters: `bodies` (3), `dims` (2), `points` per trajectory (30), and the
//! numbers of trajectories `train` (40), `val` (10) and `test` (20); `seed` (0).

use super::{DataError, Params, Splits, Table};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use std::collections::BTreeMap;

const SPAN: f64 = 3.0;
const SUBSTEPS: usize = 10;

/// The data set `name`, or `None` when it is not this module's.
pub(super) fn generate(
    name: &str,
    params: &BTreeMap<String, f64>,
) -> Option<Result<Splits, DataError>> {
    (name == "nbody_spring").then(|| spring(params))
}

fn spring(params: &BTreeMap<String, f64>) -> Result<Splits, DataError> {
    let known = ["bodies", "dims", "points", "train", "val", "test", "seed"];
    let params = Params::new("nbody_spring", params, &known)?;
    let bodies = params.count("bodies", 3)? as usize;
    let dims = params.count("dims", 2)? as usize;
    let points = params.count("points", 30)? as usize;
    let seed = params.count("seed", 0)?;
    if bodies == 0 || dims == 0 || points == 0 {
        return Err(params.error("`bodies`, `dims` and `points` must be positive".into()));
    }
    let system = Springs { bodies, dims };
    let split = |index: u64, trajectories: u64| {
        // Each split has its own stream, so one split's size never moves another's samples.
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(3).wrapping_add(index));
        system.table(&mut rng, trajectories as usize, points)
    };
    Ok(Splits {
        train: split(0, params.count("train", 40)?),
        val: split(1, params.count("val", 10)?),
        test: split(2, params.count("test", 20)?),
    })
}

struct Springs {
    bodies: usize,
    dims: usize,
}

impl Springs {
    /// `(ẋ, ṗ)` at the state `(x, p)`, both in the two-block layout.
    fn derivative(&self, state: &[f64]) -> Vec<f64> {
        let (n, d) = (self.bodies, self.dims);
        let (x, p) = state.split_at(n * d);
        let mut out = vec![0.0; 2 * n * d];
        out[..n * d].copy_from_slice(p);
        let force = &mut out[n * d..];
        for i in 0..n {
            for j in 0..n {
                if i == j {
                    continue;
                }
                let r: Vec<f64> = (0..d).map(|c| x[i * d + c] - x[j * d + c]).collect();
                let dist = r.iter().map(|v| v * v).sum::<f64>().sqrt();
                if dist > 0.0 {
                    let pull = (dist - 1.0) / dist;
                    for c in 0..d {
                        force[i * d + c] -= pull * r[c];
                    }
                }
            }
        }
        out
    }

    fn rk4(&self, state: &mut [f64], h: f64) {
        let step = |s: &[f64], k: &[f64], a: f64| -> Vec<f64> {
            s.iter().zip(k).map(|(s, k)| s + a * k).collect()
        };
        let k1 = self.derivative(state);
        let k2 = self.derivative(&step(state, &k1, h / 2.0));
        let k3 = self.derivative(&step(state, &k2, h / 2.0));
        let k4 = self.derivative(&step(state, &k3, h));
        for (i, s) in state.iter_mut().enumerate() {
            *s += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
    }

    fn table(&self, rng: &mut StdRng, trajectories: usize, points: usize) -> Table {
        let width = 2 * self.bodies * self.dims;
        let mut table = Table {
            x: Vec::with_capacity(trajectories * points * width),
            y: Vec::with_capacity(trajectories * points * width),
            rows: trajectories * points,
            x_dim: width,
            y_dim: width,
        };
        let h = SPAN / (points.max(2) - 1) as f64 / SUBSTEPS as f64;
        for _ in 0..trajectories {
            let mut state: Vec<f64> = (0..width)
                .map(|k| {
                    let z: f64 = StandardNormal.sample(rng);
                    if k < width / 2 {
                        z
                    } else {
                        0.5 * z
                    }
                })
                .collect();
            for point in 0..points {
                if point > 0 {
                    (0..SUBSTEPS).for_each(|_| self.rk4(&mut state, h));
                }
                table.x.extend(state.iter().map(|&v| v as f32));
                table
                    .y
                    .extend(self.derivative(&state).iter().map(|&v| v as f32));
            }
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system() -> Springs {
        Springs { bodies: 3, dims: 2 }
    }

    impl Springs {
        fn energy(&self, state: &[f64]) -> f64 {
            let (n, d) = (self.bodies, self.dims);
            let (x, p) = state.split_at(n * d);
            let kinetic = p.iter().map(|v| v * v).sum::<f64>() / 2.0;
            let mut potential = 0.0;
            for i in 0..n {
                for j in i + 1..n {
                    let dist = (0..d)
                        .map(|c| (x[i * d + c] - x[j * d + c]).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    potential += (dist - 1.0).powi(2) / 2.0;
                }
            }
            kinetic + potential
        }
    }

    fn params(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn derivative_is_hamiltons_equations() {
        let s = system();
        let state: Vec<f64> = (0..12)
            .map(|k| ((k * 37 % 11) as f64 - 5.0) / 4.0)
            .collect();
        let d = s.derivative(&state);
        let h = 1e-6;
        for k in 0..12 {
            let (mut plus, mut minus) = (state.clone(), state.clone());
            plus[k] += h;
            minus[k] -= h;
            let grad = (s.energy(&plus) - s.energy(&minus)) / (2.0 * h);
            // ẋ = ∂H/∂p, ṗ = −∂H/∂x.
            let expected = if k < 6 { -d[k + 6] } else { d[k - 6] };
            assert!(
                (grad - expected).abs() < 1e-6,
                "coordinate {k}: {grad} vs {expected}"
            );
        }
    }

    #[test]
    fn trajectories_conserve_energy_and_targets_are_derivatives() {
        let s = system();
        let splits = spring(&params(&[("train", 2.0), ("val", 1.0), ("test", 1.0)])).unwrap();
        let t = &splits.train;
        assert_eq!((t.rows, t.x_dim, t.y_dim), (60, 12, 12));
        for trajectory in t.x.chunks_exact(30 * 12) {
            let state = |i: usize| -> Vec<f64> {
                trajectory[i * 12..(i + 1) * 12]
                    .iter()
                    .map(|&v| v as f64)
                    .collect()
            };
            let (first, last) = (s.energy(&state(0)), s.energy(&state(29)));
            assert!(
                (first - last).abs() < 1e-4 * first.max(1.0),
                "{first} vs {last}"
            );
        }
        let row: Vec<f64> = t.x_row(7).iter().map(|&v| v as f64).collect();
        let expected = s.derivative(&row);
        for (y, e) in t.y_row(7).iter().zip(&expected) {
            assert!((*y as f64 - e).abs() < 1e-5 * (1.0 + e.abs()));
        }
    }

    #[test]
    fn more_bodies_and_bad_parameters() {
        let four = spring(&params(&[("bodies", 4.0), ("dims", 3.0), ("train", 1.0)])).unwrap();
        assert_eq!(four.train.x_dim, 24);
        assert!(spring(&params(&[("bodies", 0.0)])).is_err());
        assert!(spring(&params(&[("mass", 1.0)])).is_err());
        assert!(generate("nbody_gravity", &params(&[])).is_none());
    }
}
