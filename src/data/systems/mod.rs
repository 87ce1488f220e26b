//! Built-in dynamical systems: exact fields and energies, trajectory data sets
//! integrated with small RK4 steps, split into train/validation/test by
//! trajectory.
//!
//! | name | state | energy |
//! | --- | --- | --- |
//! | `mass_spring` | (q, p) | c(q² + p²), c = `scale` (default 1) |
//! | `pendulum` | (q, p) | 2(1 − cos q) + p² |
//! | `two_body` | (q₁, q₂, p₁, p₂), qᵢ, pᵢ ∈ R² | Σ‖pᵢ‖²/2 − 1/‖q₁ − q₂‖ (unit masses, G = 1) |
//! | `three_body` | (q₁…q₃, p₁…p₃) | Σ‖pᵢ‖²/2 − Σᵢ<ⱼ 1/‖qᵢ − qⱼ‖ |
//! | `double_pendulum` | (θ₁, θ₂, θ̇₁, θ̇₂) | T + V, unit masses and lengths, g = 9.8 |
//!
//! Parameters common to all (defaults in brackets): `trajectories` [50],
//! `points` per trajectory [system's], `t_end` [system's], `noise` std added to
//! the observed states [0.05], `seed` [0], `test_fraction` [0.5],
//! `val_fraction` [0]; the range of initial "radius" `r_min`, `r_max` where the
//! system has one. Targets are the exact derivatives at the noise-free states.
//!
//! ```
//! use std::collections::BTreeMap;
//! use symc::data::systems::builtin;
//!
//! let params = BTreeMap::from([("trajectories".to_string(), 4.0), ("points".to_string(), 10.0)]);
//! let splits = builtin("mass_spring", &params).expect("a built-in system").unwrap();
//! assert_eq!((splits.train.rows, splits.test.rows, splits.train.x_dim), (20, 20, 2));
//! assert!(builtin("no_such_system", &params).is_none());
//! ```

mod csv;
mod integrate;

pub use csv::{load_csv, parse_csv};
pub use integrate::{leapfrog, rk4, rk4_step};

use super::{DataError, Splits, Table};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use std::collections::BTreeMap;
use std::f64::consts::PI;

/// Whether the second half of a state holds momenta or velocities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    /// (q, p): a Hamiltonian head applies.
    Canonical,
    /// (q, q̇): a Lagrangian head applies.
    Velocity,
}

/// A conservative system with a known field and energy.
pub trait System: Send + Sync {
    fn name(&self) -> &'static str;
    /// Number of coordinates n; a state has 2n components.
    fn coordinates(&self) -> usize;
    fn kind(&self) -> StateKind;
    /// The time derivative of `x`, written into `dx`.
    fn field(&self, x: &[f64], dx: &mut [f64]);
    fn energy(&self, x: &[f64]) -> f64;
    /// A random initial state.
    fn initial(&self, rng: &mut StdRng) -> Vec<f64>;
    /// Energy scale used to normalise energy errors: the largest potential
    /// energy for bounded systems, the typical |energy| otherwise.
    fn energy_scale(&self) -> f64;
    /// The momenta the system conserves besides its energy, by name, at `x`.
    fn momenta(&self, _x: &[f64]) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
}

/// H = c(q² + p²).
#[derive(Debug, Clone, Copy)]
pub struct MassSpring {
    pub scale: f64,
    pub r_min: f64,
    pub r_max: f64,
}

/// H = 2(1 − cos q) + p².
#[derive(Debug, Clone, Copy)]
pub struct Pendulum {
    pub r_min: f64,
    pub r_max: f64,
}

/// Point masses 1 in the plane under Newtonian gravity (G = 1), started close
/// to circular orbits about their centre of mass.
#[derive(Debug, Clone, Copy)]
pub struct Orbits {
    pub bodies: usize,
    pub r_min: f64,
    pub r_max: f64,
    /// Relative perturbation of the circular-orbit velocities.
    pub orbit_noise: f64,
}

/// Planar double pendulum, unit masses and lengths, g = 9.8, state (θ, θ̇).
#[derive(Debug, Clone, Copy)]
pub struct DoublePendulum;

