//! A compiled graph whose whole model is one physics head node (Hamiltonian,
//! Hamiltonian graph or Lagrangian):
//! the head runs its own hand-derived forward and backward passes, and the
//! backend's AdamW steps its parameters.
//!
//! [`HeadGraph`] is what any executor of such a graph shares: reading the
//! graph, the parameter names and layout, the loss terms, and the AdamW step
//! on the host copy of the parameters.

use super::{Bracket, DynamicsNet, Objective};
use crate::backend::adam::AdamW;
use crate::backend::flat::TensorTable;
use crate::backend::{BackendError, Batch, LossBreakdown, NamedTensor};
use crate::group::matrix_from_rows;
use crate::plan::{LossKind, ModelGraph, Op};
use std::ops::Range;

/// A head read from its graph, with the graph's loss terms. The network's
/// parameter vector is the master copy of the weights.
#[derive(Debug)]
pub(super) struct HeadGraph {
    pub(super) net: DynamicsNet,
    /// Names and places of the tensors in the network's parameter vector.
    pub(super) table: TensorTable,
    /// Weight of the field MSE; the brackets' weights are stored divided by
    /// it, so that the head's objective times it is the graph's.
    pub(super) mse_weight: f64,
    /// Each graph loss term's name and the brackets it owns (none for `mse`).
    pub(super) terms: Vec<(&'static str, Range<usize>)>,
}

impl HeadGraph {
    /// The head of `graph` when the graph is an input followed by one
    /// physics head node that is its output; `None` otherwise.
    pub(super) fn read(graph: &ModelGraph, seed: u64) -> Result<Option<Self>, BackendError> {
        let [input, node] = graph.nodes.as_slice() else {
            return Ok(None);
        };
        let head = matches!(
            node.op,
            Op::Hamiltonian { .. } | Op::HamiltonianGraph { .. } | Op::Lagrangian { .. }
        );
        if !head || input.op != Op::Input || node.inputs != [input.id] || graph.output != node.id {
            return Ok(None);
        }
        let net = DynamicsNet::from_op(&node.op, seed)?;
        let d = net.state_dim();
        let in_dim: usize = graph.inputs.iter().map(|p| p.dim).sum();
        let out_dim: usize = graph.outputs.iter().map(|p| p.dim).sum();
        for (what, found) in [("input ports", in_dim), ("output ports", out_dim)] {
            if found != d {
                return Err(BackendError::ShapeMismatch {
                    what: format!("{what} of a head of {} coordinates", d / 2),
                    expected: d,
                    found,
                });
            }
        }
        let mse_weight = graph
            .losses
            .iter()
            .filter(|t| t.kind == LossKind::Mse)
            .map(|t| t.weight)
            .sum::<f64>();
        if mse_weight <= 0.0 {
            return Err(BackendError::InvalidGraph(
                "a dynamics head needs an `mse` term of positive weight".into(),
            ));
        }
        let mut brackets = Vec::new();
        let mut terms = Vec::new();
        for term in &graph.losses {
            let start = brackets.len();
            let name =
                match &term.kind {
                    LossKind::Mse => "mse",
                    LossKind::PoissonBracket { group } => {
                        brackets.extend(state_generators(graph, group)?.into_iter().map(|g| {
                            Bracket {
                                weight: term.weight / mse_weight,
                                generator: g,
                            }
                        }));
                        "poisson_bracket"
                    }
                    other => {
                        return Err(BackendError::Unsupported {
                            op: format!("{other:?} loss on a dynamics head"),
                        })
                    }
                };
            terms.push((name, start..brackets.len()));
        }
        let net = net.with_brackets(brackets)?;
        let count = net.parameters().len();
        if count != graph.parameters {
            return Err(BackendError::ShapeMismatch {
                what: "total parameter count".into(),
                expected: graph.parameters,
                found: count,
            });
        }
        Ok(Some(HeadGraph {
            table: head_tensors(node.id, &net),
            net,
            mse_weight,
            terms,
        }))
    }

    pub(super) fn parameter_count(&self) -> usize {
        self.net.parameters().len()
    }

