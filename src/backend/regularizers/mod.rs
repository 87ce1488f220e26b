//! Symmetry regularisers: terms of the objective that pull a network towards a
//! group's symmetry instead of building it in (`=> loss(...)`, `=> soft(...)`).
//!
//! They act in the model's standardised units. There ρ_in and ρ_out are the
//! data's own: the standardiser scales each group-valued port by one number
//! and shifts only ports of invariant scalars, which commutes with the action.
//!
//! | term | value (before its weight) |
//! | --- | --- |
//! | sampled equivariance | mean over `samples` fresh group elements g, rows and outputs of (f(ρ_in(g)x) − ρ_out(g)f(x))² |
//! | Lie derivative | mean over the Lie generators A, rows and outputs of (J_f(x)·dρ_in(A)x − dρ_out(A)f(x))², J_f·v in forward mode |
//! | weight orbit | mean over the first `Linear` layer's rows w and the generators' elements g of minⱼ ‖w ρ_in(g) − wⱼ‖² |
//! | soft prior | ‖θ‖² over the unconstrained residual paths plus `equivariant / weight` · ‖θ‖² over the equivariant ones |

mod ops;
mod ports;

use super::kernels::tape::{KernelDevice, Mat};
use super::layers::{group_from_def, Network};
use super::loss::Scalar;
use super::BackendError;
use crate::group::Group;
use crate::plan::{LossKind, ModelGraph, Op};
use dfdx::prelude::*;
use ports::PortAction;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Mutex;

/// The parameter of exp(±t·A): the weight orbit compares each row with its
/// images a finite step (about 29° for a rotation) along every generator.
const ORBIT_STEP: f64 = 0.5;

/// One weighted regulariser of a model's objective.
pub(crate) struct Regularizer {
    weight: f64,
    kind: Kind,
}

enum Kind {
    Sampled {
        action: PortAction,
        samples: usize,
        /// Fresh elements every batch, from a stream seeded by the model's seed
        /// (boxed: the generator's state is larger than the other variants).
        rng: Box<Mutex<StdRng>>,
    },
    Lie {
        /// (dρ_in(A), dρ_out(A)) per generator, row-major.
        generators: Vec<(Vec<f32>, Vec<f32>)>,
        dims: (usize, usize),
    },
    Orbit {
        node: usize,
        /// (out, inp) of the layer's weight.
        shape: (usize, usize),
        /// ρ_in(g) for the generators' elements, row-major.
        elements: Vec<Vec<f32>>,
    },
    Prior {
        /// (node, coefficient of its ‖θ‖²).
        nodes: Vec<(usize, f64)>,
    },
}

impl Regularizer {
    /// The regularisers among `graph`'s loss terms; `seed` seeds the sampled elements.
    pub(crate) fn compile(graph: &ModelGraph, seed: u64) -> Result<Vec<Regularizer>, BackendError> {
        let mut out = Vec::new();
        for (index, term) in graph.losses.iter().enumerate() {
            let group = |name: &str| -> Result<Group, BackendError> {
                let def = graph
                    .groups
                    .iter()
                    .find(|g| g.name == name)
                    .ok_or_else(|| {
                        BackendError::InvalidGraph(format!(
                            "group `{name}` is not defined in the graph"
                        ))
                    })?;
                group_from_def(def)
            };
            let kind = match &term.kind {
                LossKind::Mse | LossKind::CrossEntropy => continue,
                LossKind::SampledEquivariance {
                    group: name,
                    samples,
                } => Kind::Sampled {
                    action: PortAction::new(graph, group(name)?)?,
                    samples: (*samples).max(1),
                    rng: Box::new(Mutex::new(StdRng::seed_from_u64(
                        seed ^ ((index as u64 + 1) << 32),
                    ))),
                },
                LossKind::LieDerivative { group: name } => {
                    let action = PortAction::new(graph, group(name)?)?;
                    let generators = action
                        .group()
                        .lie()
                        .iter()
                        .map(|a| action.algebra(a))
                        .collect::<Result<Vec<_>, _>>()?;
                    if generators.is_empty() {
                        return Err(BackendError::InvalidGraph(format!(
                            "the Lie derivative of `{name}` needs Lie generators"
                        )));
                    }
                    Kind::Lie {
                        generators,
                        dims: action.dims(),
                    }
                }
                LossKind::WeightOrbit { group: name } => {
                    let action = PortAction::new(graph, group(name)?)?;
                    orbit(graph, &action)?
                }
                LossKind::SoftPrior { equivariant, .. } => prior(graph, term.weight, *equivariant)?,
                LossKind::PoissonBracket { group } => {
                    return Err(BackendError::InvalidGraph(format!(
                        "the Poisson bracket with `{group}` needs a Hamiltonian head"
                    )))
                }
            };
            out.push(Regularizer {
                weight: term.weight,
                kind,
            });
        }
        Ok(out)
    }

