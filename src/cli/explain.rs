//! `symc explain`: what the compiler chose for a spec, and why.

use super::{load_spec, CliError};
use crate::plan::{DataConfig, LossKind, ModelGraph, Op, Task};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Summarise the compiled model: strategy per symmetry and why, layers, parameters.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  symc explain specs/mass_spring_hnn.sym")]
pub struct ExplainArgs {
    /// The spec file (`.sym`).
    pub spec: PathBuf,
}

pub fn run(args: ExplainArgs) -> Result<(), CliError> {
    let (_, graphs) = load_spec(&args.spec)?;
    for g in &graphs {
        print!("{}", summary(g));
    }
    Ok(())
}

/// A short human summary of one graph.
fn summary(g: &ModelGraph) -> String {
    let mut s = String::new();
    let task = match g.task {
        Task::Regression => "regression".to_string(),
        Task::Classification { classes } => format!("classification into {classes} classes"),
        Task::Dynamics { coordinates } => format!("dynamics of {coordinates} coordinates"),
        Task::Discover { .. } => "symmetry discovery".to_string(),
    };
    let dims = |ports: &[crate::plan::Port]| -> usize { ports.iter().map(|p| p.dim).sum() };
    let _ = writeln!(
        s,
        "model {}: {task}, {} → {}",
        g.model,
        dims(&g.inputs),
        dims(&g.outputs)
    );
    if g.symmetries.is_empty() {
        let _ = writeln!(s, "  no symmetry: a plain network");
    }
    for sym in &g.symmetries {
        let _ = writeln!(s, "  symmetry {} => {}", sym.symmetry, sym.strategy);
        let _ = writeln!(s, "    why: {}", sym.reason);
    }
    let _ = writeln!(s, "  layers:");
    for n in &g.nodes {
        let constraint = n
            .constraint
            .as_ref()
            .map(|c| format!("  [{c}]"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "    {:>2} {:<48} → {:>5}  {:>8} params{constraint}",
            n.id,
            op_text(&n.op),
            n.out_dim,
            n.params
        );
    }
    let losses: Vec<String> = g
        .losses
        .iter()
        .map(|l| format!("{} × {}", loss_name(&l.kind), l.weight))
        .collect();
    let _ = writeln!(s, "  loss: {}", losses.join(" + "));
    let data = match &g.data {
        DataConfig::Builtin { name, .. } => format!("built-in `{name}`"),
        DataConfig::File {
            path,
            inputs,
            outputs,
        } => format!("`{path}` ({inputs} inputs, {outputs} outputs)"),
    };
    let batch = g
        .train
        .batch
        .map_or("full batch".to_string(), |b| format!("batch {b}"));
    let _ = writeln!(
        s,
        "  data: {data}; train: {} steps, lr {:e}, {batch}",
        g.train.steps, g.train.lr
    );
    let _ = writeln!(s, "  parameters: {}", g.parameters);
    s
}

fn loss_name(k: &LossKind) -> String {
    match k {
        LossKind::Mse => "mse".into(),
        LossKind::CrossEntropy => "cross-entropy".into(),
        LossKind::SampledEquivariance { group, samples } => {
            format!("sampled equivariance over `{group}` ({samples} samples)")
        }
        LossKind::LieDerivative { group } => {
            format!("Lie derivative along every generator of `{group}`")
        }
        LossKind::WeightOrbit { group } => {
            format!("weight orbit of the first layer under `{group}`'s generators")
        }
        LossKind::SoftPrior { group, equivariant } => format!(
            "residual-pathway prior towards `{group}` (L2 on the unconstrained path; \
             {equivariant} × L2 on the `{group}`-equivariant path)"
        ),
        LossKind::PoissonBracket { group } => {
            format!("Poisson bracket of H with the momenta of `{group}`")
        }
    }
}

fn op_text(op: &Op) -> String {
    match op {
        Op::Input => "input".into(),
        Op::Linear { inp, out, .. } => format!("linear {inp} → {out}"),
        Op::Activation { kind } => format!("{kind:?}").to_lowercase(),
        Op::EquivariantLinear {
            rep_in,
            rep_out,
            basis,
            bias,
            ..
        } => {
            format!("equivariant linear {rep_in} → {rep_out} (basis {basis}, bias {bias})")
        }
        Op::Gated { gates, .. } => format!("gated nonlinearity ({gates} gates)"),
        Op::Bilinear { channels, .. } => {
            format!("bilinear products (≤ {channels} channels per summand)")
        }
        Op::NormNonlinearity { .. } => "norm nonlinearity".into(),
        Op::Hamiltonian { hidden, .. } => format!("Hamiltonian head, hidden {hidden:?}"),
        Op::Lagrangian { hidden, .. } => format!("Lagrangian head, hidden {hidden:?}"),
        Op::HamiltonianGraph { bodies, hidden, .. } => {
            format!("Hamiltonian graph network over {bodies} bodies, hidden {hidden:?}")
        }
        Op::GraphNetwork { bodies, hidden, .. } => {
            format!("graph network over {bodies} bodies, hidden {hidden:?}")
        }
        Op::GroupConv {
            group,
            channels,
            kernel,
            ..
        } => format!("{group} convolutions {channels:?}, {kernel}×{kernel}"),
        Op::Conv {
            channels, kernel, ..
        } => format!("convolutions {channels:?}, {kernel}×{kernel}"),
        Op::Sum => "sum (residual pathway)".into(),
    }
}
