//! Layers and the evaluation of a compiled graph.
//!
//! Each IR op maps to one [`Layer`] variant, built in [`Layer::build`] and run
//! in [`Layer::forward`]; supporting a new op is one variant, one arm in each
//! of those two functions and one file holding its kernels.

mod activation;
mod bilinear;
mod equivariant;
mod gated;
mod graph;
mod group_conv;
mod jvp;
mod linear;

use super::kernels::tape::{concat_columns, KernelDevice, Mat};
use super::params::Param;
use super::BackendError;
use crate::group::{matrix_from_rows, BasisSolver, Group};
use crate::plan::{GroupDef, ModelGraph, Node, Op};
use bilinear::Bilinear;
use dfdx::prelude::*;
use equivariant::EquivariantLinear;
use gated::{Gate, Gated};
use graph::{GraphNet, GraphShape};
use group_conv::{ConvNet, ConvShape};
use linear::Linear;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;

/// What building a layer draws on besides its node: the seeded parameter
/// stream and one basis solver per group (so equal blocks are solved once).
struct Context<'a, D> {
    device: &'a D,
    rng: StdRng,
    groups: &'a [GroupDef],
    solvers: HashMap<String, BasisSolver>,
}

impl<D> Context<'_, D> {
    /// The device, the parameter stream and the solver of group `name`.
    fn parts(&mut self, name: &str) -> Result<(&D, &mut StdRng, &mut BasisSolver), BackendError> {
        if !self.solvers.contains_key(name) {
            let def = self.groups.iter().find(|g| g.name == name).ok_or_else(|| {
                BackendError::InvalidGraph(format!("group `{name}` is not defined in the graph"))
            })?;
            self.solvers
                .insert(name.into(), BasisSolver::new(&group_from_def(def)?));
        }
        let solver = self.solvers.get_mut(name).ok_or_else(|| {
            BackendError::InvalidGraph(format!("group `{name}` could not be built"))
        })?;
        Ok((self.device, &mut self.rng, solver))
    }

    /// Dimension of group `name`'s defining representation.
    fn n(&mut self, name: &str) -> Result<usize, BackendError> {
        Ok(self.parts(name)?.2.group().n())
    }
}

/// The group an IR definition describes.
pub(crate) fn group_from_def(def: &GroupDef) -> Result<Group, BackendError> {
    let matrices = |ms: &[Vec<Vec<f64>>]| {
        ms.iter()
            .map(|m| matrix_from_rows(m))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BackendError::Group {
                group: def.name.clone(),
                message: e.to_string(),
            })
    };
    Ok(Group::from_generators(
        &def.name,
        def.n,
        matrices(&def.lie)?,
        matrices(&def.discrete)?,
    )
    .with_tolerance(def.tolerance))
}

/// One compiled node.
pub(crate) enum Layer<D: KernelDevice> {
    /// The network input.
    Input,
    /// The elementwise sum of its inputs, formed by the network's wiring: passes it on.
    Sum,
    /// An activation computed by the `Linear` before it: passes its input on.
    Fused,
    Linear(Linear<D>),
    Activation(crate::plan::Activation),
    Equivariant(EquivariantLinear<D>),
    Gated(Gated),
    /// `Op::Conv` and `Op::GroupConv`.
    Conv(ConvNet<D>),
    Graph(GraphNet<D>),
    Bilinear(Bilinear<D>),
}

