//! [`SpecBuilder`]: write a spec in Rust.
//!
//! The builder takes the checked spec's own value types ([`SymmetryKind`],
//! [`Strategy`], [`Net`], [`DataConfig`], [`TrainConfig`], [`Rep`]) and writes the
//! spec's text form, which then goes through the same parser, checker and planner
//! as a file. A spec built in code therefore means, checks and fails exactly like
//! its text twin, and [`SpecBuilder::source`] shows what was checked.

use super::{Diagnostics, Net, SymmetryKind};
use crate::group::Rep;
use crate::plan::{Activation, DataConfig, Strategy, TrainConfig};
use crate::Compiled;
use nalgebra::DMatrix;
use std::fmt::Write as _;
use std::path::Path;

/// The type of a port, as the builder writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum PortType {
    /// `R^n`.
    Real(usize),
    /// `R^[rows, cols]`: an image, or a table of bodies.
    Table(usize, usize),
    /// `classes(k)`.
    Classes(usize),
    /// `REP over GROUP`.
    Over(Rep, String),
}

/// Builds a spec from values; see the module documentation.
///
/// ```
/// use symc::group::Rep;
/// use symc::lang::{ModelBuilder, PortType, SpecBuilder, SymmetryKind};
/// use symc::plan::{DataConfig, Strategy};
/// let spec = SpecBuilder::new().group("O5", "O(5)").model(
///     ModelBuilder::new("o5")
///         .data(DataConfig::Builtin { name: "o5_synthetic".into(), params: Default::default() })
///         .input("x", PortType::Over(Rep::V.times(2), "O5".into()))
///         .output("y", PortType::Over(Rep::Scalar, "O5".into()))
///         .symmetry(SymmetryKind::Group("O5".into()), Some(Strategy::Loss { weight: 0.1, samples: 4, penalty: None })),
/// );
/// assert!(spec.source().contains("symmetry O5 => loss(weight = 0.1, samples = 4)"));
/// let compiled = spec.compile(".".as_ref()).unwrap();
/// assert_eq!(compiled.graphs[0].model, "o5");
/// ```
#[derive(Debug, Clone, Default)]
pub struct SpecBuilder {
    source: String,
}

impl SpecBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// `include "PATH"`.
    pub fn include(mut self, path: &str) -> Self {
        let _ = writeln!(self.source, "include {path:?}");
        self
    }

    /// `group NAME = EXPR`, with a group expression such as `SO(3)` or `O(3) x S(4)`.
    pub fn group(mut self, name: &str, expr: &str) -> Self {
        let _ = writeln!(self.source, "group {name} = {expr}");
        self
    }

    /// A custom group from its Lie-algebra and discrete generators.
    pub fn custom_group(
        mut self,
        name: &str,
        lie: &[DMatrix<f64>],
        discrete: &[DMatrix<f64>],
    ) -> Self {
        let block = |word: &str, ms: &[DMatrix<f64>]| {
            let ms: Vec<String> = ms.iter().map(matrix).collect();
            format!("{word} {{ {} }}", ms.join(", "))
        };
        let mut parts = Vec::new();
        if !lie.is_empty() {
            parts.push(block("lie", lie));
        }
        if !discrete.is_empty() {
            parts.push(block("discrete", discrete));
        }
        let _ = writeln!(self.source, "group {name} = {}", parts.join(" "));
        self
    }

    /// Adds a model block.
    pub fn model(mut self, model: ModelBuilder) -> Self {
        let _ = writeln!(self.source, "\nmodel {} {{", model.name);
        for line in &model.lines {
            let _ = writeln!(self.source, "  {line}");
        }
        self.source.push_str("}\n");
        self
    }

    /// The spec text built so far.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Checks and plans the spec; data paths and includes resolve against `base_dir`.
    pub fn compile(&self, base_dir: &Path) -> Result<Compiled, Diagnostics> {
        crate::compile(&self.source, "<builder>", base_dir)
    }
}

/// One model block for a [`SpecBuilder`].
#[derive(Debug, Clone)]
pub struct ModelBuilder {
    name: String,
    lines: Vec<String>,
}

