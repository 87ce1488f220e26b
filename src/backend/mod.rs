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
//! A model runs on the CPU or, in a build with the `cuda` feature, on an
//! NVIDIA GPU ([`DeviceKind`]). On a GPU each layer runs as a composition of
//! dfdx's own operations instead of the fused host kernels (the tests check
//! both against each other on the CPU); AdamW stays on the host.
//!
//! A graph that is one `Hamiltonian` or `Lagrangian` node runs on the
//! [`physics`] heads instead, whose hand-derived derivatives replace the tape,
//! and on the CPU a plain MLP on squared error runs as one fused network
//! (`dense.rs`), which spends its step on matrix products, not on the tape.
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
//!         Node::new(1, Op::Linear { inp: 1, out: 1, bias: true, init: LinearInit::Uniform }, vec![0], 1, 2),
//!     ],
//!     output: 1,
//!     losses: vec![LossTerm { kind: LossKind::Mse, weight: 1.0 }],
//! #   data: DataConfig::Builtin { name: "none".into(), params: BTreeMap::new() },
//! #   train: TrainConfig { steps: 1, lr: 0.1, batch: None, weight_decay: 0.0, seed: 0, schedule: "constant".into(), clip: None },
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
mod dense;
mod device;
mod error;
mod flat;
pub mod kernels;
mod layers;
mod loss;
mod params;
pub mod physics;
mod regularizers;

pub(crate) use adam::{squared_norm, AdamW, PAR_LEN};
pub use device::DeviceKind;
pub use error::BackendError;
/// The dense network of the physics heads, for methods outside the backend
/// that run their own chain rule through it (latent symmetry discovery).
pub(crate) use physics::{zeroed, Mlp, MlpCache, MlpScratch};

use crate::plan::{ModelGraph, Task};
use dense::DenseChain;
use dfdx::prelude::*;
use kernels::tape::{gradient, host, KernelDevice, Mat};
use layers::Network;
use loss::{Loss, Scalar};
use physics::CompiledHead;
use rayon::prelude::*;
use regularizers::Regularizer;

/// A compiled model: its parameters on a device, its AdamW state and its
/// layers.
pub struct Model {
    net: Net,
    adam: AdamW,
    device: DeviceKind,
}

/// What runs a graph, on which device. Every variant has the same methods,
/// which [`on_net!`] calls.
enum Net {
    /// A Hamiltonian or Lagrangian head with its own backward pass, on the
    /// CPU; it owns its loss terms.
    Head(Box<CompiledHead>),
    /// A plain MLP on squared error, fused, on the CPU.
    Dense(Box<DenseChain>),
    Cpu(Layered<Cpu>),
    #[cfg(feature = "cuda")]
    Cuda(OnCuda<Layered<dfdx::tensor::Cuda>>),
    /// A Hamiltonian head as dfdx operations, whose tape differentiates ∂H/∂x.
    #[cfg(feature = "cuda")]
    CudaHead(OnCuda<physics::taped::TapedHead<dfdx::tensor::Cuda>>),
}

/// A runner on a GPU, movable between threads like those on the CPU (a
/// [`Model`] lives in errors that must be `Send + Sync`).
#[cfg(feature = "cuda")]
struct OnCuda<T>(T);

// SAFETY: the one part of dfdx's `Cuda` that is neither `Send` nor `Sync` is
// its second stream, a cudarc `CudaStream`: a CUDA stream handle and an
// `Arc<CudaDevice>`. cudarc declares `CudaDevice`, which holds its default
// stream as the same kind of handle, `Send` and `Sync`, since the driver API
// may be called from any thread and binds the device's context on each call;
// a second stream of that device is shared on the same terms.
// The same holds for the taped head, whose only device state is also a `Cuda`.
#[cfg(feature = "cuda")]
unsafe impl Send for OnCuda<Layered<dfdx::tensor::Cuda>> {}
#[cfg(feature = "cuda")]
unsafe impl Sync for OnCuda<Layered<dfdx::tensor::Cuda>> {}
#[cfg(feature = "cuda")]
unsafe impl Send for OnCuda<physics::taped::TapedHead<dfdx::tensor::Cuda>> {}
#[cfg(feature = "cuda")]
unsafe impl Sync for OnCuda<physics::taped::TapedHead<dfdx::tensor::Cuda>> {}