    /// Lengths of the parameter tensors, in [`Self::named_parameters`] order.
    pub(super) fn tensor_lengths(&self) -> impl Iterator<Item = usize> + '_ {
        self.table.lengths()
    }

    /// Checks that `x` holds `rows` states.
    pub(super) fn check_rows(&self, x: &[f32], rows: usize) -> Result<(), BackendError> {
        let d = self.net.state_dim();
        if rows == 0 || x.len() != rows * d {
            return Err(BackendError::ShapeMismatch {
                what: "input values".into(),
                expected: rows.max(1) * d,
                found: x.len(),
            });
        }
        Ok(())
    }

    /// The graph's loss terms, weighted, from the head's objective.
    pub(super) fn breakdown(&self, objective: &Objective) -> LossBreakdown {
        let terms: Vec<(String, f64)> = self
            .terms
            .iter()
            .map(|(name, range)| {
                let value = if range.is_empty() {
                    objective.mse
                } else {
                    objective.brackets[range.clone()].iter().sum()
                };
                (name.to_string(), self.mse_weight * value)
            })
            .collect();
        LossBreakdown {
            total: terms.iter().map(|(_, v)| v).sum(),
            terms,
        }
    }

    /// One AdamW step on the parameters from `grad`, the gradient of the
    /// head's `objective` (laid out like the parameters; scaled here to the
    /// graph's weighting). Returns the losses of `objective`. A non-finite
    /// loss or gradient is an error and leaves the parameters unchanged.
    pub(super) fn step(
        &mut self,
        objective: &Objective,
        grad: &mut [f32],
        lr: f64,
        adam: &mut AdamW,
    ) -> Result<LossBreakdown, BackendError> {
        let breakdown = self.breakdown(objective);
        if !breakdown.total.is_finite() {
            return Err(BackendError::NonFinite {
                what: "loss".into(),
            });
        }
        let scale = self.mse_weight as f32;
        grad.iter_mut().for_each(|g| *g *= scale);
        self.table.step(self.net.parameters_mut(), grad, lr, adam)?;
        Ok(breakdown)
    }

    pub(super) fn named_parameters(&self) -> Vec<NamedTensor> {
        self.table.named(self.net.parameters())
    }

    /// Replaces all parameters; `tensors` must name each exactly once with its
    /// shape. On error nothing is changed.
    pub(super) fn load_parameters(&mut self, tensors: &[NamedTensor]) -> Result<(), BackendError> {
        self.table.load(self.net.parameters_mut(), tensors)
    }
}

/// The tensor table of `net`'s parameters:
/// `n{node}.weight.{l}` for the one MLP of a dense head,
/// `n{node}.{edge,node}.weight.{l}` for a graph network's two.
pub(super) fn head_tensors(node: usize, net: &DynamicsNet) -> TensorTable {
    let mut tensors = Vec::new();
    for (name, at, mlp) in net.networks() {
        let prefix = match name {
            "" => format!("n{node}"),
            name => format!("n{node}.{name}"),
        };
        for l in 0..mlp.layers() {
            let (w, b) = mlp.offsets(l);
            let (inp, out) = (mlp.sizes[l], mlp.sizes[l + 1]);
            tensors.push((
                format!("{prefix}.weight.{l}"),
                vec![out, inp],
                at + w..at + b,
            ));
            tensors.push((
                format!("{prefix}.bias.{l}"),
                vec![out],
                at + b..at + b + out,
            ));
        }
    }
    TensorTable::new(tensors)
}

/// A head graph run by the head's hand-derived passes on the host.
#[derive(Debug)]
pub(crate) struct CompiledHead {
    graph: HeadGraph,
    grad: Vec<f32>,
}

impl CompiledHead {
    /// The head of `graph` (see [`HeadGraph::read`]); `None` for any other graph.
    pub(crate) fn from_graph(graph: &ModelGraph, seed: u64) -> Result<Option<Self>, BackendError> {
        Ok(HeadGraph::read(graph, seed)?.map(|graph| CompiledHead {
            grad: vec![0.0; graph.parameter_count()],
            graph,
        }))
    }

