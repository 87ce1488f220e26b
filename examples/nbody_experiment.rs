//! Trains the Hamiltonian graph network (`specs/nbody_spring_hgn.sym`) and the
//! plain MLP on the flattened state (`specs/nbody_spring_mlp.sym`) on three
//! bodies joined by springs, and reports test MSE, energy MSE and total
//! momentum drift of rollouts from the test starts; then runs the trained
//! graph network, unchanged, on four bodies, where the MLP cannot run.
//!
//! The four-body model is the same spec planned for four bodies: its
//! parameters have the same names and shapes, so the three-body ones load.
//!
//! Usage: `cargo run --release --example nbody_experiment [steps]` (default:
//! each spec's own step count).

use std::path::Path;
use symc::backend::Model;
use symc::data::{load, trajectories};
use symc::train::dynamics::{evaluate, DynamicsReport, Protocol};
use symc::train::train;
use symc::ModelGraph;

type Error = Box<dyn std::error::Error>;

/// The one model of the spec at `path`, for `bodies` bodies, trained for
/// `steps` steps when given.
fn plan(path: &str, bodies: usize, steps: Option<usize>) -> Result<ModelGraph, Error> {
    let text = std::fs::read_to_string(path)?
        .replace("bodies = 3", &format!("bodies = {bodies}"))
        .replace("R^[3, 2]", &format!("R^[{bodies}, 2]"))
        .replace("R^6", &format!("R^{}", 2 * bodies));
    let compiled = symc::compile(&text, path, Path::new("specs")).map_err(|e| e.render(false))?;
    let mut graph = compiled
        .graphs
        .into_iter()
        .next()
        .ok_or("the spec has no model")?;
    if let Some(steps) = steps {
        graph.train.steps = steps;
    }
    Ok(graph)
}

/// The rollout metrics of `model` on the test trajectories of `graph`'s data.
fn assess(graph: &ModelGraph, model: &Model) -> Result<DynamicsReport, Error> {
    let symc::plan::DataConfig::Builtin { name, params } = &graph.data else {
        return Err("the spec's data is not a built-in system".into());
    };
    let data = trajectories(name, params).ok_or("not a dynamical system")??;
    let d = 2 * data.system.coordinates();
    let field = |x: &[f32]| model.forward(x, x.len() / d);
    Ok(evaluate(field, &data, &Protocol::for_system(name))?.report)
}

fn row(name: &str, bodies: usize, report: &DynamicsReport) {
    println!(
        "| {name} | {bodies} | {:.3e} | {:.3e} | {:.3e} |",
        report.test_mse, report.energy_mse, report.momentum_drift["momentum"]
    );
}

fn main() -> Result<(), Error> {
    let steps = std::env::args().nth(1).map(|s| s.parse()).transpose()?;
    println!("| model | bodies | test MSE | energy MSE | momentum drift |");
    println!("|---|---:|---:|---:|---:|");
    for spec in ["specs/nbody_spring_hgn.sym", "specs/nbody_spring_mlp.sym"] {
        let graph = plan(spec, 3, steps)?;
        let splits = load(&graph.data, Path::new("specs"))?;
        let outcome = train(&graph, &splits, &mut ())?;
        row(&graph.model, 3, &assess(&graph, &outcome.model)?);
        let four = plan(spec, 4, steps)?;
        let mut model = Model::new(&four, graph.train.seed)?;
        match model.load_parameters(&outcome.model.named_parameters()) {
            Ok(()) => row(&graph.model, 4, &assess(&four, &model)?),
            Err(e) => println!("| {} | 4 | cannot run: {e} | | |", graph.model),
        }
        eprintln!(
            "{}: {} parameters, {} steps in {:.0} s, kept step {}",
            graph.model, graph.parameters, outcome.steps, outcome.seconds, outcome.best_step
        );
    }
    Ok(())
}
