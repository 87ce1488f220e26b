//! Evaluation of dynamics models: rollouts of a learned field from test
//! initial conditions and the energy metrics of the HNN and LNN papers.
//!
//! ```
//! use std::collections::BTreeMap;
//! use symc::backend::physics::{DynamicsNet, Head, Init};
//! use symc::data::systems::simulate;
//! use symc::plan::Activation;
//! use symc::train::dynamics::{evaluate, Integrator, Protocol};
//!
//! let params = BTreeMap::from([("trajectories".to_string(), 4.0)]);
//! let data = simulate("mass_spring", &params).unwrap()?;
//! let net = DynamicsNet::new(Head::Hamiltonian, 1, &[8], Activation::Tanh, Init::Uniform, 0)?;
//! let protocol = Protocol { span: 3.0, points: 31, integrator: Integrator::Leapfrog, max_step: 0.01 };
//! let evaluation = evaluate(|x| net.field(x), &data, &protocol)?;
//! assert!(evaluation.report.energy_mse >= 0.0 && evaluation.report.test_mse > 0.0);
//! assert_eq!(evaluation.rollouts.times.len(), 31);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{Predictor, TrainError};
use crate::backend::physics::{DynamicsNet, Objective, PhysicsError};
use crate::backend::{squared_norm, AdamW};
use crate::data::systems::{leapfrog, rk4, Dataset, System};
use crate::data::trajectories;
use crate::plan::{DataConfig, ModelGraph, Task};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The name of total linear momentum, and the prefix of its components'.
const LINEAR_MOMENTUM: &str = "momentum";

/// How a learned field is integrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integrator {
    /// Classical fourth-order Runge–Kutta.
    Rk4,
    /// Störmer–Verlet, for (q, p) states.
    Leapfrog,
}

/// Where and how rollouts are taken.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    /// Rollouts run over [0, span].
    pub span: f64,
    /// Evaluation times, evenly spaced, both ends included.
    pub points: usize,
    pub integrator: Integrator,
    /// Longest integrator step.
    pub max_step: f64,
}

impl Protocol {
    /// The evaluation of the HNN and LNN papers for built-in system `name`:
    /// RK4 rollouts over t ∈ [0, 20] (three-body [0, 5], double pendulum
    /// [0, 100], whose final-time energy error is the LNN paper's metric;
    /// n-body systems [0, 10], beyond the [0, 3] their trajectories cover).
    pub fn for_system(name: &str) -> Protocol {
        let (span, points) = match name {
            "three_body" => (5.0, 51),
            "nbody_spring" | "nbody_gravity" => (10.0, 101),
            "double_pendulum" => (100.0, 101),
            _ => (20.0, 201),
        };
        Protocol {
            span,
            points,
            integrator: Integrator::Rk4,
            max_step: 0.01,
        }
    }
}

/// Metrics of a dynamics model on the test trajectories of a data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynamicsReport {
    /// MSE of the predicted derivatives at the (noisy) test states.
    pub test_mse: f64,
    /// Mean over test rollouts and times of (E(x̂(t)) − E(x(0)))², with the
    /// system's true energy E.
    pub energy_mse: f64,
    /// Mean over test rollouts of |E(x̂(T)) − E(x(0))| divided by the system's
    /// energy scale (its largest potential energy where it has one).
    pub final_energy_error: f64,
    /// Mean squared distance between the rollouts and the true trajectories.
    pub state_mse: f64,
    /// For each momentum the system conserves, the mean over test rollouts of
    /// |M(x̂(T)) − M(x(0))|; for systems that conserve total linear momentum P
    /// (its components named `momentum_x`, `momentum_y`, …), also
    /// `momentum`: the mean of ‖P(x̂(T)) − P(x(0))‖.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub momentum_drift: BTreeMap<String, f64>,
}

