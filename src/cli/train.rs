//! `symc train`: compile a spec, train one of its models, leave a run folder.

use super::CliError;
use crate::backend::DeviceKind;
use crate::data;
use crate::plan::ModelGraph;
use crate::train::{
    self, dynamics, EquivarianceOptions, Progress, Record, Report, RunDir, TrainError,
};
use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Group elements and test points behind the report's `equivariance_error`.
const REPORT_SAMPLES: usize = 16;
const REPORT_POINTS: usize = 500;

/// Train a model of a spec and write its run folder.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  symc train specs/o5_emlp.sym --seed 1 --out runs/o5-seed1")]
pub struct TrainArgs {
    /// The spec file.
    pub spec: PathBuf,
    /// Run folder to write [default: runs/<model>-<UTC time>].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Seed of the initial parameters and the minibatch order [default: the spec's].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Optimiser steps [default: the spec's].
    #[arg(long)]
    pub steps: Option<usize>,
    /// The model to train, when the spec defines several.
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, default_value_t = DeviceKind::Cpu, value_name = "cpu|cuda|cuda:N", help = DEVICE_HELP)]
    pub device: DeviceKind,
}

/// The help of `--device`, shared by the commands that take it.
pub(super) const DEVICE_HELP: &str = "Where the model runs: `cpu`, or an NVIDIA GPU (`cuda` is `cuda:0`). \
    CUDA needs a symc built with `--features cuda` (see docs/cuda.md); group and plain convolutions, \
    graph networks, physics heads and regularising loss terms run on the CPU only";

/// Trains the chosen model and writes `graph.yaml`, `weights.safetensors`,
/// `history.csv`, `loss.png` and `report.yaml` to the run folder.
pub fn run(args: TrainArgs) -> Result<(), CliError> {
    // Before anything is written: a missing GPU should not leave a run folder behind.
    args.device.check().map_err(anyhow::Error::from)?;
    let (_, graphs) = super::load_spec(&args.spec)?;
    let mut graph = pick_model(graphs, args.model.as_deref())?;
    graph.train.seed = args.seed.unwrap_or(graph.train.seed);
    graph.train.steps = args.steps.unwrap_or(graph.train.steps);
    let splits = data::load(&graph.data, spec_dir(&args.spec))
        .with_context(|| format!("cannot load the data of model `{}`", graph.model))?;
    let out = args.out.unwrap_or_else(|| default_folder(&graph.model));
    let folder = RunDir::create(&out).map_err(anyhow::Error::from)?;
    folder.write_graph(&graph).map_err(anyhow::Error::from)?;

    let mut progress = Reporter::new(graph.train.steps);
    let result = train::train_on(&graph, &splits, args.device, &mut progress);
    progress.finish();
    let (outcome, failure) = match result {
        Ok(outcome) => (outcome, None),
        Err(TrainError::Diverged {
            step,
            cause,
            partial,
        }) => {
            let message = format!(
                "training diverged at step {step}: {cause}; `{}` holds the checkpoint of step {}",
                out.display(),
                partial.best_step
            );
            (*partial, Some(message))
        }
        Err(e) => return Err(anyhow::Error::from(e).into()),
    };
    folder
        .write_outcome(&graph, &outcome)
        .map_err(anyhow::Error::from)?;
    let options = EquivarianceOptions {
        samples: REPORT_SAMPLES,
        points: REPORT_POINTS,
        seed: graph.train.seed,
    };
    let predict = |x: &[f32], rows| outcome.predictor().predict(x, rows);
    let measured = train::measure_equivariance(&graph, &predict, &splits.test, &options)
        .map_err(anyhow::Error::from)?;
    let mut report = Report::new(&graph, &outcome, &splits, (&options, &measured))
        .map_err(anyhow::Error::from)?;
    if let Some((evaluation, system)) =
        dynamics::assess(&graph, &outcome.predictor()).map_err(anyhow::Error::from)?
    {
        folder
            .write_rollouts(&graph, &evaluation, system.as_ref())
            .map_err(anyhow::Error::from)?;
        report.dynamics = Some(evaluation.report);
    }
    folder.write_report(&report).map_err(anyhow::Error::from)?;
    print_summary(&report, &out);
    match failure {
        Some(message) => Err(anyhow!(message).into()),
        None => Ok(()),
    }
}

/// The folder a spec's relative data paths resolve against.
pub(super) fn spec_dir(spec: &Path) -> &Path {
    spec.parent().unwrap_or(Path::new(""))
}

/// The graph named `wanted`, or the only one.
pub(super) fn pick_model(
    mut graphs: Vec<ModelGraph>,
    wanted: Option<&str>,
) -> Result<ModelGraph, CliError> {
    let position = match wanted {
        Some(name) => graphs.iter().position(|g| g.model == name),
        None if graphs.len() == 1 => Some(0),
        None => None,
    };
    if let Some(i) = position {
        return Ok(graphs.swap_remove(i));
    }
    let names: Vec<String> = graphs.iter().map(|g| format!("`{}`", g.model)).collect();
    let names = names.join(", ");
    Err(match wanted {
        _ if graphs.is_empty() => anyhow!("the spec defines no model"),
        Some(name) => anyhow!("the spec has no model `{name}`; it defines {names}"),
        None => anyhow!("the spec defines several models ({names}); choose one with --model"),
    }
    .into())
}

