//! `symc check`: the symmetry certificate of a trained model.

use super::train::spec_dir;
use super::CliError;
use crate::backend::DeviceKind;
use crate::data;
use crate::plan::Strategy;
use crate::train::{self, EquivarianceOptions, Measurement, Predictor, RunDir};
use anyhow::{anyhow, Context};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// Re-measure a trained model's equivariance error with fresh group elements.
///
/// Exits with status 1 when a symmetry built into the architecture exceeds its
/// tolerance.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  symc check specs/o5_emlp.sym --run runs/o5-seed1")]
pub struct CheckArgs {
    /// The spec file the run was trained from (its data paths resolve against its folder).
    pub spec: PathBuf,
    /// The run folder `symc train` wrote.
    #[arg(long)]
    pub run: PathBuf,
    /// Group elements sampled per symmetry.
    #[arg(long, default_value_t = 100)]
    pub samples: usize,
    /// Test points the error is averaged over.
    #[arg(long, default_value_t = 500)]
    pub points: usize,
    /// Seed of the group elements [default: drawn from the clock, and printed].
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, default_value_t = DeviceKind::Cpu, value_name = "cpu|cuda|cuda:N", help = super::train::DEVICE_HELP)]
    pub device: DeviceKind,
}

/// Loads the run, measures every group symmetry on the test set and prints a table.
pub fn run(args: CheckArgs) -> Result<(), CliError> {
    let (_, graphs) = super::load_spec(&args.spec)?;
    let folder = RunDir::open(&args.run).map_err(anyhow::Error::from)?;
    let graph = folder.read_graph().map_err(anyhow::Error::from)?;
    if !graphs.iter().any(|g| g.model == graph.model) {
        return Err(anyhow!(
            "`{}` holds a run of model `{}`, which `{}` does not define",
            args.run.display(),
            graph.model,
            args.spec.display()
        )
        .into());
    }
    let (model, standardizer) = folder
        .read_model_on(&graph, args.device)
        .map_err(anyhow::Error::from)?;
    let splits = data::load(&graph.data, spec_dir(&args.spec))
        .with_context(|| format!("cannot load the data of model `{}`", graph.model))?;
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let options = EquivarianceOptions {
        samples: args.samples,
        points: args.points,
        seed,
    };
    let predictor = Predictor {
        model: &model,
        standardizer: &standardizer,
    };
    let predict = |x: &[f32], rows| predictor.predict(x, rows);
    let measured = train::measure_equivariance(&graph, &predict, &splits.test, &options)
        .map_err(anyhow::Error::from)?;
    println!(
        "model `{}`: {} test points x {} group elements (seed {seed})",
        graph.model,
        options.points.min(splits.test.rows),
        options.samples
    );
    print!("{}", table(&measured));
    if let Some((evaluation, _)) =
        train::dynamics::assess(&graph, &predictor).map_err(anyhow::Error::from)?
    {
        print!("{}", super::train::dynamics_table(&evaluation.report));
    }
    let failed: Vec<&str> = measured
        .iter()
        .filter(|m| !m.passes())
        .map(|m| m.symmetry.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(
            "equivariance error above tolerance for {}",
            failed.join(", ")
        )
        .into())
    }
}

fn strategy_name(strategy: &Strategy) -> &'static str {
    match strategy {
        Strategy::Architecture => "architecture",
        Strategy::Hamiltonian => "hamiltonian",
        Strategy::Lagrangian { .. } => "lagrangian",
        Strategy::Graph => "graph",
        Strategy::GroupConv => "group_conv",
        Strategy::Loss { .. } => "loss",
        Strategy::Soft { .. } => "soft",
        Strategy::Augment { .. } => "augment",
        Strategy::Operator => "operator",
        Strategy::Latent => "latent",
        Strategy::Invariance => "invariance",
        Strategy::None => "none",
    }
}

/// One row per symmetry: its strategy, error, tolerance and verdict.
fn table(measured: &[Measurement]) -> String {
    let width = measured
        .iter()
        .map(|m| m.symmetry.len())
        .chain([8])
        .max()
        .unwrap_or(8);
    let mut out = format!(
        "{:<width$}  {:<12}  {:>9}  {:>9}  result\n",
        "symmetry", "strategy", "error", "tolerance"
    );
    for m in measured {
        let tolerance = m.tolerance.map_or("-".to_string(), |t| format!("{t:.1e}"));
        let verdict = match (m.tolerance, m.passes()) {
            (None, _) => "measured",
            (Some(_), true) => "pass",
            (Some(_), false) => "FAIL",
        };
        out += &format!(
            "{:<width$}  {:<12}  {:>9.2e}  {:>9}  {verdict}\n",
            m.symmetry,
            strategy_name(&m.strategy),
            m.error,
            tolerance
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_each_symmetry_its_verdict() {
        let row = |symmetry: &str, strategy, tolerance, error| Measurement {
            symmetry: symmetry.into(),
            strategy,
            tolerance,
            error,
        };
        let text = table(&[
            row("O5", Strategy::Architecture, Some(1e-5), 2.5e-7),
            row("Lorentz", Strategy::Architecture, Some(1e-3), 0.2),
            row("SO3", Strategy::None, None, 0.31),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "symmetry  strategy          error  tolerance  result"
        );
        assert_eq!(
            lines[1],
            "O5        architecture    2.50e-7     1.0e-5  pass"
        );
        assert_eq!(
            lines[2],
            "Lorentz   architecture    2.00e-1     1.0e-3  FAIL"
        );
        assert_eq!(
            lines[3],
            "SO3       none            3.10e-1          -  measured"
        );
    }
}