impl DynamicsReport {
    /// The metrics under the names a training report uses.
    pub fn entries(&self) -> BTreeMap<String, f64> {
        [
            ("test_mse", self.test_mse),
            ("energy_mse", self.energy_mse),
            ("final_energy_error", self.final_energy_error),
            ("state_mse", self.state_mse),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(
            self.momentum_drift
                .iter()
                .map(|(k, v)| (format!("{k}_drift"), *v)),
        )
        .collect()
    }
}

/// `steps` full-batch Adam steps (the backend's [`AdamW`] without decay) on
/// the objective of `net` at states `x` with target derivatives `y`; returns
/// the objective before the last step.
pub fn fit(
    net: &mut DynamicsNet,
    x: &[f32],
    y: &[f32],
    steps: usize,
    lr: f64,
) -> Result<Objective, PhysicsError> {
    let mut adam = AdamW::new([net.parameters().len()], 0.0, None);
    let mut grad = vec![0.0; net.parameters().len()];
    let mut objective = net.objective(x, y)?;
    for _ in 0..steps {
        grad.fill(0.0);
        objective = net.loss_and_grad(x, y, &mut grad)?;
        adam.begin_step(squared_norm(&grad));
        adam.update(0, net.parameters_mut(), &grad, lr);
    }
    Ok(objective)
}

/// Integrates the learned field `field` (states of `state_dim` components in,
/// derivatives out) from each state of `x0` (several states, one after
/// another) and returns the states at `times` (`times.len() × x0.len()`).
pub fn rollout<E>(
    field: impl Fn(&[f32]) -> Result<Vec<f32>, E>,
    state_dim: usize,
    x0: &[f64],
    times: &[f64],
    integrator: Integrator,
    max_step: f64,
) -> Result<Vec<f64>, E> {
    let mut failure = None;
    let mut derivative = |x: &[f64], dx: &mut [f64]| {
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        match field(&x32) {
            Ok(f) => dx.iter_mut().zip(f).for_each(|(d, f)| *d = f64::from(f)),
            Err(e) => {
                failure.get_or_insert(e);
                dx.fill(0.0);
            }
        }
    };
    let states = match integrator {
        Integrator::Rk4 => rk4(&mut derivative, x0, times, max_step),
        Integrator::Leapfrog => leapfrog(&mut derivative, x0, state_dim, times, max_step),
    };
    failure.map_or(Ok(states), Err)
}

/// Learned and true trajectories from the clean initial states of the test
/// trajectories of a data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollouts {
    pub times: Vec<f64>,
    /// Components of a state.
    pub dim: usize,
    /// Number of initial states.
    pub starts: usize,
    /// States along the learned field, `times × starts × dim`.
    pub learned: Vec<f64>,
    /// States along the true field, same layout.
    pub truth: Vec<f64>,
}

impl Rollouts {
    /// State of rollout `start` at time index `k` (learned or true).
    pub fn state(&self, learned: bool, k: usize, start: usize) -> &[f64] {
        let states = if learned { &self.learned } else { &self.truth };
        let at = (k * self.starts + start) * self.dim;
        &states[at..at + self.dim]
    }
}

/// A model's metrics on a data set and the rollouts behind them.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub report: DynamicsReport,
    pub rollouts: Rollouts,
}

