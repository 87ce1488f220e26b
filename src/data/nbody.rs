//! `nbody_spring` and `nbody_gravity`: n unit masses in `dims` dimensions with
//! a pair potential V, the graph networks' test systems:
//! H = Σᵢ ‖pᵢ‖²/2 + Σ_{i<j} V(‖xᵢ − xⱼ‖), with
//!
//! | name | V(ρ) |
//! | --- | --- |
//! | `nbody_spring` | (ρ − 1)²/2: every pair joined by a spring of stiffness 1 and rest length 1 |
//! | `nbody_gravity` | −1/√(ρ² + ε²): Newtonian gravity (G = 1) softened by ε = `softening` |
//!
//! Both are invariant to translations of all positions, to rotations and to
//! permutations of the bodies, and conserve total linear momentum Σᵢ pᵢ.
//!
//! A row is the state `(x, p)` as two blocks, every body's position (`n × dims`,
//! row-major) and then every body's momentum; the target is the exact time
//! derivative `(ẋ, ṗ)` in the same layout. Each trajectory starts at positions
//! ~ N(0, I) and momenta ~ N(0, ¼ I) (gravity: with the mean momentum removed,
//! so the bodies stay together) and is integrated with RK4 over t ∈ [0, 3];
//! all its points go to one split.
//!
//! Parameters: `bodies` (3), `dims` (2), `points` per trajectory (30), and the
//! numbers of trajectories `train` (40), `val` (10) and `test` (20); `seed`
//! (0); for gravity `softening` (0.1).

use super::systems::{trajectory, StateKind, System, Trajectory};
use super::{DataError, Params, Splits};
use crate::data::systems::{table, Dataset};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use std::collections::BTreeMap;

const SPAN: f64 = 3.0;

/// The names of the total-momentum components, by axis.
const AXES: [&str; 3] = ["momentum_x", "momentum_y", "momentum_z"];

/// The data set `name` as tables, or `None` when it is not this module's.
pub(super) fn generate(
    name: &str,
    params: &BTreeMap<String, f64>,
) -> Option<Result<Splits, DataError>> {
    simulate(name, params).map(|data| {
        let data = data?;
        let width = 2 * data.system.coordinates();
        Ok(Splits {
            train: table(&data.train, width),
            val: table(&data.val, width),
            test: table(&data.test, width),
        })
    })
}

/// The trajectories of system `name` with the system itself, or `None` when
/// it is not this module's.
pub(super) fn simulate(
    name: &str,
    params: &BTreeMap<String, f64>,
) -> Option<Result<Dataset, DataError>> {
    let gravity = match name {
        "nbody_spring" => false,
        "nbody_gravity" => true,
        _ => return None,
    };
    Some(dataset(name, params, gravity))
}

fn dataset(
    name: &str,
    params: &BTreeMap<String, f64>,
    gravity: bool,
) -> Result<Dataset, DataError> {
    let mut known = vec!["bodies", "dims", "points", "train", "val", "test", "seed"];
    if gravity {
        known.push("softening");
    }
    let params = Params::new(name, params, &known)?;
    let bodies = params.count("bodies", 3)? as usize;
    let dims = params.count("dims", 2)? as usize;
    let points = params.count("points", 30)? as usize;
    let seed = params.count("seed", 0)?;
    if bodies == 0 || dims == 0 || points == 0 {
        return Err(params.error("`bodies`, `dims` and `points` must be positive".into()));
    }
    if dims > AXES.len() {
        return Err(params.error(format!("`dims` must be at most {}", AXES.len())));
    }
    let potential = match gravity {
        true => Potential::Gravity {
            softening: params.positive("softening", 0.1)?,
        },
        false => Potential::Spring,
    };
    let system = NBody {
        name: if gravity {
            "nbody_gravity"
        } else {
            "nbody_spring"
        },
        bodies,
        dims,
        potential,
    };
    let times: Vec<f64> = (0..points)
        .map(|i| SPAN * i as f64 / (points.max(2) - 1) as f64)
        .collect();
    let split = |index: u64, trajectories: u64| -> Vec<Trajectory> {
        // Each split has its own stream, so one split's size never moves another's samples.
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(3).wrapping_add(index));
        (0..trajectories)
            .map(|_| trajectory(&system, &system.initial(&mut rng), &times, |v| v))
            .collect()
    };
    let (train, val, test) = (
        split(0, params.count("train", 40)?),
        split(1, params.count("val", 10)?),
        split(2, params.count("test", 20)?),
    );
    Ok(Dataset {
        system: Box::new(system),
        train,
        val,
        test,
    })
}

