//! The dfdx backend: runs a compiled [`ModelGraph`] — parameters, forward
//! pass, gradients and AdamW steps.
//!
//! Hot layers are fused custom operations on dfdx's tape: a `Linear` followed
//! by its activation is one `gemm` call plus one vectorised bias + activation
//! pass, and its backward is two `gemm` calls registered with
//! `Tape::add_backward_op`. dfdx's per-op CPU kernels are used only for the
//! loss on the small output. No dfdx type appears in this module's public API.
//!
//! `EquivariantLinear` keeps each weight in block form (Σ Cₖ ⊗ Bₖ per pair of
//! canonical summands, with the group engine's small bases Bₖ and trainable
//! channel mixings Cₖ), so its step costs about what a dense layer of the same
//! channel count costs; the full weight matrix is never formed. `Gated` and
//! `NormNonlinearity` are EMLP's equivariant nonlinearities.
//!
//! A graph that is one `Hamiltonian` or `Lagrangian` node runs on the
//! [`physics`] heads instead, whose hand-derived derivatives replace the tape.
//!
//! Parameter names are `n{node}.{kind}`: `n3.weight` (`[out, inp]`) and
//! `n3.bias` (`[out]`) for a `Linear` node with id 3; `n3.weight.{j}` and
//! `n3.bias.{j}` for output summand j of an `EquivariantLinear` (see its
//! module for the layouts) and for layer j of a physics head's MLP.
//!
//! ```
//! use symc::backend::{Batch, Model};
//! use symc::plan::*;
//! # use std::collections::BTreeMap;
//! let graph = ModelGraph {
//!     model: "line".into(),
//!     task: Task::Regression,
//!     inputs: vec![Port { name: "x".into(), dim: 1, rep: None }],
//!     outputs: vec![Port { name: "y".into(), dim: 1, rep: None }],
//!     groups: vec![],
//!     symmetries: vec![],
//!     nodes: vec![
//!         Node::new(0, Op::Input, vec![], 1, 0),
//!         Node::new(1, Op::Linear { inp: 1, out: 1, bias: true }, vec![0], 1, 2),
//!     ],
//!     output: 1,
//!     losses: vec![LossTerm { kind: LossKind::Mse, weight: 1.0 }],
//! #   data: DataConfig::Builtin { name: "none".into(), params: BTreeMap::new() },
//! #   train: TrainConfig { steps: 1, lr: 0.1, batch: None, weight_decay: 0.0, seed: 0, schedule: "constant".into() },
//!     // ... data and train settings ...
//!     parameters: 2,
//! };
//! let mut model = Model::new(&graph, 0)?;
//! let (x, y) = ([0.0, 1.0, 2.0], [1.0, 3.0, 5.0]); // y = 2x + 1
//! let batch = Batch { x: &x, y: &y, rows: 3 };
//! let first = model.evaluate(&batch)?.total;
//! for _ in 0..300 {
//!     model.train_step(&batch, 0.05)?;
//! }
//! assert!(model.evaluate(&batch)?.total < 1e-3 * first);
//! assert_eq!(model.named_parameters()[0].name, "n1.weight");
//! # Ok::<(), symc::backend::BackendError>(())
//! ```

mod adam;
mod error;
pub mod kernels;
mod layers;
mod loss;
mod params;
pub mod physics;
mod regularizers;

pub(crate) use adam::AdamW;
pub use error::BackendError;

use crate::plan::{ModelGraph, Task};
use dfdx::prelude::*;
use kernels::tape::{host, Mat};
use layers::Network;
use loss::{Loss, Scalar};
use physics::CompiledHead;
use regularizers::Regularizer;

/// A compiled model: its parameters on a dfdx CPU device, its AdamW state and
/// its layers.
pub struct Model {
    net: Net,
    losses: Vec<Loss>,
    regularizers: Vec<Regularizer>,
    adam: AdamW,
}

/// What runs a graph.
enum Net {
    /// Layers on dfdx's tape.
    Layers(Network<Cpu>),
    /// A Hamiltonian or Lagrangian head with its own backward pass; it owns
    /// its loss terms.
    Head(CompiledHead),
}

/// A minibatch. `x` is `rows × in_dim` row-major; `y` is `rows × out_dim`
/// targets, or one class index (as f32) per row for [`Task::Classification`].
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub x: &'a [f32],
    pub y: &'a [f32],
    pub rows: usize,
}