/// Rolls the learned `field` out from the clean initial state of every test
/// trajectory of `data` and measures it against the true system.
pub fn evaluate<E>(
    field: impl Fn(&[f32]) -> Result<Vec<f32>, E>,
    data: &Dataset,
    protocol: &Protocol,
) -> Result<Evaluation, E> {
    let system = data.system.as_ref();
    let d = 2 * system.coordinates();
    let test = crate::data::systems::table(&data.test, d);
    let predicted = field(&test.x)?;
    let test_mse = mean(
        predicted
            .iter()
            .zip(&test.y)
            .map(|(p, y)| f64::from(p - y).powi(2)),
    );
    let x0: Vec<f64> = data
        .test
        .iter()
        .flat_map(|t| t.states[..d].iter().copied())
        .collect();
    let times: Vec<f64> = (0..protocol.points)
        .map(|i| protocol.span * i as f64 / (protocol.points - 1).max(1) as f64)
        .collect();
    let learned = rollout(
        &field,
        d,
        &x0,
        &times,
        protocol.integrator,
        protocol.max_step,
    )?;
    let truth = true_rollout(system, &x0, &times);
    let starts = data.test.len();
    let e0: Vec<f64> = x0.chunks_exact(d).map(|x| system.energy(x)).collect();
    let errors: Vec<f64> = learned
        .chunks_exact(d)
        .enumerate()
        .map(|(k, x)| system.energy(x) - e0[k % starts])
        .collect();
    let last = &learned[learned.len() - starts * d..];
    let mut momenta = BTreeMap::new();
    for (start, end) in x0.chunks_exact(d).zip(last.chunks_exact(d)) {
        let mut linear = None;
        for ((name, m0), (_, m)) in system.momenta(start).into_iter().zip(system.momenta(end)) {
            *momenta.entry(name.to_string()).or_insert(0.0) += (m - m0).abs() / starts as f64;
            if name.starts_with(LINEAR_MOMENTUM) {
                *linear.get_or_insert(0.0) += (m - m0).powi(2);
            }
        }
        if let Some(squared) = linear {
            *momenta.entry(LINEAR_MOMENTUM.to_string()).or_insert(0.0) +=
                f64::sqrt(squared) / starts as f64;
        }
    }
    let report = DynamicsReport {
        test_mse,
        energy_mse: mean(errors.iter().map(|e| e * e)),
        final_energy_error: mean(
            errors[errors.len() - starts..]
                .iter()
                .map(|e| e.abs() / system.energy_scale()),
        ),
        state_mse: mean(learned.iter().zip(&truth).map(|(a, b)| (a - b).powi(2))),
        momentum_drift: momenta,
    };
    Ok(Evaluation {
        report,
        rollouts: Rollouts {
            times,
            dim: d,
            starts,
            learned,
            truth,
        },
    })
}

/// The rollout evaluation of a trained model on the built-in system its graph
/// trains on, with the system; `None` for other tasks and data.
pub fn assess(
    graph: &ModelGraph,
    predictor: &Predictor<'_>,
) -> Result<Option<(Evaluation, Box<dyn System>)>, TrainError> {
    let (Task::Dynamics { coordinates }, DataConfig::Builtin { name, params }) =
        (&graph.task, &graph.data)
    else {
        return Ok(None);
    };
    let Some(data) = trajectories(name, params) else {
        return Ok(None);
    };
    let data = data?;
    let d = 2 * coordinates;
    let field = |x: &[f32]| predictor.predict(x, x.len() / d);
    let evaluation = evaluate(field, &data, &Protocol::for_system(name))?;
    Ok(Some((evaluation, data.system)))
}