impl<D: KernelDevice> Layer<D> {
    /// Builds the layer for `node`, whose input has `width` columns.
    fn build(cx: &mut Context<'_, D>, node: &Node, width: usize) -> Result<Self, BackendError> {
        let expect_input = |expected: usize| {
            if width == expected {
                Ok(())
            } else {
                Err(BackendError::ShapeMismatch {
                    what: format!("input width of node {}", node.id),
                    expected,
                    found: width,
                })
            }
        };
        let layer = match &node.op {
            Op::Input => Layer::Input,
            Op::Linear {
                inp,
                out,
                bias,
                init,
            } => {
                expect_input(*inp)?;
                Layer::Linear(Linear::new(
                    cx.device,
                    node.id,
                    (*inp, *out, *bias, *init),
                    &mut cx.rng,
                )?)
            }
            Op::Activation { kind } => Layer::Activation(*kind),
            Op::Sum => Layer::Sum,
            Op::EquivariantLinear {
                group,
                rep_in,
                rep_out,
                basis,
                bias,
            } => {
                let (device, rng, solver) = cx.parts(group)?;
                let reps = (rep_in, rep_out);
                let layer =
                    EquivariantLinear::new(device, node.id, solver, reps, (*basis, *bias), rng)?;
                expect_input(layer.in_width())?;
                Layer::Equivariant(layer)
            }
            Op::Gated { group, rep, gates } => {
                let layer = Gated::new(Gate::Channel, rep, cx.n(group)?, *gates)?;
                expect_input(layer.in_width())?;
                Layer::Gated(layer)
            }
            Op::Bilinear {
                group,
                rep,
                channels,
            } => {
                let (device, rng, solver) = cx.parts(group)?;
                let layer = Bilinear::new(device, node.id, solver, (rep, *channels), rng)?;
                expect_input(layer.width())?;
                Layer::Bilinear(layer)
            }
            Op::NormNonlinearity { group, rep } => {
                let layer = Gated::new(Gate::Norm, rep, cx.n(group)?, 0)?;
                expect_input(layer.in_width())?;
                Layer::Gated(layer)
            }
            Op::GroupConv {
                group,
                channels,
                kernel,
                height,
                width: w,
                invariant,
            } => {
                let shape = ConvShape {
                    group: Some(group),
                    channels,
                    kernel: *kernel,
                    height: *height,
                    width: *w,
                    pooled: *invariant,
                };
                Layer::Conv(ConvNet::new(cx.device, node.id, shape, width, &mut cx.rng)?)
            }
            Op::GraphNetwork {
                bodies,
                dims,
                features,
                hidden,
                act,
            } => {
                expect_input(bodies * features)?;
                let shape = GraphShape {
                    bodies: *bodies,
                    dims: *dims,
                    features: *features,
                    hidden,
                    act: *act,
                    out_dim: node.out_dim,
                };
                Layer::Graph(GraphNet::new(cx.device, node.id, shape, &mut cx.rng)?)
            }
            Op::Conv {
                channels,
                kernel,
                height,
                width: w,
            } => {
                let shape = ConvShape {
                    group: None,
                    channels,
                    kernel: *kernel,
                    height: *height,
                    width: *w,
                    pooled: true,
                };
                Layer::Conv(ConvNet::new(cx.device, node.id, shape, width, &mut cx.rng)?)
            }
            other => {
                return Err(BackendError::Unsupported {
                    op: op_name(other).into(),
                })
            }
        };
        Ok(layer)
    }

    /// Width of this layer's output for an input of `width` columns.
    fn out_width(&self, width: usize) -> usize {
        match self {
            Layer::Linear(l) => l.out_width(),
            Layer::Equivariant(l) => l.out_width(),
            Layer::Gated(l) => l.out_width(),
            Layer::Conv(c) => c.out_width(),
            Layer::Graph(g) => g.out_width(),
            Layer::Bilinear(l) => l.width(),
            Layer::Input | Layer::Fused | Layer::Sum | Layer::Activation(_) => width,
        }
    }

    pub(crate) fn forward<T: Tape<f32, D>>(&self, x: Mat<D, T>) -> Result<Mat<D, T>, BackendError> {
        match self {
            Layer::Input | Layer::Fused | Layer::Sum => Ok(x),
            Layer::Linear(l) => l.forward(x),
            Layer::Activation(kind) => activation::forward(*kind, x),
            Layer::Equivariant(l) => l.forward(x),
            Layer::Gated(l) => l.forward(x),
            Layer::Conv(c) => c.forward(x),
            Layer::Graph(g) => g.forward(x),
            Layer::Bilinear(l) => l.forward(x),
        }
    }

    /// The layer on a stacked batch of values and tangents (see [`jvp`]);
    /// only the layers of a dense network carry tangents, with host kernels.
    pub(crate) fn forward_stacked<T: Tape<f32, D>>(
        &self,
        x: Mat<D, T>,
        values: usize,
    ) -> Result<Mat<D, T>, BackendError> {
        if !D::HOST {
            return Err(BackendError::HostOnly {
                what: "the forward-mode derivative of a network".into(),
            });
        }
        let other = match self {
            Layer::Input | Layer::Fused | Layer::Sum => return Ok(x),
            Layer::Linear(l) => return l.forward_stacked(x, values),
            Layer::Activation(kind) => return activation::forward_stacked(*kind, x, values),
            Layer::Equivariant(_) => "equivariant_linear",
            Layer::Gated(_) => "gated",
            Layer::Conv(_) => "conv",
            Layer::Graph(_) => "graph_network",
            Layer::Bilinear(_) => "bilinear",
        };
        Err(BackendError::Unsupported {
            op: format!("forward-mode derivative through `{other}`"),
        })
    }