    /// The name a `LossBreakdown` reports this term under.
    pub(crate) fn name(&self) -> &'static str {
        match self.kind {
            Kind::Sampled { .. } => "sampled_equivariance",
            Kind::Lie { .. } => "lie_derivative",
            Kind::Orbit { .. } => "weight_orbit",
            Kind::Prior { .. } => "soft_prior",
        }
    }

    /// The weighted term for the inputs `x` (`rows` × in_dim, standardised),
    /// on a tape of its own kind `T`.
    pub(crate) fn apply<D: KernelDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        net: &Network<D>,
        x: &[f32],
        rows: usize,
    ) -> Result<Scalar<D, T>, BackendError> {
        let weight = self.weight as f32;
        match &self.kind {
            Kind::Sampled {
                action,
                samples,
                rng,
            } => {
                let (n_in, _) = action.dims();
                let mut maps = Vec::with_capacity(*samples);
                let mut stacked = x.to_vec();
                // A poisoned lock only means another thread panicked mid-draw; the stream is still valid.
                let mut rng = rng.lock().unwrap_or_else(|e| e.into_inner());
                for _ in 0..*samples {
                    let g = action.group().sample(&mut *rng);
                    let (rho_in, rho_out) = action.element(&g)?;
                    stacked.extend(ops::transform_rows(x, rows, &rho_in, n_in));
                    maps.push(rho_out);
                }
                let f = net.run(input::<D, T>(net, stacked, rows * (samples + 1))?)?;
                ops::residual_mean_square(f, rows, &maps, weight)
            }
            Kind::Lie { generators, dims } => {
                let mut stacked = x.to_vec();
                for (d_in, _) in generators {
                    stacked.extend(ops::transform_rows(x, rows, d_in, dims.0));
                }
                let total = rows * (generators.len() + 1);
                let f = net.run_stacked(input::<D, T>(net, stacked, total)?, rows)?;
                let maps: Vec<Vec<f32>> = generators.iter().map(|(_, d)| d.clone()).collect();
                ops::residual_mean_square(f, rows, &maps, weight)
            }
            Kind::Orbit {
                node,
                shape,
                elements,
            } => {
                let params = net.node_params(*node);
                let w = params.first().ok_or_else(|| {
                    BackendError::InvalidGraph(format!("node {node} has no weight"))
                })?;
                ops::weight_orbit(net.device(), w, *shape, elements, weight)
            }
            Kind::Prior { nodes } => {
                let params = nodes
                    .iter()
                    .flat_map(|&(id, c)| net.node_params(id).into_iter().map(move |p| (p, c)))
                    .collect::<Vec<_>>();
                ops::weighted_square_norm(net.device(), &params, weight)
            }
        }
    }
}

/// The stacked inputs as a tensor on a fresh tape of kind `T`.
fn input<D: KernelDevice, T: Tape<f32, D>>(
    net: &Network<D>,
    values: Vec<f32>,
    rows: usize,
) -> Result<Mat<D, T>, BackendError> {
    let cols = net.in_dim();
    Ok(net
        .device()
        .try_tensor_from_vec(values, (rows, cols))
        .map_err(BackendError::device)?
        .retaped::<T>())
}

/// The weight orbit of the first `Linear` node that reads the input.
fn orbit(graph: &ModelGraph, action: &PortAction) -> Result<Kind, BackendError> {
    let (node, shape) = graph
        .nodes
        .iter()
        .find_map(|n| match n.op {
            Op::Linear { inp, out, .. } if n.inputs == [0] => Some((n.id, (out, inp))),
            _ => None,
        })
        .ok_or_else(|| {
            BackendError::InvalidGraph("the weight orbit needs a `Linear` node on the input".into())
        })?;
    let group = action.group();
    let mut elements = Vec::new();
    for a in group.lie() {
        for t in [ORBIT_STEP, -ORBIT_STEP] {
            elements.push(action.element(&(a * t).exp())?.0);
        }
    }
    for h in group.discrete() {
        elements.push(action.element(h)?.0);
    }
    Ok(Kind::Orbit {
        node,
        shape,
        elements,
    })
}

/// The residual-pathway prior: every `Linear` and `EquivariantLinear` summed
/// into a `Sum` node, the first with coefficient 1, the second `equivariant / weight`.
fn prior(graph: &ModelGraph, weight: f64, equivariant: f64) -> Result<Kind, BackendError> {
    let ratio = if weight > 0.0 {
        equivariant / weight
    } else {
        0.0
    };
    let mut nodes = Vec::new();
    for sum in graph.nodes.iter().filter(|n| n.op == Op::Sum) {
        for &id in &sum.inputs {
            match graph.nodes.get(id).map(|n| &n.op) {
                Some(Op::Linear { .. }) => nodes.push((id, 1.0)),
                Some(Op::EquivariantLinear { .. }) => nodes.push((id, ratio)),
                _ => {}
            }
        }
    }
    if nodes.iter().any(|&(_, c)| c == 1.0) {
        Ok(Kind::Prior { nodes })
    } else {
        Err(BackendError::InvalidGraph(
            "the soft prior needs a `Linear` residual path summed with an equivariant one".into(),
        ))
    }
}

#[cfg(test)]
mod tests;