/// The true system's trajectories from `x0` at `times`, integrated finely.
fn true_rollout(system: &dyn System, x0: &[f64], times: &[f64]) -> Vec<f64> {
    let d = 2 * system.coordinates();
    rk4(
        |x, dx| {
            x.chunks_exact(d)
                .zip(dx.chunks_exact_mut(d))
                .for_each(|(x, dx)| system.field(x, dx))
        },
        x0,
        times,
        1e-3,
    )
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    sum / count.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::physics::{Head, Init};
    use crate::data::systems::simulate;
    use crate::plan::Activation;

    #[test]
    fn the_true_field_has_zero_energy_error_and_a_constant_field_the_expected_one() {
        let params = BTreeMap::from([
            ("trajectories".to_string(), 6.0),
            ("noise".to_string(), 0.0),
        ]);
        let data = simulate("mass_spring", &params).unwrap().unwrap();
        let times = [0.0, 1.0, 2.0];
        let x0: Vec<f64> = data
            .test
            .iter()
            .flat_map(|t| t.states[..2].to_vec())
            .collect();
        let truth = true_rollout(data.system.as_ref(), &x0, &times);
        // Rollouts of the true field keep the energy to integrator accuracy.
        for (k, x) in truth.chunks_exact(2).enumerate() {
            let e0 = data.system.energy(&x0[2 * (k % 3)..2 * (k % 3) + 2]);
            assert!((data.system.energy(x) - e0).abs() < 1e-10);
        }
        // A direct head whose weights are all zero predicts a zero field: the
        // rollout stands still, so every energy error is zero and the state
        // error is the distance the true system travels.
        let mut net =
            DynamicsNet::new(Head::Direct, 1, &[4], Activation::Tanh, Init::Uniform, 0).unwrap();
        net.parameters_mut().fill(0.0);
        let protocol = Protocol {
            span: 2.0,
            points: 3,
            integrator: Integrator::Rk4,
            max_step: 0.1,
        };
        let report = evaluate(|x| net.field(x), &data, &protocol).unwrap().report;
        assert_eq!((report.energy_mse, report.final_energy_error), (0.0, 0.0));
        let moved = mean(
            truth
                .iter()
                .zip(x0.iter().cycle())
                .map(|(a, b)| (a - b).powi(2)),
        );
        assert!((report.state_mse - moved).abs() < 1e-12);
        let speed = mean(
            data.test
                .iter()
                .flat_map(|t| t.derivatives.iter().map(|v| v * v)),
        );
        assert!((report.test_mse - speed).abs() < 1e-5 * speed);
    }

    #[test]
    fn momentum_drift_is_the_change_of_total_momentum_and_a_graph_network_has_none() {
        let params = BTreeMap::from([
            ("train".to_string(), 1.0),
            ("val".to_string(), 0.0),
            ("test".to_string(), 3.0),
        ]);
        let data = trajectories("nbody_spring", &params).unwrap().unwrap();
        let system = data.system.as_ref();
        // The true field of three bodies plus a force `push` along x on each:
        // P moves by 3·push·span along x and not at all along y.
        let (push, span) = (0.3, 2.0);
        let pushed = |x: &[f32]| -> Result<Vec<f32>, PhysicsError> {
            let mut out = vec![0.0; x.len()];
            let mut d = vec![0.0; 12];
            for (x, dx) in x.chunks_exact(12).zip(out.chunks_exact_mut(12)) {
                let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
                system.field(&x, &mut d);
                for (k, (dx, d)) in dx.iter_mut().zip(&d).enumerate() {
                    let force = if k >= 6 && k % 2 == 0 { push } else { 0.0 };
                    *dx = (d + force) as f32;
                }
            }
            Ok(out)
        };
        let protocol = Protocol {
            span,
            points: 3,
            integrator: Integrator::Rk4,
            max_step: 0.01,
        };
        let drift = evaluate(pushed, &data, &protocol)
            .unwrap()
            .report
            .momentum_drift;
        let want = 3.0 * push * span;
        for name in ["momentum", "momentum_x"] {
            assert!(
                (drift[name] - want).abs() < 1e-4 * want,
                "{name}: {drift:?}"
            );
        }
        assert!(drift["momentum_y"] < 1e-5, "{drift:?}");

        let net = DynamicsNet::graph(3, 2, &[8], Activation::Softplus, 0).unwrap();
        let drift = evaluate(|x| net.field(x), &data, &protocol)
            .unwrap()
            .report
            .momentum_drift;
        assert!(drift["momentum"] < 1e-5, "{drift:?}");
    }

    #[test]
    fn leapfrog_and_rk4_agree_on_a_hamiltonian_head() {
        let net = DynamicsNet::new(
            Head::Hamiltonian,
            1,
            &[8],
            Activation::Tanh,
            Init::Uniform,
            4,
        )
        .unwrap();
        let times = [0.0, 0.5, 1.0];
        let field = |x: &[f32]| net.field(x);
        let x0 = [0.3, -0.2, 0.5, 0.1];
        let a = rollout(field, 2, &x0, &times, Integrator::Rk4, 1e-3).unwrap();
        let b = rollout(field, 2, &x0, &times, Integrator::Leapfrog, 1e-3).unwrap();
        for (u, v) in a.iter().zip(&b) {
            assert!((u - v).abs() < 1e-4, "{u} vs {v}");
        }
    }
}
