//! The `ModelGraph` IR: the one contract between symc's front end and its back ends.
//!
//! A graph is produced by the planner from a checked spec and consumed by the
//! backend. It holds everything a backend needs and nothing it must look up
//! elsewhere: groups are stored as their generator matrices, representations as
//! [`Rep`] values, data and training settings as plain values.
//!
//! Invariants (a validation pass checks them before a backend runs):
//! - `nodes[i].id == i`, and a node refers only to earlier nodes (`inputs[k] < id`),
//!   so evaluating nodes in order is a valid schedule;
//! - a node with several inputs reads their concatenation, except a `Sum` node,
//!   whose inputs all have its `out_dim` and are added;
//! - `output` names an existing node whose `out_dim` equals the sum of the output ports' dims;
//! - every group named by a node or a symmetry is defined in `groups`;
//! - `parameters` equals the sum of the nodes' `params`.
//!
//! The YAML text form is what `symc build` prints and what the snapshot tests pin.
//! Representations appear in it as the spec language writes them (`5*scalar+5*V`).

use crate::group::Rep;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A compiled model: inputs, layers, losses, symmetry plan, data and training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelGraph {
    /// The model's name from the spec.
    pub model: String,
    /// What the network is asked to predict.
    pub task: Task,
    /// Input ports, concatenated in this order to form the network input.
    pub inputs: Vec<Port>,
    /// Output ports, in the order the network output is split into.
    pub outputs: Vec<Port>,
    /// Every group the graph refers to, by name.
    pub groups: Vec<GroupDef>,
    /// One entry per symmetry clause of the spec: the strategy chosen and why.
    pub symmetries: Vec<SymmetryPlan>,
    /// Layers in evaluation order.
    pub nodes: Vec<Node>,
    /// The node whose value is the model output.
    pub output: usize,
    /// Terms of the training objective.
    pub losses: Vec<LossTerm>,
    /// Where the data comes from.
    pub data: DataConfig,
    /// Optimiser and loop settings.
    pub train: TrainConfig,
    /// Total trainable parameter count (sum over nodes).
    pub parameters: usize,
}

/// What the network predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Plain supervised regression y = f(x), mean squared error.
    Regression,
    /// Classification into `classes` labels, cross-entropy.
    Classification { classes: usize },
    /// Time derivative of a state (q, p) or (q, q̇) of `coordinates` coordinates each.
    Dynamics { coordinates: usize },
    /// Symmetry discovery: no predictor, the `generators` learned
    /// `dim`×`dim` generators are the result, written out as the group
    /// `export` when one is named. An input of m·`dim` components is m points
    /// moved by one transformation.
    Discover {
        generators: usize,
        dim: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        export: Option<String>,
    },
}

/// A named input or output of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub name: String,
    /// Number of real components.
    pub dim: usize,
    /// The representation this port carries, when it is declared `over` a group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rep: Option<PortRep>,
}

/// A representation of a named group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortRep {
    pub group: String,
    #[serde(with = "rep_text")]
    pub rep: Rep,
}

/// A matrix group given by its generators (EMLP's view: a group *is* its generators).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupDef {
    pub name: String,
    /// Size of the defining representation V.
    pub n: usize,
    /// Lie-algebra generators, each n×n, row-major rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lie: Vec<Vec<Vec<f64>>>,
    /// Discrete generators, each n×n invertible, row-major rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discrete: Vec<Vec<Vec<f64>>>,
    /// The basis solver's relative singular-value tolerance, for generators
    /// that are only approximately closed (`lie(tolerance = …)` in the spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

/// The plan for one symmetry clause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymmetryPlan {
    /// The symmetry as written, e.g. `time`, `translation(on positions)`, `Rot3`.
    pub symmetry: String,
    #[serde(deserialize_with = "strategy_compat")]
    pub strategy: Strategy,
    /// One line saying why this strategy was chosen.
    pub reason: String,
    /// Relative equivariance error a trained model must stay under for `symc check`
    /// to pass (architectural strategies only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