    pub(crate) fn params(&self) -> Vec<&Param<D>> {
        match self {
            Layer::Linear(l) => l.params().collect(),
            Layer::Conv(c) => c.params().collect(),
            Layer::Graph(g) => g.params().collect(),
            Layer::Equivariant(l) => l.params().collect(),
            Layer::Bilinear(l) => l.params().collect(),
            Layer::Input | Layer::Fused | Layer::Sum | Layer::Activation(_) | Layer::Gated(_) => {
                Vec::new()
            }
        }
    }

    pub(crate) fn params_mut(&mut self) -> Vec<&mut Param<D>> {
        match self {
            Layer::Linear(l) => l.params_mut().collect(),
            Layer::Conv(c) => c.params_mut().collect(),
            Layer::Graph(g) => g.params_mut().collect(),
            Layer::Equivariant(l) => l.params_mut().collect(),
            Layer::Bilinear(l) => l.params_mut().collect(),
            Layer::Input | Layer::Fused | Layer::Sum | Layer::Activation(_) | Layer::Gated(_) => {
                Vec::new()
            }
        }
    }
}

/// Whether `op` runs on a device without host buffers, where a layer is a
/// composition of dfdx's operations rather than fused host kernels.
pub(crate) fn portable(op: &Op) -> bool {
    match op {
        Op::Input
        | Op::Linear { .. }
        | Op::Activation { .. }
        | Op::Sum
        | Op::EquivariantLinear { .. }
        | Op::Gated { .. }
        | Op::NormNonlinearity { .. }
        | Op::Bilinear { .. }
        | Op::Hamiltonian { .. } => true,
        // Host kernels only.
        Op::Lagrangian { .. }
        | Op::HamiltonianGraph { .. }
        | Op::GraphNetwork { .. }
        | Op::GroupConv { .. }
        | Op::Conv { .. } => false,
    }
}

/// The IR's name for an op, as `BackendError::Unsupported` reports it.
pub(crate) fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Input => "input",
        Op::Linear { .. } => "linear",
        Op::Activation { .. } => "activation",
        Op::EquivariantLinear { .. } => "equivariant_linear",
        Op::Gated { .. } => "gated",
        Op::Bilinear { .. } => "bilinear",
        Op::NormNonlinearity { .. } => "norm_nonlinearity",
        Op::Hamiltonian { .. } => "hamiltonian",
        Op::Lagrangian { .. } => "lagrangian",
        Op::HamiltonianGraph { .. } => "hamiltonian_graph",
        Op::GraphNetwork { .. } => "graph_network",
        Op::GroupConv { .. } => "group_conv",
        Op::Conv { .. } => "conv",
        Op::Sum => "sum",
    }
}

/// A graph's layers with their wiring, ready to run on device `D`.
pub(crate) struct Network<D: KernelDevice> {
    device: D,
    layers: Vec<Layer<D>>,
    inputs: Vec<Vec<usize>>,
    /// How many times each node's value is read (by later nodes and as the output).
    uses: Vec<usize>,
    output: usize,
    in_dim: usize,
    out_dim: usize,
}