/// `$body` with `$net` bound to the runner inside `$model_net`, whatever its variant.
macro_rules! on_net {
    ($model_net:expr, $net:ident => $body:expr) => {
        match $model_net {
            Net::Head($net) => $body,
            Net::Dense($net) => $body,
            Net::Cpu($net) => $body,
            #[cfg(feature = "cuda")]
            Net::Cuda(OnCuda($net)) => $body,
            #[cfg(feature = "cuda")]
            Net::CudaHead(OnCuda($net)) => $body,
        }
    };
}

/// A minibatch. `x` is `rows × in_dim` row-major; `y` is `rows × out_dim`
/// targets, or one class index (as f32) per row for [`Task::Classification`].
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub x: &'a [f32],
    pub y: &'a [f32],
    pub rows: usize,
}

impl<'a> Batch<'a> {
    /// The batch cut after its first `rows / 2` rows, each half with its
    /// share of the rows: the weight that makes the halves' means add up to
    /// the whole batch's mean. `x` and `y` must hold the same whole number
    /// of values per row.
    pub(crate) fn halves(&self) -> [(Batch<'a>, f64); 2] {
        let (rows, cut) = (self.rows, self.rows / 2);
        let (x0, x1) = self.x.split_at(cut * (self.x.len() / rows));
        let (y0, y1) = self.y.split_at(cut * (self.y.len() / rows));
        let share = |n: usize| n as f64 / rows as f64;
        [
            (
                Batch {
                    x: x0,
                    y: y0,
                    rows: cut,
                },
                share(cut),
            ),
            (
                Batch {
                    x: x1,
                    y: y1,
                    rows: rows - cut,
                },
                share(rows - cut),
            ),
        ]
    }
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
    /// Compiles `graph` on the CPU, drawing initial parameters from `seed`:
    /// the same graph and seed give bit-identical parameters, outputs and
    /// training steps.
    pub fn new(graph: &ModelGraph, seed: u64) -> Result<Model, BackendError> {
        Model::new_on(graph, seed, DeviceKind::Cpu)
    }

    /// Compiles `graph` on `device`. The initial parameters are drawn on the
    /// host from `seed`, so every device starts from the same ones as
    /// [`Model::new`].
    ///
    /// On a GPU, parts of a graph that have only host kernels (group and
    /// plain convolutions, graph networks, physics heads, regularising loss
    /// terms) are a [`BackendError::HostOnly`] naming the first of them.
    ///
    /// ```
    /// use symc::backend::{BackendError, DeviceKind, Model};
    /// # use symc::plan::*;
    /// # use std::collections::BTreeMap;
    /// # let graph = ModelGraph {
    /// #     model: "line".into(),
    /// #     task: Task::Regression,
    /// #     inputs: vec![Port { name: "x".into(), dim: 1, rep: None }],
    /// #     outputs: vec![Port { name: "y".into(), dim: 1, rep: None }],
    /// #     groups: vec![],
    /// #     symmetries: vec![],
    /// #     nodes: vec![
    /// #         Node::new(0, Op::Input, vec![], 1, 0),
    /// #         Node::new(1, Op::Linear { inp: 1, out: 1, bias: true, init: LinearInit::Uniform }, vec![0], 1, 2),
    /// #     ],
    /// #     output: 1,
    /// #     losses: vec![LossTerm { kind: LossKind::Mse, weight: 1.0 }],
    /// #     data: DataConfig::Builtin { name: "none".into(), params: BTreeMap::new() },
    /// #     train: TrainConfig { steps: 1, lr: 0.1, batch: None, weight_decay: 0.0, seed: 0, schedule: "constant".into(), clip: None },
    /// #     parameters: 2,
    /// # };
    /// let model = Model::new_on(&graph, 0, DeviceKind::Cpu)?;
    /// assert_eq!(model.device(), DeviceKind::Cpu);
    /// // Without a GPU (or without the `cuda` feature) CUDA is an error, not a panic.
    /// match Model::new_on(&graph, 0, "cuda:0".parse()?) {
    ///     Ok(model) => assert_eq!(model.device(), DeviceKind::Cuda(0)),
    ///     Err(e) => assert!(matches!(e, BackendError::DeviceUnavailable { .. })),
    /// }
    /// # Ok::<(), BackendError>(())
    /// ```
    pub fn new_on(
        graph: &ModelGraph,
        seed: u64,
        device: DeviceKind,
    ) -> Result<Model, BackendError> {
        if device != DeviceKind::Cpu {
            check_portable(graph, seed)?;
        }
        let net = match device {
            DeviceKind::Cpu => match CompiledHead::from_graph(graph, seed)? {
                Some(head) => Net::Head(Box::new(head)),
                None => match DenseChain::from_graph(graph, seed)? {
                    Some(chain) => Net::Dense(Box::new(chain)),
                    None => Net::Cpu(Layered::new(graph, Cpu::seed_from_u64(seed), seed)?),
                },
            },
            DeviceKind::Cuda(ordinal) => cuda_net(graph, seed, ordinal)?,
        };
        let adam = on_net!(&net, net => AdamW::new(net.tensor_lengths(), graph.train.weight_decay, graph.train.clip));
        Ok(Model { net, adam, device })
    }

    /// The device the model runs on.
    pub fn device(&self) -> DeviceKind {
        self.device
    }

    /// Number of trainable scalars (equals the graph's `parameters`).
    pub fn parameter_count(&self) -> usize {
        on_net!(&self.net, net => net.parameter_count())
    }

    /// The network output for `rows` inputs, `rows × out_dim` row-major.
    pub fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>, BackendError> {
        match &self.net {
            Net::Cpu(net) => net.forward_split(x, rows),
            net => on_net!(net, net => net.forward(x, rows)),
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
        let (net, adam) = (&mut self.net, &mut self.adam);
        // The scope spawns nothing: it moves the step onto a pool thread, so
        // that the products and blocks the step hands to rayon start at once
        // instead of waiting for a sleeping pool to wake.
        rayon::scope(|_| match net {
            Net::Cpu(net) => net.train_step_split(batch, lr, adam),
            net => on_net!(net, net => net.train_step(batch, lr, adam)),
        })
    }

    /// The graph's losses on `batch`, without updating anything.
    pub fn evaluate(&self, batch: &Batch<'_>) -> Result<LossBreakdown, BackendError> {
        match &self.net {
            Net::Cpu(net) => net.evaluate_split(batch),
            net => on_net!(net, net => net.evaluate(batch)),
        }
    }

    /// Every parameter with its name and shape, in a stable order (graph node
    /// order, weight before bias).
    pub fn named_parameters(&self) -> Vec<NamedTensor> {
        on_net!(&self.net, net => net.named_parameters())
    }

    /// Replaces all parameters. `tensors` must name each parameter exactly once
    /// with its shape; on error nothing is changed.
    pub fn load_parameters(&mut self, tensors: &[NamedTensor]) -> Result<(), BackendError> {
        on_net!(&mut self.net, net => net.load_parameters(tensors))
    }
}

/// The graph on GPU `ordinal`.
#[cfg(feature = "cuda")]
fn cuda_net(graph: &ModelGraph, seed: u64, ordinal: usize) -> Result<Net, BackendError> {
    let device = device::open_cuda(ordinal, seed)?;
    Ok(
        match physics::taped::TapedHead::from_graph(graph, device.clone(), seed)? {
            Some(head) => Net::CudaHead(OnCuda(head)),
            None => Net::Cuda(OnCuda(Layered::new(graph, device, seed)?)),
        },
    )
}

/// Without the `cuda` feature: the error that says how to build with it.
#[cfg(not(feature = "cuda"))]
fn cuda_net(_: &ModelGraph, seed: u64, ordinal: usize) -> Result<Net, BackendError> {
    match device::open_cuda(ordinal, seed)? {}
}

/// Fails on the first part of `graph` that has only host kernels: a node
/// (see [`layers::portable`]) or a regularising loss term.
fn check_portable(graph: &ModelGraph, seed: u64) -> Result<(), BackendError> {
    if let Some(node) = graph.nodes.iter().find(|n| !layers::portable(&n.op)) {
        return Err(BackendError::HostOnly {
            what: format!("node {} (`{}`)", node.id, layers::op_name(&node.op)),
        });
    }
    match Regularizer::compile(graph, seed)?.first() {
        Some(r) => Err(BackendError::HostOnly {
            what: format!("loss term `{}`", r.name()),
        }),
        None => Ok(()),
    }
}

/// A graph run as layers on dfdx's tape on device `D`, with its loss terms.
struct Layered<D: KernelDevice> {
    net: Network<D>,
    losses: Vec<Loss>,
    regularizers: Vec<Regularizer>,
}

impl<D: KernelDevice> Layered<D> {
    fn new(graph: &ModelGraph, device: D, seed: u64) -> Result<Self, BackendError> {
        let losses = Loss::compile(&graph.losses);
        let regularizers = Regularizer::compile(graph, seed)?;
        let net = Network::new(graph, device, seed)?;
        if let Task::Classification { classes } = graph.task {
            if classes != net.out_dim() {
                return Err(BackendError::ShapeMismatch {
                    what: "class logits".into(),
                    expected: classes,
                    found: net.out_dim(),
                });
            }
        }
        let layered = Layered {
            net,
            losses,
            regularizers,
        };
        let count = layered.parameter_count();
        if count != graph.parameters {
            return Err(BackendError::ShapeMismatch {
                what: "total parameter count".into(),
                expected: graph.parameters,
                found: count,
            });
        }
        Ok(layered)
    }

    fn tensor_lengths(&self) -> impl Iterator<Item = usize> + '_ {
        self.net.params().map(|p| p.len())
    }

    fn parameter_count(&self) -> usize {
        self.tensor_lengths().sum()
    }

    fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>, BackendError> {
        Ok(host(&self.net.run(self.input(x, rows)?)?))
    }

    /// One AdamW step. The optimiser runs on the host: the gradients are
    /// copied there and the new values back, which on a GPU costs two
    /// transfers of the parameters per step.
    fn train_step(
        &mut self,
        batch: &Batch<'_>,
        lr: f64,
        adam: &mut AdamW,
    ) -> Result<LossBreakdown, BackendError> {
        let (breakdown, gradients) = self.loss_and_gradients(batch)?;
        self.apply(&gradients, lr, adam)?;
        Ok(breakdown)
    }

    /// The losses on `batch` and each parameter's gradient.
    fn loss_and_gradients(
        &self,
        batch: &Batch<'_>,
    ) -> Result<(LossBreakdown, Vec<Vec<f32>>), BackendError> {
        let x = self.input(batch.x, batch.rows)?.leaky_trace();
        let pred = self.net.run(x)?;
        let (total, breakdown) = self.objective(pred, batch)?;
        if !breakdown.total.is_finite() {
            return Err(BackendError::NonFinite {
                what: "loss".into(),
            });
        }
        let mut grads = total.try_backward().map_err(BackendError::device)?;
        let gradients = (self.net.params())
            .map(|p| gradient(&mut grads, &p.handle()))
            .collect::<Result<_, _>>()?;
        Ok((breakdown, gradients))
    }

    /// One AdamW step from `gradients`, one per parameter; a non-finite one
    /// is an error naming its parameter, and changes nothing.
    fn apply(
        &mut self,
        gradients: &[Vec<f32>],
        lr: f64,
        adam: &mut AdamW,
    ) -> Result<(), BackendError> {
        let norms: Vec<f64> = gradients.iter().map(|g| squared_norm(g)).collect();
        if let Some((p, _)) = self.net.params().zip(&norms).find(|(_, n)| !n.is_finite()) {
            return Err(BackendError::NonFinite {
                what: format!("gradient of `{}`", p.name()),
            });
        }
        adam.begin_step(norms.iter().sum());
        for (i, (p, g)) in self.net.params_mut().zip(gradients).enumerate() {
            let mut theta = p.values();
            adam.update(i, &mut theta, g, lr);
            p.set(&theta);
        }
        Ok(())
    }

    fn evaluate(&self, batch: &Batch<'_>) -> Result<LossBreakdown, BackendError> {
        let pred = self.net.run(self.input(batch.x, batch.rows)?)?;
        Ok(self.objective(pred, batch)?.1)
    }

    fn named_parameters(&self) -> Vec<NamedTensor> {
        self.net.params().map(|p| p.to_named()).collect()
    }

    fn load_parameters(&mut self, tensors: &[NamedTensor]) -> Result<(), BackendError> {
        let staged =
            params::match_tensors(self.net.params().map(|p| (p.name(), p.shape())), tensors)?;
        for (p, t) in self.net.params_mut().zip(staged) {
            p.set(&t.data);
        }
        Ok(())
    }

    /// `x` as an input tensor of the network, after checking its size.
    fn input(&self, x: &[f32], rows: usize) -> Result<Mat<D, NoneTape>, BackendError> {
        if rows == 0 {
            return Err(BackendError::ShapeMismatch {
                what: "batch rows (must be positive)".into(),
                expected: 1,
                found: 0,
            });
        }
        let cols = self.net.in_dim();
        if x.len() != rows * cols {
            return Err(BackendError::ShapeMismatch {
                what: "input values".into(),
                expected: rows * cols,
                found: x.len(),
            });
        }
        self.net
            .device()
            .try_tensor_from_vec(x.to_vec(), (rows, cols))
            .map_err(BackendError::device)
    }

    /// The weighted sum of the loss terms on `pred` (the output for
    /// `batch.x`) and of the regularisers, as a tensor (carrying `pred`'s tape
    /// merged with the regularisers') and as numbers.
    fn objective<T: Tape<f32, D>>(
        &self,
        pred: Mat<D, T>,
        batch: &Batch<'_>,
    ) -> Result<(Scalar<D, T>, LossBreakdown), BackendError> {
        let Some((last, rest)) = self.losses.split_last() else {
            return Err(BackendError::InvalidGraph(
                "the graph has no loss term".into(),
            ));
        };
        let mut terms = Vec::with_capacity(self.losses.len());
        let mut total: Option<Scalar<D, T>> = None;
        // Every term but the last reads `pred` with an empty tape; the last takes the tape.
        let reads = rest
            .iter()
            .map(|l| (l, pred.retaped::<T>()))
            .collect::<Vec<_>>();
        let mut add = |name: &str, term: Scalar<D, T>| {
            terms.push((name.to_string(), host(&term)[0] as f64));
            total = Some(match total.take() {
                Some(t) => t + term,
                None => term,
            });
        };
        for (loss, pred) in reads.into_iter().chain([(last, pred)]) {
            add(loss.name(), loss.apply(pred, batch.y)?);
        }
        for r in &self.regularizers {
            add(r.name(), r.apply(&self.net, batch.x, batch.rows)?);
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

/// Batches of at least this many rows run as two halves on the CPU, one
/// per thread: below it a half's products are too small to keep a thread busy.
pub(crate) const SPLIT_ROWS: usize = 256;

impl LossBreakdown {
    /// The losses of a batch from those of its two halves, each weighted by
    /// its share of the rows (every loss term is a mean over rows).
    fn blend(first: LossBreakdown, w0: f64, second: LossBreakdown, w1: f64) -> LossBreakdown {
        LossBreakdown {
            total: w0 * first.total + w1 * second.total,
            terms: (first.terms.into_iter().zip(second.terms))
                .map(|((name, a), (_, b))| (name, w0 * a + w1 * b))
                .collect(),
        }
    }
}

impl Layered<Cpu> {
    /// Whether `batch` runs as two halves, one per thread: it has
    /// [`SPLIT_ROWS`] rows or more, the same number of targets per row, and no
    /// regulariser (some draw random group elements as they go, so they keep
    /// the whole batch). Halves are exact because no layer mixes rows. The
    /// split depends only on the batch size, so results have the same bits on
    /// any number of threads.
    fn splits(&self, batch: &Batch<'_>) -> bool {
        let rows = batch.rows;
        rows >= SPLIT_ROWS && self.regularizers.is_empty() && batch.y.len() % rows == 0
    }

    /// [`Layered::train_step`] with a batch that [splits](Self::splits) run
    /// as two halves, each on its own tape: their losses and gradients,
    /// weighted by their shares of the rows, are the whole batch's.
    fn train_step_split(
        &mut self,
        batch: &Batch<'_>,
        lr: f64,
        adam: &mut AdamW,
    ) -> Result<LossBreakdown, BackendError> {
        if !self.splits(batch) {
            return self.train_step(batch, lr, adam);
        }
        let [(b0, w0), (b1, w1)] = batch.halves();
        let this = &*self;
        let (first, second) = rayon::join(
            || this.loss_and_gradients(&b0),
            || this.loss_and_gradients(&b1),
        );
        // A half's error would name the half's sizes and rows: the whole batch names its own.
        let (Ok((l0, mut g0)), Ok((l1, g1))) = (first, second) else {
            return self.train_step(batch, lr, adam);
        };
        for (a, b) in g0.iter_mut().zip(&g1) {
            let (w0, w1) = (w0 as f32, w1 as f32);
            (a.par_chunks_mut(PAR_LEN))
                .zip(b.par_chunks(PAR_LEN))
                .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a = w0 * *a + w1 * b));
        }
        self.apply(&g0, lr, adam)?;
        Ok(LossBreakdown::blend(l0, w0, l1, w1))
    }

    /// [`Layered::evaluate`], with a batch that [splits](Self::splits) run as
    /// two halves.
    fn evaluate_split(&self, batch: &Batch<'_>) -> Result<LossBreakdown, BackendError> {
        if !self.splits(batch) {
            return self.evaluate(batch);
        }
        let [(b0, w0), (b1, w1)] = batch.halves();
        match rayon::join(|| self.evaluate(&b0), || self.evaluate(&b1)) {
            (Ok(l0), Ok(l1)) => Ok(LossBreakdown::blend(l0, w0, l1, w1)),
            _ => self.evaluate(batch),
        }
    }

    /// [`Layered::forward`], with [`SPLIT_ROWS`] rows or more run as two
    /// halves whose outputs are stacked.
    fn forward_split(&self, x: &[f32], rows: usize) -> Result<Vec<f32>, BackendError> {
        if rows < SPLIT_ROWS || x.len() % rows != 0 {
            return self.forward(x, rows);
        }
        let (x0, x1) = x.split_at(rows / 2 * (x.len() / rows));
        match rayon::join(
            || self.forward(x0, rows / 2),
            || self.forward(x1, rows - rows / 2),
        ) {
            (Ok(mut y0), Ok(y1)) => {
                y0.extend(y1);
                Ok(y0)
            }
            _ => self.forward(x, rows),
        }
    }
}

#[cfg(test)]
mod tests;