/// How a symmetry is honoured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Architecture,
    Hamiltonian,
    /// `lagrangian(damping = d, init = lnn | uniform)`: the head's L is
    /// L_net + d·½‖q̇‖², which adds d·I to the learned mass matrix (a
    /// Lagrangian still, so energy is still conserved), and its weights start
    /// from `init`.
    Lagrangian {
        #[serde(default, skip_serializing_if = "is_zero")]
        damping: f64,
        #[serde(default, skip_serializing_if = "HeadInit::is_lnn")]
        init: HeadInit,
    },
    Graph,
    GroupConv,
    Loss {
        weight: f64,
        samples: usize,
        /// The penalty the spec asked for; `None` lets the planner choose
        /// (sampled elements for groups acting orthogonally, the Lie derivative otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        penalty: Option<Penalty>,
    },
    Soft {
        weight: f64,
    },
    Augment {
        samples: usize,
    },
    Operator,
    Latent,
    Invariance,
    None,
}

/// How a dense layer's weights start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearInit {
    /// Weights and bias uniform in ±1/√fan_in (PyTorch's default).
    #[default]
    Uniform,
    /// Weights normal with std √(2/(fan_in + fan_out)) (Glorot and Bengio
    /// 2010), bias 0: what JAX and objax layers use, and so EMLP's MLP baseline.
    Xavier,
}

impl LinearInit {
    fn is_uniform(&self) -> bool {
        *self == LinearInit::Uniform
    }
}

impl std::fmt::Display for LinearInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinearInit::Uniform => "uniform",
            LinearInit::Xavier => "xavier",
        })
    }
}

/// How a Lagrangian head's weights start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadInit {
    /// The Lagrangian-network paper's scheme (Cranmer et al. 2020): biases 0,
    /// weights normal with std c/√n, c = 2.2 for the first layer, 0.58·i for
    /// the i-th hidden-to-hidden layer and n for the last.
    #[default]
    Lnn,
    /// Uniform in ±1/√fan_in (PyTorch's default): a small L at the start, so
    /// that with damping the mass matrix starts near d·I.
    Uniform,
}

impl HeadInit {
    fn is_lnn(&self) -> bool {
        *self == HeadInit::Lnn
    }
}

impl std::fmt::Display for HeadInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HeadInit::Lnn => "lnn",
            HeadInit::Uniform => "uniform",
        })
    }
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Reads a strategy; `strategy: lagrangian`, as `graph.yaml` files said before
/// the Lagrangian head took arguments, reads as `lagrangian` with its defaults.
fn strategy_compat<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Strategy, D::Error> {
    let value = serde_yaml::Value::deserialize(d)?;
    if value.as_str() == Some("lagrangian") {
        return Ok(Strategy::Lagrangian {
            damping: 0.0,
            init: HeadInit::Lnn,
        });
    }
    Strategy::deserialize(value).map_err(serde::de::Error::custom)
}

/// The spec language's own text.
///
/// ```
/// use symc::plan::{HeadInit, Penalty, Strategy};
/// let l = Strategy::Lagrangian { damping: 1.0, init: HeadInit::Uniform };
/// assert_eq!(l.to_string(), "lagrangian(damping = 1, init = uniform)");
/// let s = Strategy::Loss { weight: 0.1, samples: 8, penalty: Some(Penalty::Lie) };
/// assert_eq!(s.to_string(), "loss(weight = 0.1, samples = 8, penalty = lie)");
/// assert_eq!(Strategy::Soft { weight: 1.0 }.to_string(), "soft(weight = 1)");
/// ```
impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Strategy::Loss {
                weight,
                samples,
                penalty,
            } => {
                write!(f, "loss(weight = {weight}, samples = {samples}")?;
                if let Some(p) = penalty {
                    write!(f, ", penalty = {}", p.keyword())?;
                }
                f.write_str(")")
            }
            Strategy::Soft { weight } => write!(f, "soft(weight = {weight})"),
            Strategy::Augment { samples } => write!(f, "augment(samples = {samples})"),
            Strategy::Architecture => f.write_str("architecture"),
            Strategy::Hamiltonian => f.write_str("hamiltonian"),
            Strategy::Lagrangian { damping, init } => {
                let mut args = Vec::new();
                if *damping != 0.0 {
                    args.push(format!("damping = {damping}"));
                }
                if !init.is_lnn() {
                    args.push(format!("init = {init}"));
                }
                if args.is_empty() {
                    f.write_str("lagrangian")
                } else {
                    write!(f, "lagrangian({})", args.join(", "))
                }
            }
            Strategy::Graph => f.write_str("graph"),
            Strategy::GroupConv => f.write_str("group_conv"),
            Strategy::Operator => f.write_str("operator"),
            Strategy::Latent => f.write_str("latent"),
            Strategy::Invariance => f.write_str("invariance"),
            Strategy::None => f.write_str("none"),
        }
    }
}