impl<D: KernelDevice> Network<D> {
    /// Checks the graph's wiring and widths, draws the parameters from `seed`,
    /// and fuses each activation into the `Linear` it alone reads.
    pub(crate) fn new(graph: &ModelGraph, device: D, seed: u64) -> Result<Self, BackendError> {
        let n = graph.nodes.len();
        if graph.output >= n {
            return Err(BackendError::InvalidGraph(format!(
                "output node {} does not exist ({n} nodes)",
                graph.output
            )));
        }
        let in_dim: usize = graph.inputs.iter().map(|p| p.dim).sum();
        let mut cx = Context {
            device: &device,
            rng: StdRng::seed_from_u64(seed),
            groups: &graph.groups,
            solvers: HashMap::new(),
        };
        let mut layers = Vec::with_capacity(n);
        let mut widths = Vec::with_capacity(n);
        let mut uses = vec![0; n];
        uses[graph.output] += 1;
        for (i, node) in graph.nodes.iter().enumerate() {
            if node.id != i {
                return Err(BackendError::InvalidGraph(format!(
                    "node at position {i} has id {}",
                    node.id
                )));
            }
            if let Some(&j) = node.inputs.iter().find(|&&j| j >= i) {
                return Err(BackendError::InvalidGraph(format!(
                    "node {i} reads node {j}, which is not earlier"
                )));
            }
            let is_input = node.op == Op::Input;
            if is_input != node.inputs.is_empty() {
                return Err(BackendError::InvalidGraph(format!(
                    "node {i}: only input nodes, and all of them, have no inputs"
                )));
            }
            let width = if is_input {
                in_dim
            } else if node.op == Op::Sum {
                let first = widths[node.inputs[0]];
                if let Some(&j) = node.inputs.iter().find(|&&j| widths[j] != first) {
                    return Err(BackendError::ShapeMismatch {
                        what: format!("width of node {j}, summed by node {i}"),
                        expected: first,
                        found: widths[j],
                    });
                }
                first
            } else {
                node.inputs.iter().map(|&j| widths[j]).sum()
            };
            let layer = Layer::build(&mut cx, node, width)?;
            let out = layer.out_width(width);
            if out != node.out_dim || out == 0 {
                return Err(BackendError::ShapeMismatch {
                    what: format!("output width of node {i} (must be positive)"),
                    expected: node.out_dim,
                    found: out,
                });
            }
            let params: usize = layer.params().iter().map(|p| p.len()).sum();
            if params != node.params {
                return Err(BackendError::ShapeMismatch {
                    what: format!("parameter count of node {i}"),
                    expected: node.params,
                    found: params,
                });
            }
            node.inputs.iter().for_each(|&j| uses[j] += 1);
            widths.push(out);
            layers.push(layer);
        }
        let inputs: Vec<Vec<usize>> = graph.nodes.iter().map(|n| n.inputs.clone()).collect();
        for i in 0..n {
            if let (Layer::Activation(kind), [j]) = (&layers[i], inputs[i].as_slice()) {
                let (kind, j) = (*kind, *j);
                if uses[j] == 1 {
                    if let Layer::Linear(l) = &mut layers[j] {
                        l.fuse(kind);
                        layers[i] = Layer::Fused;
                    }
                }
            }
        }
        Ok(Network {
            device,
            layers,
            inputs,
            uses,
            output: graph.output,
            in_dim,
            out_dim: widths[graph.output],
        })
    }

    pub(crate) fn device(&self) -> &D {
        &self.device
    }

    pub(crate) fn in_dim(&self) -> usize {
        self.in_dim
    }

    pub(crate) fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// Evaluates the graph on `x` (rows × `in_dim`), carrying `x`'s tape through every node.
    pub(crate) fn run<T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Mat<D, T>,
    ) -> Result<Mat<D, T>, BackendError> {
        self.run_with(x, Layer::forward)
    }

    /// Evaluates the graph and its directional derivatives on a stacked batch
    /// (see [`jvp`]) whose first `values` rows are the inputs and the rest
    /// blocks of input tangents; the result is stacked the same way.
    pub(crate) fn run_stacked<T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Mat<D, T>,
        values: usize,
    ) -> Result<Mat<D, T>, BackendError> {
        self.run_with(x, |layer, x| layer.forward_stacked(x, values))
    }

    /// The parameters of node `id`'s layer (none for an unknown id).
    pub(crate) fn node_params(&self, id: usize) -> Vec<&Param<D>> {
        self.layers.get(id).map_or_else(Vec::new, Layer::params)
    }

    /// Evaluates the graph with `step` running each layer on its (concatenated
    /// or summed) input.
    fn run_with<T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Mat<D, T>,
        step: impl Fn(&Layer<D>, Mat<D, T>) -> Result<Mat<D, T>, BackendError>,
    ) -> Result<Mat<D, T>, BackendError> {
        let n = self.layers.len();
        let mut left = self.uses.clone();
        let mut values: Vec<Option<Mat<D, T>>> = (0..n).map(|_| None).collect();
        let input_nodes = self
            .layers
            .iter()
            .filter(|l| matches!(l, Layer::Input))
            .count();
        let mut x = Some(x);
        let mut inputs_seen = 0;
        // The tape moves with the last reader of a value; earlier readers get an
        // empty tape and their backward ops reach the value's gradient by id.
        let mut read =
            |values: &mut Vec<Option<Mat<D, T>>>, j: usize| -> Result<Mat<D, T>, BackendError> {
                left[j] -= 1;
                let value = if left[j] == 0 {
                    values[j].take()
                } else {
                    values[j].as_ref().map(|v| v.retaped())
                };
                value.ok_or_else(|| BackendError::InvalidGraph(format!("node {j} has no value")))
            };
        for (i, layer) in self.layers.iter().enumerate() {
            let input = if let Layer::Input = layer {
                inputs_seen += 1;
                if inputs_seen == input_nodes {
                    x.take()
                } else {
                    x.as_ref().map(|x| x.retaped())
                }
                .ok_or_else(|| BackendError::InvalidGraph("the input was consumed".into()))?
            } else if let [j] = self.inputs[i].as_slice() {
                read(&mut values, *j)?
            } else {
                let parts: Vec<_> = self.inputs[i]
                    .iter()
                    .map(|&j| read(&mut values, j))
                    .collect::<Result<_, _>>()?;
                if let Layer::Sum = layer {
                    sum(parts)?
                } else {
                    concat_columns(parts)?
                }
            };
            values[i] = Some(step(layer, input)?);
        }
        read(&mut values, self.output)
    }

    pub(crate) fn params(&self) -> impl Iterator<Item = &Param<D>> {
        self.layers.iter().flat_map(Layer::params)
    }

    pub(crate) fn params_mut(&mut self) -> impl Iterator<Item = &mut Param<D>> {
        self.layers.iter_mut().flat_map(Layer::params_mut)
    }
}