    pub(crate) fn parameter_count(&self) -> usize {
        self.graph.parameter_count()
    }

    /// Lengths of the parameter tensors, in [`Self::named_parameters`] order.
    pub(crate) fn tensor_lengths(&self) -> impl Iterator<Item = usize> + '_ {
        self.graph.tensor_lengths()
    }

    /// The predicted time derivative at `rows` states.
    pub(crate) fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>, BackendError> {
        self.graph.check_rows(x, rows)?;
        Ok(self.graph.net.field(x)?)
    }

    pub(crate) fn evaluate(&self, batch: &Batch<'_>) -> Result<LossBreakdown, BackendError> {
        self.graph.check_rows(batch.x, batch.rows)?;
        let objective = self.graph.net.objective(batch.x, batch.y)?;
        Ok(self.graph.breakdown(&objective))
    }

    /// One AdamW step; the losses returned are those before it. A non-finite
    /// loss or gradient is an error and leaves the parameters unchanged.
    pub(crate) fn train_step(
        &mut self,
        batch: &Batch<'_>,
        lr: f64,
        adam: &mut AdamW,
    ) -> Result<LossBreakdown, BackendError> {
        self.graph.check_rows(batch.x, batch.rows)?;
        self.grad.fill(0.0);
        let objective = self
            .graph
            .net
            .loss_and_grad(batch.x, batch.y, &mut self.grad)?;
        self.graph.step(&objective, &mut self.grad, lr, adam)
    }

    pub(crate) fn named_parameters(&self) -> Vec<NamedTensor> {
        self.graph.named_parameters()
    }

    /// Replaces all parameters; `tensors` must name each exactly once with its
    /// shape. On error nothing is changed.
    pub(crate) fn load_parameters(&mut self, tensors: &[NamedTensor]) -> Result<(), BackendError> {
        self.graph.load_parameters(tensors)
    }
}