/// Which regulariser `=> loss(penalty = …)` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Penalty {
    /// The equivariance error at sampled group elements.
    Sampled,
    /// The equivariance error along each Lie generator, to first order.
    Lie,
    /// The distance between the first layer's weight rows and their images under the group.
    Orbit,
}

impl Penalty {
    /// The word the spec language writes for this penalty.
    ///
    /// ```
    /// assert_eq!(symc::plan::Penalty::Orbit.keyword(), "orbit");
    /// ```
    pub fn keyword(self) -> &'static str {
        match self {
            Penalty::Sampled => "sampled",
            Penalty::Lie => "lie",
            Penalty::Orbit => "orbit",
        }
    }
}

/// One layer of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub id: usize,
    pub op: Op,
    /// Earlier nodes whose outputs this node reads (concatenated when several,
    /// added for `Sum`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<usize>,
    /// Width of this node's output.
    pub out_dim: usize,
    /// Trainable parameters this node owns.
    pub params: usize,
    /// The symmetry constraint this node carries by construction, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
}

impl Node {
    /// A node that carries no symmetry constraint by construction.
    pub fn new(id: usize, op: Op, inputs: Vec<usize>, out_dim: usize, params: usize) -> Node {
        Node {
            id,
            op,
            inputs,
            out_dim,
            params,
            constraint: None,
        }
    }
}

/// Pointwise nonlinearities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Tanh,
    Relu,
    Softplus,
    Swish,
    Sigmoid,
}

/// Layer kinds. Structured models (Hamiltonian and Lagrangian heads, graph
/// networks, group convolutions) are single nodes whose fields describe the
/// whole block, so a backend can fuse them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// The concatenation of all input ports.
    Input,
    /// Dense affine map.
    Linear {
        inp: usize,
        out: usize,
        bias: bool,
        #[serde(default, skip_serializing_if = "LinearInit::is_uniform")]
        init: LinearInit,
    },
    /// Pointwise nonlinearity.
    Activation { kind: Activation },
    /// W = Σ cᵢ Bᵢ over the equivariant basis between two representations, plus a
    /// bias from the invariant subspace of the output.
    EquivariantLinear {
        group: String,
        #[serde(with = "rep_text")]
        rep_in: Rep,
        #[serde(with = "rep_text")]
        rep_out: Rep,
        /// Number of basis elements (= weight parameters).
        basis: usize,
        /// Number of invariant bias directions (= bias parameters).
        bias: usize,
    },
    /// EMLP's gated nonlinearity: `rep` is the representation without gates; the
    /// input carries one extra scalar gate per non-scalar summand after it.
    Gated {
        group: String,
        #[serde(with = "rep_text")]
        rep: Rep,
        gates: usize,
    },
    /// `h ↦ h + B(h, h)` with B an equivariant bilinear map `rep × rep → rep`:
    /// each summand's copies are mixed into at most `channels` bilinear
    /// channels whose products are mapped back into `rep`; the terms and the
    /// parameter count are [`BilinearPlan`](super::BilinearPlan)'s.
    Bilinear {
        group: String,
        #[serde(with = "rep_text")]
        rep: Rep,
        channels: usize,
    },
    /// Nonlinearity on the norm of each non-scalar summand.
    NormNonlinearity {
        group: String,
        #[serde(with = "rep_text")]
        rep: Rep,
    },
    /// Hamiltonian head: an MLP H(q, p) → scalar whose symplectic gradient
    /// (∂H/∂p, −∂H/∂q) is the output.
    Hamiltonian {
        coordinates: usize,
        hidden: Vec<usize>,
        act: Activation,
    },
    /// Lagrangian head: an MLP L(q, q̇) → scalar; the output is (q̇, q̈) from the
    /// Euler–Lagrange equations.
    Lagrangian {
        coordinates: usize,
        hidden: Vec<usize>,
        act: Activation,
        /// Added to the learned mass matrix: L is L_net + damping·½‖q̇‖².
        #[serde(default, skip_serializing_if = "is_zero")]
        damping: f64,
        #[serde(default, skip_serializing_if = "HeadInit::is_lnn")]
        init: HeadInit,
    },
    /// Hamiltonian graph network over `bodies` bodies in `dims` dimensions:
    /// H(q, p) = Σᵢ φₙ(pᵢ) + Σ_{i≠j} φₑ(qⱼ − qᵢ, ‖qⱼ − qᵢ‖), with a node MLP
    /// `dims → hidden… → 1` and an edge MLP `dims + 1 → hidden… → 1` shared by
    /// all bodies and ordered pairs; the output is the symplectic gradient
    /// (∂H/∂p, −∂H/∂q). The state is every position (`bodies × dims`,
    /// row-major), then every momentum.
    HamiltonianGraph {
        bodies: usize,
        dims: usize,
        hidden: Vec<usize>,
        act: Activation,
    },
    /// Message-passing block over `bodies` bodies of `dims`-dimensional positions.
    GraphNetwork {
        bodies: usize,
        dims: usize,
        features: usize,
        hidden: Vec<usize>,
        act: Activation,
    },
    /// Group convolution network on images (`group` is `p4` or `p4m`).
    GroupConv {
        group: String,
        channels: Vec<usize>,
        kernel: usize,
        height: usize,
        width: usize,
        invariant: bool,
    },
    /// The elementwise sum of its inputs, which all have `out_dim` columns
    /// (the residual pathway of a soft-equivariant layer).
    Sum,
    /// Plain convolution network on images.
    Conv {
        channels: Vec<usize>,
        kernel: usize,
        height: usize,
        width: usize,
    },
}