/// Values of the loss terms: one entry per graph loss term, weighted, named by
/// kind (`mse`, `cross_entropy`), and their sum.
#[derive(Debug, Clone, PartialEq)]
pub struct LossBreakdown {
    pub total: f64,
    pub terms: Vec<(String, f64)>,
}

/// A named parameter tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Model {
    /// Compiles `graph`, drawing initial parameters from `seed`: the same graph
    /// and seed give bit-identical parameters, outputs and training steps.
    pub fn new(graph: &ModelGraph, seed: u64) -> Result<Model, BackendError> {
        if let Some(head) = CompiledHead::from_graph(graph, seed)? {
            let adam = AdamW::new(head.tensor_lengths(), graph.train.weight_decay);
            return Ok(Model {
                net: Net::Head(head),
                losses: Vec::new(),
                regularizers: Vec::new(),
                adam,
            });
        }
        let losses = Loss::compile(&graph.losses);
        let regularizers = Regularizer::compile(graph, seed)?;
        let net = Network::new(graph, Cpu::seed_from_u64(seed), seed)?;
        if let Task::Classification { classes } = graph.task {
            if classes != net.out_dim() {
                return Err(BackendError::ShapeMismatch {
                    what: "class logits".into(),
                    expected: classes,
                    found: net.out_dim(),
                });
            }
        }
        let count: usize = net.params().map(|p| p.len()).sum();
        if count != graph.parameters {
            return Err(BackendError::ShapeMismatch {
                what: "total parameter count".into(),
                expected: graph.parameters,
                found: count,
            });
        }
        let adam = AdamW::new(net.params().map(|p| p.len()), graph.train.weight_decay);
        Ok(Model {
            net: Net::Layers(net),
            losses,
            regularizers,
            adam,
        })
    }

    /// Number of trainable scalars (equals the graph's `parameters`).
    pub fn parameter_count(&self) -> usize {
        match &self.net {
            Net::Layers(net) => net.params().map(|p| p.len()).sum(),
            Net::Head(head) => head.parameter_count(),
        }
    }

    /// The network output for `rows` inputs, `rows × out_dim` row-major.
    pub fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>, BackendError> {
        match &self.net {
            Net::Layers(net) => Ok(host(&net.run(Self::input(net, x, rows)?)?)),
            Net::Head(head) => head.forward(x, rows),
        }
    }

    /// One AdamW step on the graph's losses with learning rate `lr`; the
    /// returned losses are those before the step. A non-finite loss or
    /// gradient is an error and leaves the parameters unchanged.
    pub fn train_step(
        &mut self,
        batch: &Batch<'_>,
        lr: f64,
    ) -> Result<LossBreakdown, BackendError> {
        let net = match &mut self.net {
            Net::Layers(net) => net,
            Net::Head(head) => return head.train_step(batch, lr, &mut self.adam),
        };
        let x = Self::input(net, batch.x, batch.rows)?.leaky_trace();
        let terms = (&self.losses[..], &self.regularizers[..]);
        let (total, breakdown) = Self::objective(terms, net, net.run(x)?, batch)?;
        if !breakdown.total.is_finite() {
            return Err(BackendError::NonFinite {
                what: "loss".into(),
            });
        }
        let mut grads = total.backward();
        let mut gradients = Vec::new();
        for p in net.params() {
            let g = grads
                .get_or_alloc_mut(&p.handle())
                .map_err(BackendError::device)?
                .to_vec();
            if !g.iter().all(|v| v.is_finite()) {
                return Err(BackendError::NonFinite {
                    what: format!("gradient of `{}`", p.name()),
                });
            }
            gradients.push(g);
        }
        self.adam.begin_step();
        for (i, (p, g)) in net.params_mut().zip(&gradients).enumerate() {
            let mut theta = p.values();
            self.adam.update(i, &mut theta, g, lr);
            p.set(&theta);
        }
        Ok(breakdown)
    }

    /// The graph's losses on `batch`, without updating anything.
    pub fn evaluate(&self, batch: &Batch<'_>) -> Result<LossBreakdown, BackendError> {
        match &self.net {
            Net::Layers(net) => {
                let pred = net.run(Self::input(net, batch.x, batch.rows)?)?;
                let terms = (&self.losses[..], &self.regularizers[..]);
                Ok(Self::objective(terms, net, pred, batch)?.1)
            }
            Net::Head(head) => head.evaluate(batch),
        }
    }

    /// Every parameter with its name and shape, in a stable order (graph node
    /// order, weight before bias).
    pub fn named_parameters(&self) -> Vec<NamedTensor> {
        match &self.net {
            Net::Layers(net) => net.params().map(|p| p.to_named()).collect(),
            Net::Head(head) => head.named_parameters(),
        }
    }

    /// Replaces all parameters. `tensors` must name each parameter exactly once
    /// with its shape; on error nothing is changed.
    pub fn load_parameters(&mut self, tensors: &[NamedTensor]) -> Result<(), BackendError> {
        let net = match &mut self.net {
            Net::Layers(net) => net,
            Net::Head(head) => return head.load_parameters(tensors),
        };
        let mut found: Vec<Option<&NamedTensor>> = vec![None; net.params().count()];
        for t in tensors {
            let index = net.params().position(|p| p.name() == t.name);
            let slot = index
                .map(|i| &mut found[i])
                .ok_or_else(|| BackendError::Parameter {
                    name: t.name.clone(),
                    problem: "the model has no parameter of this name".into(),
                })?;
            if slot.replace(t).is_some() {
                return Err(BackendError::Parameter {
                    name: t.name.clone(),
                    problem: "given twice".into(),
                });
            }
        }
        let mut staged = Vec::with_capacity(found.len());
        for (p, t) in net.params().zip(&found) {
            let t = t.ok_or_else(|| BackendError::Parameter {
                name: p.name().into(),
                problem: "missing from the loaded tensors".into(),
            })?;
            p.check(t)?;
            staged.push(t);
        }
        for (p, t) in net.params_mut().zip(staged) {
            p.set(&t.data);
        }
        Ok(())
    }

    /// `x` as an input tensor of `net`, after checking its size.
    fn input(
        net: &Network<Cpu>,
        x: &[f32],
        rows: usize,
    ) -> Result<Mat<Cpu, NoneTape>, BackendError> {
        if rows == 0 {
            return Err(BackendError::ShapeMismatch {
                what: "batch rows (must be positive)".into(),
                expected: 1,
                found: 0,
            });
        }
        let cols = net.in_dim();
        if x.len() != rows * cols {
            return Err(BackendError::ShapeMismatch {
                what: "input values".into(),
                expected: rows * cols,
                found: x.len(),
            });
        }
        net.device()
            .try_tensor_from_vec(x.to_vec(), (rows, cols))
            .map_err(BackendError::device)
    }

    /// The weighted sum of the loss terms on `pred` (the output for
    /// `batch.x`) and of the regularisers, as a tensor (carrying `pred`'s tape
    /// merged with the regularisers') and as numbers.
    fn objective<T: Tape<f32, Cpu> + Merge<T>>(
        (losses, regularizers): (&[Loss], &[Regularizer]),
        net: &Network<Cpu>,
        pred: Mat<Cpu, T>,
        batch: &Batch<'_>,
    ) -> Result<(Scalar<Cpu, T>, LossBreakdown), BackendError> {
        let Some((last, rest)) = losses.split_last() else {
            return Err(BackendError::InvalidGraph(
                "the graph has no loss term".into(),
            ));
        };
        let mut terms = Vec::with_capacity(losses.len());
        let mut total: Option<Scalar<Cpu, T>> = None;
        // Every term but the last reads `pred` with an empty tape; the last takes the tape.
        let reads = rest
            .iter()
            .map(|l| (l, pred.retaped::<T>()))
            .collect::<Vec<_>>();
        let mut add = |name: &str, term: Scalar<Cpu, T>| {
            terms.push((name.to_string(), term.array() as f64));
            total = Some(match total.take() {
                Some(t) => t + term,
                None => term,
            });
        };
        for (loss, pred) in reads.into_iter().chain([(last, pred)]) {
            add(loss.name(), loss.apply(pred, batch.y)?);
        }
        for r in regularizers {
            add(r.name(), r.apply(net, batch.x, batch.rows)?);
        }
        let total_value = terms.iter().map(|(_, v)| v).sum();
        let total =
            total.ok_or_else(|| BackendError::InvalidGraph("the graph has no loss term".into()))?;
        Ok((
            total,
            LossBreakdown {
                total: total_value,
                terms,
            },
        ))
    }
}

#[cfg(test)]
mod tests;