/// The pair potential V(ρ).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Potential {
    Spring,
    Gravity { softening: f64 },
}

impl Potential {
    fn value(self, rho: f64) -> f64 {
        match self {
            Potential::Spring => (rho - 1.0).powi(2) / 2.0,
            Potential::Gravity { softening } => -1.0 / (rho * rho + softening * softening).sqrt(),
        }
    }

    /// V′(ρ)/ρ: the force on xᵢ from xⱼ is −V′(ρ)/ρ · (xᵢ − xⱼ). Zero for
    /// coincident bodies, where a spring's direction is undefined.
    fn pull(self, rho: f64) -> f64 {
        match self {
            Potential::Spring if rho > 0.0 => (rho - 1.0) / rho,
            Potential::Spring => 0.0,
            Potential::Gravity { softening } => (rho * rho + softening * softening).powf(-1.5),
        }
    }
}

/// `bodies` unit masses in `dims` dimensions with a pair potential.
#[derive(Debug, Clone, Copy)]
struct NBody {
    name: &'static str,
    bodies: usize,
    dims: usize,
    potential: Potential,
}

impl NBody {
    /// xᵢ − xⱼ and its length.
    fn separation(&self, x: &[f64], i: usize, j: usize) -> (Vec<f64>, f64) {
        let d = self.dims;
        let r: Vec<f64> = (0..d).map(|c| x[i * d + c] - x[j * d + c]).collect();
        let rho = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        (r, rho)
    }
}