/// One term of the training objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossTerm {
    pub kind: LossKind,
    pub weight: f64,
}

/// Loss kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Mean squared error on the outputs (or derivatives for dynamics).
    Mse,
    /// Cross-entropy on class logits.
    CrossEntropy,
    /// ‖f(ρ_in(g)x) − ρ_out(g)f(x)‖² over sampled group elements.
    SampledEquivariance { group: String, samples: usize },
    /// ‖dρ_out(A)f(x) − J_f(x)dρ_in(A)x‖² for each Lie generator A.
    LieDerivative { group: String },
    /// Chamfer distance between the rows {w} of the first `Linear` layer and
    /// their images {w ρ_in(g)} under the group's generators.
    WeightOrbit { group: String },
    /// Residual-pathway prior: `weight`·‖θ‖² over the unconstrained `Linear`
    /// nodes plus `equivariant`·‖θ‖² over the `EquivariantLinear` nodes.
    SoftPrior { group: String, equivariant: f64 },
    /// mean((∇H(x)·A x)²) for each Lie generator A of a group acting on phase
    /// space: the Poisson bracket of a Hamiltonian head's H with the group's
    /// momenta, pushed to zero so that H is invariant and the momenta conserved.
    PoissonBracket { group: String },
}

/// Where training data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataConfig {
    /// A built-in generator, e.g. `o5_synthetic`, `mass_spring`, with numeric parameters.
    Builtin {
        name: String,
        params: BTreeMap<String, f64>,
    },
    /// A CSV file (path as written in the spec, resolved against the spec's folder).
    File {
        path: String,
        inputs: usize,
        outputs: usize,
    },
}

/// Optimiser and loop settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub steps: usize,
    pub lr: f64,
    /// Minibatch size; `None` means full batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    pub weight_decay: f64,
    pub seed: u64,
    /// Learning-rate schedule: `constant` or `cosine`.
    pub schedule: String,
    /// Largest norm of the whole gradient per step; `None` means no clipping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<f64>,
}

/// Representations serialise as their spec-language text, which reads better in
/// YAML than a tagged tree and parses back to the same value.
mod rep_text {
    use crate::group::Rep;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(rep: &Rep, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(rep)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Rep, D::Error> {
        let text = String::deserialize(d)?;
        crate::lang::parse_rep_expr(&text)
            .map_err(|e| D::Error::custom(format!("invalid representation `{text}`: {e}")))
    }
}