/// A point (q, p) at radius r ~ U[r_min, r_max] in a uniformly random direction.
fn on_circle(rng: &mut StdRng, r_min: f64, r_max: f64) -> Vec<f64> {
    let r = rng.gen_range(r_min..=r_max);
    let phi = rng.gen_range(0.0..2.0 * PI);
    vec![r * phi.cos(), r * phi.sin()]
}

impl System for MassSpring {
    fn name(&self) -> &'static str {
        "mass_spring"
    }
    fn coordinates(&self) -> usize {
        1
    }
    fn kind(&self) -> StateKind {
        StateKind::Canonical
    }
    fn field(&self, x: &[f64], dx: &mut [f64]) {
        dx[0] = 2.0 * self.scale * x[1];
        dx[1] = -2.0 * self.scale * x[0];
    }
    fn energy(&self, x: &[f64]) -> f64 {
        self.scale * (x[0] * x[0] + x[1] * x[1])
    }
    fn initial(&self, rng: &mut StdRng) -> Vec<f64> {
        on_circle(rng, self.r_min, self.r_max)
    }
    fn energy_scale(&self) -> f64 {
        self.scale * self.r_max * self.r_max
    }
}

impl System for Pendulum {
    fn name(&self) -> &'static str {
        "pendulum"
    }
    fn coordinates(&self) -> usize {
        1
    }
    fn kind(&self) -> StateKind {
        StateKind::Canonical
    }
    fn field(&self, x: &[f64], dx: &mut [f64]) {
        dx[0] = 2.0 * x[1];
        dx[1] = -2.0 * x[0].sin();
    }
    fn energy(&self, x: &[f64]) -> f64 {
        2.0 * (1.0 - x[0].cos()) + x[1] * x[1]
    }
    fn initial(&self, rng: &mut StdRng) -> Vec<f64> {
        on_circle(rng, self.r_min, self.r_max)
    }
    fn energy_scale(&self) -> f64 {
        4.0
    }
}

impl Orbits {
    fn position(x: &[f64], i: usize) -> [f64; 2] {
        [x[2 * i], x[2 * i + 1]]
    }
}