/// Each Lie generator of group `name` as it acts on the state: block
/// diagonal, one block dρ(A) per input port, from the port's representation.
fn state_generators(graph: &ModelGraph, name: &str) -> Result<Vec<Vec<f32>>, BackendError> {
    let def = graph
        .groups
        .iter()
        .find(|g| g.name == name)
        .ok_or_else(|| BackendError::InvalidGraph(format!("group `{name}` is not defined")))?;
    let d: usize = graph.inputs.iter().map(|p| p.dim).sum();
    def.lie
        .iter()
        .map(|rows| {
            let a = matrix_from_rows(rows).map_err(|e| BackendError::Group {
                group: name.into(),
                message: e.to_string(),
            })?;
            let mut generator = vec![0.0f32; d * d];
            let mut at = 0;
            for port in &graph.inputs {
                let rep = port
                    .rep
                    .as_ref()
                    .filter(|r| r.group == name)
                    .ok_or_else(|| {
                        BackendError::InvalidGraph(format!(
                            "state port `{}` has no representation of `{name}`",
                            port.name
                        ))
                    })?;
                let block = rep.rep.drho(&a);
                if block.nrows() != port.dim {
                    return Err(BackendError::ShapeMismatch {
                        what: format!("`{name}` acting on port `{}`", port.name),
                        expected: port.dim,
                        found: block.nrows(),
                    });
                }
                for i in 0..port.dim {
                    for j in 0..port.dim {
                        generator[(at + i) * d + at + j] = block[(i, j)] as f32;
                    }
                }
                at += port.dim;
            }
            Ok(generator)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::backend::{BackendError, Batch, Model};
    use crate::plan::*;
    use std::collections::BTreeMap;

    /// An input and one head node over `coordinates` coordinates, with `losses`.
    fn head_graph(
        op: Op,
        coordinates: usize,
        losses: Vec<LossTerm>,
        groups: Vec<GroupDef>,
    ) -> ModelGraph {
        let d = 2 * coordinates;
        let hidden = match &op {
            Op::Hamiltonian { hidden, .. } | Op::Lagrangian { hidden, .. } => hidden.clone(),
            _ => unreachable!("a head op"),
        };
        let sizes: Vec<usize> = std::iter::once(d).chain(hidden).chain([1]).collect();
        let params = sizes.windows(2).map(|w| w[1] * (w[0] + 1)).sum();
        let port = |name: &str| Port {
            name: name.into(),
            dim: coordinates,
            rep: None,
        };
        ModelGraph {
            model: "head".into(),
            task: Task::Dynamics { coordinates },
            inputs: vec![port("q"), port("p")],
            outputs: vec![port("dq/dt"), port("dp/dt")],
            groups,
            symmetries: vec![],
            nodes: vec![
                Node::new(0, Op::Input, vec![], d, 0),
                Node::new(1, op, vec![0], d, params),
            ],
            output: 1,
            losses,
            data: DataConfig::Builtin {
                name: "none".into(),
                params: BTreeMap::new(),
            },
            train: TrainConfig {
                steps: 1,
                lr: 1e-2,
                batch: None,
                weight_decay: 0.0,
                seed: 0,
                schedule: "constant".into(),
                clip: None,
            },
            parameters: params,
        }
    }

    fn mse() -> LossTerm {
        LossTerm {
            kind: LossKind::Mse,
            weight: 1.0,
        }
    }

    fn hamiltonian(coordinates: usize) -> Op {
        Op::Hamiltonian {
            coordinates,
            hidden: vec![16],
            act: Activation::Tanh,
        }
    }

    #[test]
    fn a_hamiltonian_graph_trains_through_model_and_round_trips_its_parameters() {
        let graph = head_graph(hamiltonian(1), 1, vec![mse()], vec![]);
        let mut model = Model::new(&graph, 3).unwrap();
        // States on circles and the field of H = (q² + p²)/2.
        let x: Vec<f32> = (0..12)
            .flat_map(|k| {
                let a = k as f32 * 0.5;
                [0.8 * a.cos(), 0.8 * a.sin()]
            })
            .collect();
        let y: Vec<f32> = x.chunks_exact(2).flat_map(|s| [s[1], -s[0]]).collect();
        let batch = Batch {
            x: &x,
            y: &y,
            rows: 12,
        };
        let first = model.evaluate(&batch).unwrap();
        assert_eq!(first.terms[0].0, "mse");
        for _ in 0..200 {
            model.train_step(&batch, 1e-2).unwrap();
        }
        assert!(model.evaluate(&batch).unwrap().total < 0.05 * first.total);

        let names: Vec<(String, Vec<usize>)> = model
            .named_parameters()
            .into_iter()
            .map(|t| (t.name, t.shape))
            .collect();
        let expected = [
            ("n1.weight.0", vec![16, 2]),
            ("n1.bias.0", vec![16]),
            ("n1.weight.1", vec![1, 16]),
            ("n1.bias.1", vec![1]),
        ];
        assert_eq!(names, expected.map(|(n, s)| (n.to_string(), s)).to_vec());
        let mut fresh = Model::new(&graph, 4).unwrap();
        assert_ne!(
            fresh.forward(&x, 12).unwrap(),
            model.forward(&x, 12).unwrap()
        );
        let mut tensors = model.named_parameters();
        assert!(matches!(
            fresh.load_parameters(&tensors[1..]),
            Err(BackendError::Parameter { .. })
        ));
        fresh.load_parameters(&tensors).unwrap();
        assert_eq!(
            fresh.forward(&x, 12).unwrap(),
            model.forward(&x, 12).unwrap()
        );
        tensors[0].shape = vec![2, 16];
        assert!(fresh.load_parameters(&tensors).is_err());
        assert!(matches!(
            model.forward(&x[1..], 12),
            Err(BackendError::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn a_poisson_bracket_term_is_reported_and_weighted() {
        let group = GroupDef {
            name: "Rot".into(),
            n: 2,
            lie: vec![vec![vec![0.0, -1.0], vec![1.0, 0.0]]],
            discrete: vec![],
            tolerance: None,
        };
        // q and p each a vector of the plane, turned together.
        let over_rot = |mut graph: ModelGraph| {
            for port in graph.inputs.iter_mut() {
                port.rep = Some(PortRep {
                    group: "Rot".into(),
                    rep: crate::group::Rep::V,
                });
            }
            graph
        };
        let bracket = |weight| LossTerm {
            kind: LossKind::PoissonBracket {
                group: "Rot".into(),
            },
            weight,
        };
        let x: Vec<f32> = (0..20).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
        let y = vec![0.1; 20];
        let batch = Batch {
            x: &x,
            y: &y,
            rows: 5,
        };
        let losses = |model: &Model| model.evaluate(&batch).unwrap().terms;
        let graph = |weight| {
            over_rot(head_graph(
                hamiltonian(2),
                2,
                vec![mse(), bracket(weight)],
                vec![group.clone()],
            ))
        };
        let one = Model::new(&graph(1.0), 0).unwrap();
        let three = Model::new(&graph(3.0), 0).unwrap();
        let (a, b) = (losses(&one), losses(&three));
        assert_eq!((a[1].0.as_str(), a.len()), ("poisson_bracket", 2));
        assert_eq!(a[0], b[0]);
        assert!(a[1].1 > 0.0 && (b[1].1 - 3.0 * a[1].1).abs() < 1e-9 * b[1].1);

        // State ports the group does not act on, and a bracket beside a
        // Lagrangian head, are refused.
        let plain = head_graph(
            hamiltonian(2),
            2,
            vec![mse(), bracket(1.0)],
            vec![group.clone()],
        );
        assert!(matches!(
            Model::new(&plain, 0),
            Err(BackendError::InvalidGraph(_))
        ));
        let lagrangian = Op::Lagrangian {
            coordinates: 2,
            hidden: vec![8],
            act: Activation::Softplus,
            damping: 0.0,
            init: HeadInit::Lnn,
        };
        assert!(Model::new(
            &head_graph(lagrangian, 2, vec![mse(), bracket(1.0)], vec![group]),
            0
        )
        .is_err());
    }

    #[test]
    fn a_hamiltonian_graph_network_trains_names_its_two_mlps_and_stays_on_the_host() {
        let text = "model hgn {
          data     builtin.nbody_spring(bodies = 3, dims = 2, train = 2, val = 1, test = 1)
          state    q: R^[3, 2], p: R^[3, 2]
          symmetry time => hamiltonian
          symmetry translation(on q) => graph
          symmetry permutation(on q, p) => graph
          net      graph(hidden = [16], act = softplus)
        }";
        let compiled = crate::compile(text, "hgn.sym", std::path::Path::new(".")).unwrap();
        let graph = &compiled.graphs[0];
        let mut model = Model::new(graph, 1).unwrap();
        let names: Vec<String> = model
            .named_parameters()
            .into_iter()
            .map(|t| format!("{} {:?}", t.name, t.shape))
            .collect();
        let expected = [
            "n1.edge.weight.0 [16, 3]",
            "n1.edge.bias.0 [16]",
            "n1.edge.weight.1 [1, 16]",
            "n1.edge.bias.1 [1]",
            "n1.node.weight.0 [16, 2]",
            "n1.node.bias.0 [16]",
            "n1.node.weight.1 [1, 16]",
            "n1.node.bias.1 [1]",
        ];
        assert_eq!(names, expected);
        assert_eq!(model.parameter_count(), graph.parameters);

        let splits = crate::data::load(&graph.data, std::path::Path::new(".")).unwrap();
        let t = &splits.train;
        let batch = Batch {
            x: &t.x,
            y: &t.y,
            rows: t.rows,
        };
        let first = model.evaluate(&batch).unwrap().total;
        for _ in 0..100 {
            model.train_step(&batch, 1e-2).unwrap();
        }
        assert!(model.evaluate(&batch).unwrap().total < 0.5 * first);

        let on_gpu = Model::new_on(graph, 1, crate::backend::DeviceKind::Cuda(0));
        assert!(
            matches!(&on_gpu, Err(BackendError::HostOnly { what }) if what.contains("hamiltonian_graph")),
            "{:?}",
            on_gpu.err()
        );
    }
}