impl ModelBuilder {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            lines: Vec::new(),
        }
    }

    fn line(mut self, line: String) -> Self {
        self.lines.push(line);
        self
    }

    /// `data builtin.NAME(…)` or `data file("PATH", inputs = …, outputs = …)`.
    pub fn data(self, data: DataConfig) -> Self {
        let source = match data {
            DataConfig::Builtin { name, params } => {
                let args: Vec<String> = params.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("builtin.{name}({})", args.join(", "))
            }
            DataConfig::File {
                path,
                inputs,
                outputs,
            } => {
                format!("file({path:?}, inputs = {inputs}, outputs = {outputs})")
            }
        };
        self.line(format!("data {source}"))
    }

    /// `input NAME: TYPE`.
    pub fn input(self, name: &str, ty: PortType) -> Self {
        self.line(format!("input {name}: {}", port_type(&ty)))
    }

    /// `output NAME: TYPE`.
    pub fn output(self, name: &str, ty: PortType) -> Self {
        self.line(format!("output {name}: {}", port_type(&ty)))
    }

    /// `state NAME: TYPE`.
    pub fn state(self, name: &str, ty: PortType) -> Self {
        self.line(format!("state {name}: {}", port_type(&ty)))
    }

    /// `symmetry KIND` with an optional `=> STRATEGY`.
    pub fn symmetry(self, kind: SymmetryKind, strategy: Option<Strategy>) -> Self {
        let kind = match kind {
            SymmetryKind::Time => "time".into(),
            SymmetryKind::Translation { on } => format!("translation(on {})", on.join(", ")),
            SymmetryKind::Permutation { on } => format!("permutation(on {})", on.join(", ")),
            SymmetryKind::Rotation(n) => format!("rotation({n})"),
            SymmetryKind::Reflection => "reflection".into(),
            SymmetryKind::Group(g) => g,
            SymmetryKind::Learn { generators, dim } => {
                format!("learn(generators = {generators}, dim = {dim})")
            }
        };
        match strategy {
            Some(s) => self.line(format!("symmetry {kind} => {s}")),
            None => self.line(format!("symmetry {kind}")),
        }
    }

    /// `net KIND(…)`.
    pub fn net(self, net: Net) -> Self {
        let args = match &net {
            Net::Mlp { hidden, act, init } => format!(
                "hidden = {}, act = {}, init = {init}",
                list(hidden),
                activation(*act)
            ),
            Net::Graph { hidden, act } => {
                format!("hidden = {}, act = {}", list(hidden), activation(*act))
            }
            Net::Emlp { channels, layers } => format!("channels = {channels}, layers = {layers}"),
            Net::Gcnn { channels, kernel } => {
                format!("channels = {}, kernel = {kernel}", list(channels))
            }
        };
        self.line(format!("net {}({args})", net.keyword()))
    }

    /// `train(…)` with every setting written out.
    pub fn train(self, t: TrainConfig) -> Self {
        let batch = t
            .batch
            .map(|b| format!(", batch = {b}"))
            .unwrap_or_default();
        let clip = t.clip.map(|c| format!(", clip = {c}")).unwrap_or_default();
        self.line(format!(
            "train(steps = {}, lr = {:e}{batch}, weight_decay = {}, seed = {}, schedule = {}{clip})",
            t.steps, t.lr, t.weight_decay, t.seed, t.schedule
        ))
    }

    /// `export group NAME`.
    pub fn export(self, name: &str) -> Self {
        self.line(format!("export group {name}"))
    }
}

fn port_type(ty: &PortType) -> String {
    match ty {
        PortType::Real(n) => format!("R^{n}"),
        PortType::Table(r, c) => format!("R^[{r}, {c}]"),
        PortType::Classes(k) => format!("classes({k})"),
        PortType::Over(rep, group) => format!("{rep} over {group}"),
    }
}

fn activation(a: Activation) -> &'static str {
    match a {
        Activation::Tanh => "tanh",
        Activation::Relu => "relu",
        Activation::Softplus => "softplus",
        Activation::Swish => "swish",
        Activation::Sigmoid => "sigmoid",
    }
}

fn list(xs: &[usize]) -> String {
    let xs: Vec<String> = xs.iter().map(usize::to_string).collect();
    format!("[{}]", xs.join(", "))
}

fn matrix(m: &DMatrix<f64>) -> String {
    let rows: Vec<String> = m
        .row_iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().map(|x| format!("{x}")).collect();
            format!("[{}]", cells.join(", "))
        })
        .collect();
    format!("[{}]", rows.join(", "))
}