impl System for Orbits {
    fn name(&self) -> &'static str {
        if self.bodies == 2 {
            "two_body"
        } else {
            "three_body"
        }
    }
    fn coordinates(&self) -> usize {
        2 * self.bodies
    }
    fn kind(&self) -> StateKind {
        StateKind::Canonical
    }
    fn field(&self, x: &[f64], dx: &mut [f64]) {
        let n = 2 * self.bodies;
        dx[..n].copy_from_slice(&x[n..]);
        dx[n..].fill(0.0);
        for i in 0..self.bodies {
            for j in i + 1..self.bodies {
                let (a, b) = (Self::position(x, i), Self::position(x, j));
                let d = [b[0] - a[0], b[1] - a[1]];
                let r3 = (d[0] * d[0] + d[1] * d[1]).powf(1.5);
                for k in 0..2 {
                    dx[n + 2 * i + k] += d[k] / r3;
                    dx[n + 2 * j + k] -= d[k] / r3;
                }
            }
        }
    }
    fn energy(&self, x: &[f64]) -> f64 {
        let n = 2 * self.bodies;
        let kinetic = 0.5 * x[n..].iter().map(|v| v * v).sum::<f64>();
        let mut potential = 0.0;
        for i in 0..self.bodies {
            for j in i + 1..self.bodies {
                let (a, b) = (Self::position(x, i), Self::position(x, j));
                potential -= 1.0 / ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
            }
        }
        kinetic + potential
    }
    /// Bodies on a regular polygon of circumradius r about the origin, each
    /// with the speed of the circular orbit of that configuration, perturbed by
    /// a relative `orbit_noise`; momenta are then shifted to sum to zero.
    fn initial(&self, rng: &mut StdRng) -> Vec<f64> {
        let n = self.bodies;
        let r = rng.gen_range(self.r_min..=self.r_max);
        let phi = rng.gen_range(0.0..2.0 * PI);
        // Inward force on one body of a regular n-gon of unit circumradius:
        // Σ_k 1/(4 sin(πk/n)) over the other bodies; v² = force · r for radius r.
        let force: f64 = (1..n)
            .map(|k| 1.0 / (4.0 * (PI * k as f64 / n as f64).sin()))
            .sum();
        let speed = (force / r).sqrt();
        let mut x = vec![0.0; 4 * n];
        for i in 0..n {
            let a = phi + 2.0 * PI * i as f64 / n as f64;
            let v = speed * (1.0 + self.orbit_noise * rng.gen_range(-1.0..1.0));
            x[2 * i] = r * a.cos();
            x[2 * i + 1] = r * a.sin();
            x[2 * n + 2 * i] = -v * a.sin();
            x[2 * n + 2 * i + 1] = v * a.cos();
        }
        for k in 0..2 {
            let mean = (0..n).map(|i| x[2 * n + 2 * i + k]).sum::<f64>() / n as f64;
            (0..n).for_each(|i| x[2 * n + 2 * i + k] -= mean);
        }
        x
    }
    fn energy_scale(&self) -> f64 {
        let pairs = (self.bodies * (self.bodies - 1) / 2) as f64;
        pairs / (2.0 * self.r_min)
    }
    /// Total linear momentum Σpᵢ and angular momentum Σ qᵢ × pᵢ (translations
    /// and rotations of the plane leave H unchanged).
    fn momenta(&self, x: &[f64]) -> Vec<(&'static str, f64)> {
        let n = 2 * self.bodies;
        let (q, p) = x.split_at(n);
        let sum = |k: usize| p.iter().skip(k).step_by(2).sum::<f64>();
        let angular = q
            .chunks_exact(2)
            .zip(p.chunks_exact(2))
            .map(|(q, p)| q[0] * p[1] - q[1] * p[0])
            .sum();
        vec![
            ("momentum_x", sum(0)),
            ("momentum_y", sum(1)),
            ("angular_momentum", angular),
        ]
    }
}

const G: f64 = 9.8;

impl System for DoublePendulum {
    fn name(&self) -> &'static str {
        "double_pendulum"
    }
    fn coordinates(&self) -> usize {
        2
    }
    fn kind(&self) -> StateKind {
        StateKind::Velocity
    }
    fn field(&self, x: &[f64], dx: &mut [f64]) {
        let (t1, t2, w1, w2) = (x[0], x[1], x[2], x[3]);
        let (s, c) = (t1 - t2).sin_cos();
        // Euler–Lagrange equations solved for θ̈ (m = l = 1): a 2×2 system
        // [[2, c], [c, 1]] θ̈ = (−w₂² s − 2g sin θ₁, w₁² s − g sin θ₂).
        let f1 = -w2 * w2 * s - 2.0 * G * t1.sin();
        let f2 = w1 * w1 * s - G * t2.sin();
        let det = 2.0 - c * c;
        dx[0] = w1;
        dx[1] = w2;
        dx[2] = (f1 - c * f2) / det;
        dx[3] = (2.0 * f2 - c * f1) / det;
    }
    fn energy(&self, x: &[f64]) -> f64 {
        let (t1, t2, w1, w2) = (x[0], x[1], x[2], x[3]);
        let kinetic = w1 * w1 + 0.5 * w2 * w2 + w1 * w2 * (t1 - t2).cos();
        let potential = -2.0 * G * t1.cos() - G * t2.cos();
        kinetic + potential
    }
    /// Angles uniform in [−π/2, π/2], at rest.
    fn initial(&self, rng: &mut StdRng) -> Vec<f64> {
        vec![
            rng.gen_range(-PI / 2.0..PI / 2.0),
            rng.gen_range(-PI / 2.0..PI / 2.0),
            0.0,
            0.0,
        ]
    }
    /// The potential energy of the upright position above the pivot: 3g.
    fn energy_scale(&self) -> f64 {
        3.0 * G
    }
}

