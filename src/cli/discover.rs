//! `symc discover`: learn the generators of a `learn(...)` model and write them out.

use super::train::{pick_model, spec_dir, Reporter};
use super::CliError;
use crate::discover::{discover, LossPoint};
use crate::train::{Progress, Record};
use anyhow::Context;
use std::path::PathBuf;

/// Learn a symmetry from data and write it as a spec, a report and heatmaps.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  symc discover specs/rotation_learn.sym --out found/rotation")]
pub struct DiscoverArgs {
    /// The spec file, with a `symmetry learn(...)` model.
    pub spec: PathBuf,
    /// Folder for `found.sym`, `report.yaml` and one `generator_<i>.png` per generator.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Optimiser steps [default: the spec's].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Seed of the initial generators [default: the spec's].
    #[arg(long)]
    pub seed: Option<u64>,
    /// The model to run, when the spec defines several.
    #[arg(long)]
    pub model: Option<String>,
}

/// Validation lines (or bar updates) per run.
const REPORTS: usize = 100;

pub fn run(args: DiscoverArgs) -> Result<(), CliError> {
    let (_, graphs) = super::load_spec(&args.spec)?;
    let mut graph = pick_model(graphs, args.model.as_deref())?;
    graph.train.steps = args.steps.unwrap_or(graph.train.steps);
    graph.train.seed = args.seed.unwrap_or(graph.train.seed);
    let splits = crate::data::load(&graph.data, spec_dir(&args.spec))
        .with_context(|| format!("cannot load the data of model `{}`", graph.model))?;
    let total = graph.train.steps;
    let every = (total / REPORTS).max(1);
    let mut reporter = Reporter::new(total);
    let lr = graph.train.lr;
    let mut report = |p: &LossPoint| {
        reporter.step(p.step, total, p.train);
        if p.step % every == 0 || p.step == total {
            reporter.validated(&Record {
                step: p.step,
                train_loss: p.train,
                val_loss: p.val,
                lr,
            });
        }
    };
    let found = discover(&graph, &splits, &mut report).map_err(anyhow::Error::from);
    reporter.finish();
    let found = found?;
    let written = found.write(&args.out).map_err(anyhow::Error::from)?;
    let report = found.report();
    println!(
        "model {}: {} generator(s), loss train {:.3e} val {:.3e}",
        found.model,
        found.analysis.generators.len(),
        report.loss.train,
        report.loss.val
    );
    if let Some(nearest) = report.algebras.first() {
        let angles: Vec<String> = nearest
            .angles_deg
            .iter()
            .map(|a| format!("{a:.2}°"))
            .collect();
        println!(
            "nearest built-in algebra: {} (angles {})",
            nearest.name,
            angles.join(", ")
        );
    }
    println!("closure residual: {:.2e}", report.closure.residual);
    if let Some(truth) = &report.truth {
        let angles: Vec<String> = truth
            .angles_deg
            .iter()
            .map(|a| format!("{a:.2}°"))
            .collect();
        let cosine = truth
            .cosine
            .map_or(String::new(), |c| format!(", |cos| {c:.5}"));
        println!(
            "against the true generators: angles {}{cosine}",
            angles.join(", ")
        );
    }
    if let Some(inv) = &report.invariance {
        let k = found.analysis.generators.len();
        let kept: Vec<String> = inv.eigenvalues[..k.min(inv.eigenvalues.len())]
            .iter()
            .map(|l| format!("{l:.2e}"))
            .collect();
        println!(
            "predictor: test MSE {:.3e} ({:.3} of the targets' variance)",
            inv.predictor_mse, inv.predictor_relative_mse
        );
        println!(
            "Lie-derivative spectrum: kept {}; next {}; gap {:.1}",
            kept.join(", "),
            inv.eigenvalues
                .get(k)
                .map_or("none".into(), |l| format!("{l:.2e}")),
            inv.gap
        );
    }
    if let Some(latent) = &report.latent {
        let eigen: Vec<String> = latent
            .summary
            .mean_flow
            .eigenvalues
            .iter()
            .map(|[re, im]| format!("{re:.3}{im:+.3}i"))
            .collect();
        println!(
            "mean latent flow: eigenvalues {}; held-out error {:.3e} with the mean coefficients, {:.3e} predicting no change",
            eigen.join(", "),
            latent.summary.shared_prediction,
            latent.summary.baseline
        );
    }
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}