/// The elementwise sum of equally shaped matrices, merging their tapes.
fn sum<D: KernelDevice, T: Tape<f32, D> + Merge<T>>(
    parts: Vec<Mat<D, T>>,
) -> Result<Mat<D, T>, BackendError> {
    let mut parts = parts.into_iter();
    let first = parts
        .next()
        .ok_or_else(|| BackendError::InvalidGraph("a node sums no inputs".into()))?;
    parts.try_fold(first, |acc, part| {
        acc.try_add(part).map_err(BackendError::device)
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! Shared checks for layer tests.

    use super::super::kernels::tape::host;
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    /// A reproducible N(0, 1) matrix, row-major.
    pub(crate) fn random_matrix(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
        let rng = StdRng::seed_from_u64(seed);
        StandardNormal.sample_iter(rng).take(rows * cols).collect()
    }

    /// The IR form of a group.
    pub(crate) fn group_def(g: &Group) -> GroupDef {
        let rows = |m: &nalgebra::DMatrix<f64>| -> Vec<Vec<f64>> {
            m.row_iter().map(|r| r.iter().copied().collect()).collect()
        };
        GroupDef {
            name: g.name().into(),
            n: g.n(),
            lie: g.lie().iter().map(rows).collect(),
            discrete: g.discrete().iter().map(rows).collect(),
            tolerance: g.tolerance(),
        }
    }

    /// Builds the layer for `op` over `group`, reading `width` columns.
    pub(crate) fn build_layer(group: &Group, op: Op, width: usize, seed: u64) -> Layer<Cpu> {
        let device = Cpu::default();
        let groups = [group_def(group)];
        let mut cx = Context {
            device: &device,
            rng: StdRng::seed_from_u64(seed),
            groups: &groups,
            solvers: HashMap::new(),
        };
        let node = Node {
            id: 1,
            op,
            inputs: vec![0],
            out_dim: 0,
            params: 0,
            constraint: None,
        };
        Layer::build(&mut cx, &node, width).unwrap()
    }

    /// Asserts ‖f(ρ_in(g)x) − ρ_out(g)f(x)‖ ≤ 1e-5·‖ρ_out(g)f(x)‖ for the
    /// layer's forward pass on random inputs and group elements; `rho` gives
    /// (ρ_in(g), ρ_out(g)).
    pub(crate) fn assert_equivariant(
        layer: &Layer<Cpu>,
        group: &Group,
        rho: impl Fn(&nalgebra::DMatrix<f64>) -> (nalgebra::DMatrix<f64>, nalgebra::DMatrix<f64>),
    ) {
        assert_equivariant_map(|x| layer.forward(x).unwrap(), group, rho);
    }

    /// [`assert_equivariant`] for any map of a batch, such as one path of a layer.
    pub(crate) fn assert_equivariant_map(
        f: impl Fn(Mat<Cpu, NoneTape>) -> Mat<Cpu, NoneTape>,
        group: &Group,
        rho: impl Fn(&nalgebra::DMatrix<f64>) -> (nalgebra::DMatrix<f64>, nalgebra::DMatrix<f64>),
    ) {
        let dev = Cpu::default();
        let mut rng = StdRng::seed_from_u64(17);
        let rows = 3;
        for trial in 0..5 {
            let (rho_in, rho_out) = rho(&group.sample(&mut rng));
            let (in_dim, out_dim) = (rho_in.ncols(), rho_out.nrows());
            let x = random_matrix(rows, in_dim, 100 + trial);
            let act = |m: &nalgebra::DMatrix<f64>, v: &[f32]| -> Vec<f32> {
                let v = nalgebra::DVector::from_iterator(v.len(), v.iter().map(|&x| x as f64));
                (m * v).iter().map(|&x| x as f32).collect()
            };
            let gx: Vec<f32> = x.chunks(in_dim).flat_map(|r| act(&rho_in, r)).collect();
            let run = |x: Vec<f32>| host(&f(dev.tensor_from_vec(x, (rows, in_dim))));
            let f_gx = run(gx);
            let g_fx: Vec<f32> = run(x)
                .chunks(out_dim)
                .flat_map(|r| act(&rho_out, r))
                .collect();
            let diff: f64 = f_gx
                .iter()
                .zip(&g_fx)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum();
            let norm: f64 = g_fx.iter().map(|&b| (b as f64).powi(2)).sum();
            assert!(norm > 1e-6, "trivial output");
            let rel = (diff / norm).sqrt();
            assert!(
                rel < 1e-5,
                "trial {trial}: relative equivariance error {rel}"
            );
        }
    }

    /// Asserts |a − b| ≤ tol·(1 + |b|) entrywise.
    pub(crate) fn assert_close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "entry {i}: {x} vs {y}"
            );
        }
    }

    /// Checks the tape's gradients of L = Σ wᵢⱼ yᵢⱼ (w fixed and random) with
    /// respect to the input and every parameter against central differences.
    pub(crate) fn check_gradients(layer: &mut Layer<Cpu>, rows: usize, cols: usize) {
        check_gradients_with_step(layer, rows, cols, 1e-2);
    }

    /// [`check_gradients`] with central differences of step `h`.
    pub(crate) fn check_gradients_with_step(
        layer: &mut Layer<Cpu>,
        rows: usize,
        cols: usize,
        h: f32,
    ) {
        let dev = Cpu::default();
        let xs = random_matrix(rows, cols, 1);
        let x = dev.tensor_from_vec(xs.clone(), (rows, cols));
        let y = layer.forward(x.leaky_trace()).unwrap();
        let w = random_matrix(y.shape().0, y.shape().1, 2);
        let weights = dev.tensor_from_vec(w.clone(), *y.shape());
        let grads = (y * weights).sum().backward();
        let objective = |layer: &Layer<Cpu>, xs: &[f32]| -> f64 {
            let x = dev.tensor_from_vec(xs.to_vec(), (rows, cols));
            let y = host(&layer.forward(x).unwrap());
            y.iter().zip(&w).map(|(y, w)| *y as f64 * *w as f64).sum()
        };
        let tolerance = |analytic: f32| 3e-3 * (1.0 + analytic.abs() as f64);
        let gx = grads.get(&x).as_vec();
        for i in 0..xs.len() {
            let (mut plus, mut minus) = (xs.clone(), xs.clone());
            plus[i] += h;
            minus[i] -= h;
            let fd = (objective(layer, &plus) - objective(layer, &minus)) / (2.0 * h as f64);
            assert!(
                (fd - gx[i] as f64).abs() < tolerance(gx[i]),
                "input {i}: {} vs {fd}",
                gx[i]
            );
        }
        let count = layer.params().len();
        for k in 0..count {
            let handle = layer.params()[k].handle();
            let g = grads.get(&handle).as_vec();
            let values = layer.params()[k].values();
            for i in (0..values.len()).step_by(values.len().div_ceil(25)) {
                let mut shifted = values.clone();
                shifted[i] = values[i] + h;
                layer.params_mut()[k].set(&shifted);
                let plus = objective(layer, &xs);
                shifted[i] = values[i] - h;
                layer.params_mut()[k].set(&shifted);
                let minus = objective(layer, &xs);
                layer.params_mut()[k].set(&values);
                let fd = (plus - minus) / (2.0 * h as f64);
                let name = layer.params()[k].name().to_string();
                assert!(
                    (fd - g[i] as f64).abs() < tolerance(g[i]),
                    "{name}[{i}]: {} vs {fd}",
                    g[i]
                );
            }
        }
    }
}