/// One simulated trajectory: times, clean states, exact derivatives, and the
/// noisy states a model observes (all row-major, one state per time).
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    pub t: Vec<f64>,
    pub states: Vec<f64>,
    pub derivatives: Vec<f64>,
    pub observed: Vec<f64>,
}

/// A generated data set: the system and its trajectories, split by trajectory.
pub struct Dataset {
    pub system: Box<dyn System>,
    pub train: Vec<Trajectory>,
    pub val: Vec<Trajectory>,
    pub test: Vec<Trajectory>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("system", &self.system.name())
            .field("train", &self.train.len())
            .field("val", &self.val.len())
            .field("test", &self.test.len())
            .finish()
    }
}

/// Reads parameters with defaults, rejecting unknown names and bad values.
struct Params<'a> {
    source: &'static str,
    given: &'a BTreeMap<String, f64>,
    known: Vec<&'static str>,
}

impl<'a> Params<'a> {
    fn error(&self, name: &str, reason: impl Into<String>) -> DataError {
        DataError::Parameter {
            data: self.source.into(),
            message: format!("parameter `{name}`: {}", reason.into()),
        }
    }

    fn real(
        &mut self,
        name: &'static str,
        default: f64,
        ok: impl Fn(f64) -> bool,
        want: &str,
    ) -> Result<f64, DataError> {
        self.known.push(name);
        let v = self.given.get(name).copied().unwrap_or(default);
        if v.is_finite() && ok(v) {
            Ok(v)
        } else {
            Err(self.error(name, format!("expected {want}, found {v}")))
        }
    }

    fn count(
        &mut self,
        name: &'static str,
        default: usize,
        min: usize,
    ) -> Result<usize, DataError> {
        let v = self.real(
            name,
            default as f64,
            |v| v.fract() == 0.0 && v >= min as f64,
            &format!("an integer ≥ {min}"),
        )?;
        Ok(v as usize)
    }