/// `runs/<model>-<YYYYmmdd-HHMMSS>` in UTC.
fn default_folder(model: &str) -> PathBuf {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, time) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_date(days as i64);
    PathBuf::from("runs").join(format!(
        "{model}-{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        time / 3600,
        time / 60 % 60,
        time % 60
    ))
}

/// The proleptic Gregorian date of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

fn print_summary(report: &Report, out: &Path) {
    println!(
        "trained `{}`: {} steps in {:.1} s ({:.1} steps/s), kept step {}, {} parameters",
        report.model,
        report.steps,
        report.seconds,
        report.steps_per_second,
        report.best_step,
        report.parameters
    );
    let figures = [
        ("train MSE", report.train_mse),
        ("test MSE", report.test_mse),
        ("train accuracy", report.train_accuracy),
        ("test accuracy", report.test_accuracy),
    ];
    for (name, value) in figures.iter().filter_map(|(n, v)| v.map(|v| (n, v))) {
        println!("  {name:<16} {value:.4e}");
    }
    for (symmetry, error) in &report.equivariance_error {
        println!("  equivariance error of {symmetry}: {error:.3e}");
    }
    if let Some(metrics) = &report.dynamics {
        print!("{}", dynamics_table(metrics));
    }
    println!("run folder: {}", out.display());
}

/// The rollout metrics of a dynamics model, one per line.
pub(super) fn dynamics_table(metrics: &dynamics::DynamicsReport) -> String {
    let mut out = String::from("  rollouts from the test starts:\n");
    for (name, value) in metrics.entries() {
        out += &format!("    {name:<26} {value:.4e}\n");
    }
    out
}

/// Progress on stderr: a bar on a terminal, a line every twentieth of the run otherwise.
pub(super) enum Reporter {
    Bar {
        bar: ProgressBar,
        val_loss: Option<f64>,
    },
    Lines {
        total: usize,
        next: usize,
        start: Instant,
    },
}

impl Reporter {
    pub(super) fn new(total: usize) -> Reporter {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total as u64);
            let style =
                ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} {per_sec} ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            Reporter::Bar {
                bar,
                val_loss: None,
            }
        } else {
            Reporter::Lines {
                total,
                next: 0,
                start: Instant::now(),
            }
        }
    }

    pub(super) fn finish(&self) {
        if let Reporter::Bar { bar, .. } = self {
            bar.finish();
        }
    }
}

impl Progress for Reporter {
    fn step(&mut self, step: usize, _total: usize, loss: f64) {
        if let Reporter::Bar { bar, val_loss } = self {
            bar.set_position(step as u64);
            let val = val_loss.map_or(String::new(), |v| format!(" val {v:.3e}"));
            bar.set_message(format!("loss {loss:.3e}{val}"));
        }
    }

    fn validated(&mut self, record: &Record) {
        match self {
            Reporter::Bar { val_loss, .. } => *val_loss = Some(record.val_loss),
            Reporter::Lines { total, next, start } => {
                if record.step < *next && record.step < *total {
                    return;
                }
                *next = record.step + (*total / 20).max(1);
                let rate = record.step as f64 / start.elapsed().as_secs_f64().max(1e-9);
                eprintln!(
                    "step {}/{}  train {:.4e}  val {:.4e}  lr {:.2e}  {rate:.1} steps/s",
                    record.step, total, record.train_loss, record.val_loss, record.lr
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn device_of(args: &[&str]) -> Result<DeviceKind, clap::Error> {
        let cli = Cli::try_parse_from(["symc", "train", "spec.sym"].iter().chain(args))?;
        match cli.command {
            Command::Train(args) => Ok(args.device),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn device_flag_takes_cpu_cuda_and_cuda_n() {
        assert_eq!(device_of(&[]).unwrap(), DeviceKind::Cpu);
        assert_eq!(
            device_of(&["--device", "cuda"]).unwrap(),
            DeviceKind::Cuda(0)
        );
        assert_eq!(
            device_of(&["--device", "cuda:3"]).unwrap(),
            DeviceKind::Cuda(3)
        );
        let err = device_of(&["--device", "gpu"]).unwrap_err().to_string();
        assert!(err.contains("unknown device `gpu`"), "{err}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn without_the_feature_cuda_fails_before_the_spec_is_read() {
        let args = TrainArgs {
            spec: "no/such/spec.sym".into(),
            out: None,
            seed: None,
            steps: None,
            model: None,
            device: DeviceKind::Cuda(0),
        };
        let Err(CliError::Other(err)) = run(args) else {
            panic!("expected an error about the device");
        };
        assert!(err.to_string().contains("--features cuda"), "{err}");
    }

    #[test]
    fn civil_dates_match_the_calendar() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(59), (1970, 3, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(20_419), (2025, 11, 27));
        assert_eq!(civil_date(-1), (1969, 12, 31));
    }
}