impl System for NBody {
    fn name(&self) -> &'static str {
        self.name
    }

    fn coordinates(&self) -> usize {
        self.bodies * self.dims
    }

    fn kind(&self) -> StateKind {
        StateKind::Canonical
    }

    fn field(&self, state: &[f64], dx: &mut [f64]) {
        let (n, d) = (self.bodies, self.dims);
        let (x, p) = state.split_at(n * d);
        dx[..n * d].copy_from_slice(p);
        let force = &mut dx[n * d..];
        force.fill(0.0);
        for i in 0..n {
            for j in i + 1..n {
                let (r, rho) = self.separation(x, i, j);
                let pull = self.potential.pull(rho);
                for c in 0..d {
                    force[i * d + c] -= pull * r[c];
                    force[j * d + c] += pull * r[c];
                }
            }
        }
    }

    fn energy(&self, state: &[f64]) -> f64 {
        let n = self.bodies;
        let (x, p) = state.split_at(n * self.dims);
        let kinetic = p.iter().map(|v| v * v).sum::<f64>() / 2.0;
        let potential: f64 = (0..n)
            .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
            .map(|(i, j)| self.potential.value(self.separation(x, i, j).1))
            .sum();
        kinetic + potential
    }

    fn initial(&self, rng: &mut StdRng) -> Vec<f64> {
        let half = self.coordinates();
        let mut state: Vec<f64> = (0..2 * half)
            .map(|k| {
                let z: f64 = StandardNormal.sample(rng);
                if k < half {
                    z
                } else {
                    0.5 * z
                }
            })
            .collect();
        if matches!(self.potential, Potential::Gravity { .. }) {
            let d = self.dims;
            for c in 0..d {
                let mean = (0..self.bodies)
                    .map(|i| state[half + i * d + c])
                    .sum::<f64>()
                    / self.bodies as f64;
                (0..self.bodies).for_each(|i| state[half + i * d + c] -= mean);
            }
        }
        state
    }

    /// The potential energy of every pair at unit distance beyond rest
    /// (springs) or at unit distance (gravity): n(n − 1)/4 or n(n − 1)/2.
    fn energy_scale(&self) -> f64 {
        let pairs = (self.bodies * (self.bodies.max(1) - 1) / 2) as f64;
        match self.potential {
            Potential::Spring => pairs / 2.0,
            Potential::Gravity { .. } => pairs,
        }
        .max(1.0)
    }

    /// Each component of the total linear momentum Σᵢ pᵢ.
    fn momenta(&self, state: &[f64]) -> Vec<(&'static str, f64)> {
        let (n, d) = (self.bodies, self.dims);
        let p = &state[n * d..];
        AXES.iter()
            .take(d)
            .enumerate()
            .map(|(c, name)| (*name, p.iter().skip(c).step_by(d).sum()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn systems() -> [NBody; 2] {
        let system = |name, potential| NBody {
            name,
            bodies: 3,
            dims: 2,
            potential,
        };
        [
            system("nbody_spring", Potential::Spring),
            system("nbody_gravity", Potential::Gravity { softening: 0.1 }),
        ]
    }

    #[test]
    fn field_is_hamiltons_equations_and_conserves_momentum() {
        for s in systems() {
            let state: Vec<f64> = (0..12)
                .map(|k| ((k * 37 % 11) as f64 - 5.0) / 4.0)
                .collect();
            let mut d = vec![0.0; 12];
            s.field(&state, &mut d);
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
                    "{} coordinate {k}: {grad} vs {expected}",
                    s.name
                );
            }
            for c in 0..2 {
                let total: f64 = d[6..].iter().skip(c).step_by(2).sum();
                assert!(total.abs() < 1e-12, "{}: Σṗ = {total}", s.name);
            }
        }
    }

    #[test]
    fn trajectories_conserve_energy_and_momentum_and_targets_are_derivatives() {
        for name in ["nbody_spring", "nbody_gravity"] {
            let sizes = params(&[("train", 2.0), ("val", 1.0), ("test", 1.0)]);
            let data = simulate(name, &sizes).unwrap().unwrap();
            let s = data.system.as_ref();
            assert_eq!((data.train.len(), data.test.len(), s.name()), (2, 1, name));
            for t in &data.train {
                let (first, last) = (&t.states[..12], &t.states[t.states.len() - 12..]);
                let (e0, e1) = (s.energy(first), s.energy(last));
                assert!((e0 - e1).abs() < 1e-6 * e0.abs().max(1.0), "{e0} vs {e1}");
                for ((_, m0), (_, m1)) in s.momenta(first).into_iter().zip(s.momenta(last)) {
                    assert!((m0 - m1).abs() < 1e-9, "{name}: {m0} vs {m1}");
                }
            }
            let splits = generate(name, &sizes).unwrap().unwrap();
            let t = &splits.train;
            assert_eq!((t.rows, t.x_dim, t.y_dim), (60, 12, 12));
            let row: Vec<f64> = t.x_row(7).iter().map(|&v| v as f64).collect();
            let mut expected = vec![0.0; 12];
            s.field(&row, &mut expected);
            for (y, e) in t.y_row(7).iter().zip(&expected) {
                assert!((*y as f64 - e).abs() < 1e-5 * (1.0 + e.abs()));
            }
        }
    }

    #[test]
    fn more_bodies_and_bad_parameters() {
        let four = generate(
            "nbody_spring",
            &params(&[("bodies", 4.0), ("dims", 3.0), ("train", 1.0)]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(four.train.x_dim, 24);
        let bad = |name, pairs: &[(&str, f64)]| generate(name, &params(pairs)).unwrap().is_err();
        assert!(bad("nbody_spring", &[("bodies", 0.0)]));
        assert!(bad("nbody_spring", &[("dims", 4.0)]));
        assert!(bad("nbody_spring", &[("softening", 0.1)]));
        assert!(bad("nbody_gravity", &[("softening", 0.0)]));
        assert!(generate("nbody_orbits", &params(&[])).is_none());
    }
}
