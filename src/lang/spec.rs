//! The checked spec: every name resolved, every dimension known, every value typed.
//!
//! The checker speaks in the IR's plain value types ([`DataConfig`], [`TrainConfig`],
//! [`Strategy`], [`Activation`], [`Task`]) so that the planner copies them rather
//! than translating a second vocabulary.

use super::{Diagnostic, SourceMap, Span};
use crate::group::{Group, Rep};
use crate::plan::{Activation, DataConfig, LinearInit, Strategy, Task, TrainConfig};

/// A checked spec file: its groups (declared and included) and its models.
#[derive(Debug, Clone)]
pub struct Spec {
    pub groups: Vec<NamedGroup>,
    pub models: Vec<Model>,
    /// The spec and every file it includes.
    pub sources: SourceMap,
    /// Warnings found while checking (e.g. a Lie algebra that does not close).
    pub warnings: Vec<Diagnostic>,
}

impl Spec {
    /// The declared group called `name`.
    pub fn group(&self, name: &str) -> Option<&NamedGroup> {
        self.groups.iter().find(|g| g.name == name)
    }
}

/// A `group NAME = …` declaration, resolved.
#[derive(Debug, Clone)]
pub struct NamedGroup {
    pub name: String,
    pub group: Group,
    pub span: Span,
}

/// One checked `model` block.
#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub span: Span,
    pub task: Task,
    /// Network inputs (for dynamics: the state).
    pub inputs: Vec<Port>,
    /// Network outputs (for dynamics: the state's time derivative).
    pub outputs: Vec<Port>,
    pub symmetries: Vec<Symmetry>,
    /// The `net` statement; `None` lets the planner pick a default.
    pub net: Option<Net>,
    pub data: DataConfig,
    pub train: TrainConfig,
    /// `export group NAME`: the name discovered generators are written out under.
    pub export: Option<String>,
}

/// A checked input, output or state port.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: String,
    /// `[n]` for `R^n`, `[h, w]` for an image, `[k]` for `classes(k)`.
    pub shape: Vec<usize>,
    /// The group and representation, for ports declared `over` a group.
    pub rep: Option<(String, Rep)>,
    pub span: Span,
}

impl Port {
    /// Number of real components.
    pub fn dim(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A checked symmetry clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Symmetry {
    /// The clause as written, whitespace collapsed: `translation(on x)`.
    pub text: String,
    pub kind: SymmetryKind,
    /// The strategy after `=>`, or the kind's default ([`SymmetryKind::default_strategy`]).
    pub strategy: Strategy,
    /// Whether the spec named the strategy.
    pub explicit: bool,
    pub span: Span,
}

/// What a symmetry clause names.
#[derive(Debug, Clone, PartialEq)]
pub enum SymmetryKind {
    /// Time translation: energy is conserved.
    Time,
    /// Shifting the positions in the named ports by a common vector.
    Translation { on: Vec<String> },
    /// Relabelling the bodies (rows) of the named ports.
    Permutation { on: Vec<String> },
    /// Rotating an image by multiples of 2π/n.
    Rotation(usize),
    /// Mirroring an image.
    Reflection,
    /// A declared group acting through the ports' representations.
    Group(String),
    /// Learn `generators` Lie-algebra generators of `dim`×`dim` matrices from
    /// the data; a sample of more than `dim` components holds several points,
    /// all moved by the same transformation.
    Learn { generators: usize, dim: usize },
}

impl SymmetryKind {
    /// The strategy used when the spec names none: the architectural one where a
    /// symmetry has one, because it holds exactly rather than approximately.
    ///
    /// | symmetry | default |
    /// | --- | --- |
    /// | `time` | `hamiltonian` |
    /// | `translation`, `permutation` | `graph` |
    /// | `rotation(n)`, `reflection` | `group_conv` |
    /// | a declared group | `architecture` (EMLP) |
    /// | `learn(...)` | `operator` |
    pub fn default_strategy(&self) -> Strategy {
        match self {
            SymmetryKind::Time => Strategy::Hamiltonian,
            SymmetryKind::Translation { .. } | SymmetryKind::Permutation { .. } => Strategy::Graph,
            SymmetryKind::Rotation(_) | SymmetryKind::Reflection => Strategy::GroupConv,
            SymmetryKind::Group(_) => Strategy::Architecture,
            SymmetryKind::Learn { .. } => Strategy::Operator,
        }
    }

    /// The strategies that can honour this kind of symmetry.
    pub fn strategies(&self) -> &'static [&'static str] {
        match self {
            SymmetryKind::Time => &["hamiltonian", "lagrangian", "none"],
            SymmetryKind::Translation { .. } | SymmetryKind::Permutation { .. } => {
                &["graph", "augment", "none"]
            }
            SymmetryKind::Rotation(_) | SymmetryKind::Reflection => {
                &["group_conv", "augment", "none"]
            }
            SymmetryKind::Group(_) => &["architecture", "loss", "soft", "augment", "none"],
            SymmetryKind::Learn { .. } => &["operator", "latent", "invariance"],
        }
    }
}

/// A checked `net` statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Net {
    /// Dense layers with one activation, their weights drawn as `init` says.
    Mlp {
        hidden: Vec<usize>,
        act: Activation,
        init: LinearInit,
    },
    /// Equivariant MLP with `channels` hidden dimensions per layer.
    Emlp { channels: usize, layers: usize },
    /// Message passing; `hidden` sizes both the edge and the node networks.
    Graph { hidden: Vec<usize>, act: Activation },
    /// Group convolutions with `channels[i]` channels in layer `i`.
    Gcnn { channels: Vec<usize>, kernel: usize },
}

impl Net {
    /// The net of kind `keyword` with every setting at its default; the checker
    /// fills missing keys from it and the planner uses it when `net` is absent.
    ///
    /// | kind | defaults | from |
    /// | --- | --- | --- |
    /// | `mlp` | `hidden = [200, 200], act = tanh, init = uniform` | the HNN paper's baseline |
    /// | `emlp` | `channels = 384, layers = 3` | the EMLP paper |
    /// | `graph` | `hidden = [128, 128], act = swish` | two layers per edge and node network |
    /// | `gcnn` | `channels = [16, 32], kernel = 3` | two 3×3 layers, enough for 8×8 images |
    ///
    /// ```
    /// use symc::lang::Net;
    /// assert_eq!(Net::defaults("emlp"), Some(Net::Emlp { channels: 384, layers: 3 }));
    /// assert_eq!(Net::defaults("transformer"), None);
    /// ```
    pub fn defaults(keyword: &str) -> Option<Net> {
        Some(match keyword {
            "mlp" => Net::Mlp {
                hidden: vec![200, 200],
                act: Activation::Tanh,
                init: LinearInit::Uniform,
            },
            "emlp" => Net::Emlp {
                channels: 384,
                layers: 3,
            },
            "graph" => Net::Graph {
                hidden: vec![128, 128],
                act: Activation::Swish,
            },
            "gcnn" => Net::Gcnn {
                channels: vec![16, 32],
                kernel: 3,
            },
            _ => return None,
        })
    }

    /// The word that names this kind in the language.
    pub fn keyword(&self) -> &'static str {
        match self {
            Net::Mlp { .. } => "mlp",
            Net::Emlp { .. } => "emlp",
            Net::Graph { .. } => "graph",
            Net::Gcnn { .. } => "gcnn",
        }
    }
}