    fn finish(self) -> Result<(), DataError> {
        match self
            .given
            .keys()
            .find(|k| !self.known.contains(&k.as_str()))
        {
            Some(unknown) => Err(self.error(
                unknown,
                format!(
                    "unknown parameter; expected one of {}",
                    self.known.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }
}

/// The names [`builtin`] and [`simulate`] know.
pub const SYSTEMS: [&str; 5] = [
    "mass_spring",
    "pendulum",
    "two_body",
    "three_body",
    "double_pendulum",
];

/// Generates the trajectories of the built-in system `name`; `None` if there
/// is no such system.
pub fn simulate(name: &str, params: &BTreeMap<String, f64>) -> Option<Result<Dataset, DataError>> {
    let source = *SYSTEMS.iter().find(|s| **s == name)?;
    let mut p = Params {
        source,
        given: params,
        known: Vec::new(),
    };
    Some(simulate_with(source, &mut p).and_then(|d| p.finish().map(|()| d)))
}

fn simulate_with(name: &'static str, p: &mut Params) -> Result<Dataset, DataError> {
    let positive = |v: f64| v > 0.0;
    let non_negative = |v: f64| v >= 0.0;
    // (system, default points, default t_end)
    let (system, points, t_end): (Box<dyn System>, usize, f64) = match name {
        "mass_spring" => {
            let scale = p.real("scale", 1.0, positive, "a positive number")?;
            let r_min = p.real("r_min", 0.1, positive, "a positive number")?;
            let r_max = p.real("r_max", 1.0, |v| v >= r_min, "a number ≥ r_min")?;
            (
                Box::new(MassSpring {
                    scale,
                    r_min,
                    r_max,
                }),
                30,
                3.0,
            )
        }
        "pendulum" => {
            let r_min = p.real("r_min", 0.2, positive, "a positive number")?;
            let r_max = p.real("r_max", 2.0, |v| v >= r_min, "a number ≥ r_min")?;
            (Box::new(Pendulum { r_min, r_max }), 45, 3.0)
        }
        "two_body" | "three_body" => {
            let bodies = if name == "two_body" { 2 } else { 3 };
            let (lo, hi, noise, t) = if bodies == 2 {
                (0.5, 1.5, 0.05, 20.0)
            } else {
                (0.9, 1.2, 0.2, 5.0)
            };
            let r_min = p.real("r_min", lo, positive, "a positive number")?;
            let r_max = p.real("r_max", hi, |v| v >= r_min, "a number ≥ r_min")?;
            let orbit_noise = p.real(
                "orbit_noise",
                noise,
                |v| (0.0..1.0).contains(&v),
                "a number in [0, 1)",
            )?;
            (
                Box::new(Orbits {
                    bodies,
                    r_min,
                    r_max,
                    orbit_noise,
                }),
                if bodies == 2 { 50 } else { 20 },
                t,
            )
        }
        _ => (Box::new(DoublePendulum), 100, 10.0),
    };
    let trajectories = p.count("trajectories", 50, 1)?;
    let points = p.count("points", points, 2)?;
    let t_end = p.real("t_end", t_end, positive, "a positive number")?;
    let noise = p.real("noise", 0.05, non_negative, "a non-negative number")?;
    let seed = p.count("seed", 0, 0)? as u64;
    let test_fraction = p.real(
        "test_fraction",
        0.5,
        |v| (0.0..1.0).contains(&v),
        "a number in [0, 1)",
    )?;
    let val_fraction = p.real(
        "val_fraction",
        0.0,
        |v| (0.0..1.0 - test_fraction).contains(&v),
        "a number in [0, 1 − test_fraction)",
    )?;
    let times: Vec<f64> = (0..points)
        .map(|i| t_end * i as f64 / (points - 1) as f64)
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0, noise).expect("noise std checked non-negative");
    let mut all: Vec<Trajectory> = (0..trajectories)
        .map(|_| {
            trajectory(system.as_ref(), &system.initial(&mut rng), &times, |v| {
                v + normal.sample(&mut rng)
            })
        })
        .collect();
    let n_test = (trajectories as f64 * test_fraction).round() as usize;
    let n_val = (trajectories as f64 * val_fraction).round() as usize;
    let test = all.split_off(trajectories - n_test);
    let val = all.split_off(all.len() - n_val);
    Ok(Dataset {
        system,
        train: all,
        val,
        test,
    })
}

/// The trajectory of `system` from `x0` sampled at `times`, observed through `observe`.
pub fn trajectory(
    system: &dyn System,
    x0: &[f64],
    times: &[f64],
    mut observe: impl FnMut(f64) -> f64,
) -> Trajectory {
    // Steps of 1e-3 time units keep RK4's global error far below any noise level used here.
    let states = rk4(|x, dx| system.field(x, dx), x0, times, 1e-3);
    let mut derivatives = vec![0.0; states.len()];
    let d = x0.len();
    for (x, dx) in states.chunks_exact(d).zip(derivatives.chunks_exact_mut(d)) {
        system.field(x, dx);
    }
    let observed = states.iter().map(|&v| observe(v)).collect();
    Trajectory {
        t: times.to_vec(),
        states,
        derivatives,
        observed,
    }
}

/// Observed states → exact derivatives, one row per point.
pub fn table(trajectories: &[Trajectory], dim: usize) -> Table {
    let x: Vec<f32> = trajectories
        .iter()
        .flat_map(|t| t.observed.iter().map(|&v| v as f32))
        .collect();
    let y: Vec<f32> = trajectories
        .iter()
        .flat_map(|t| t.derivatives.iter().map(|&v| v as f32))
        .collect();
    Table {
        rows: x.len() / dim,
        x,
        y,
        x_dim: dim,
        y_dim: dim,
    }
}

/// The data set of built-in system `name` as tables; `None` if there is no such system.
pub fn builtin(name: &str, params: &BTreeMap<String, f64>) -> Option<Result<Splits, DataError>> {
    simulate(name, params).map(|d| d.map(|d| d.splits()))
}

impl Dataset {
    pub fn splits(&self) -> Splits {
        let dim = 2 * self.system.coordinates();
        Splits {
            train: table(&self.train, dim),
            val: table(&self.val, dim),
            test: table(&self.test, dim),
        }
    }
}

#[cfg(test)]
mod tests;
