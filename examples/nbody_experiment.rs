//! Trains a graph network and a plain MLP on the `nbody_spring` system (three
//! bodies in the plane) and prints their test MSE on the time derivatives; then
//! runs the trained graph network, unchanged, on four bodies.
//!
//! Usage: `cargo run --release --example nbody_experiment [steps]`.

use std::collections::BTreeMap;
use symc::backend::Model;
use symc::data::{builtin, Table};
use symc::plan::*;
use symc::train::train;

const DIMS: usize = 2;
const HIDDEN: [usize; 2] = [64, 64];

fn mlp_params(widths: &[usize]) -> usize {
    widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
}

/// A dynamics graph for `bodies` bodies around `layers` (the last is the output).
fn graph(name: &str, bodies: usize, layers: Vec<Node>, steps: usize) -> ModelGraph {
    let width = bodies * DIMS;
    let port = |name: &str| Port {
        name: name.into(),
        dim: width,
        rep: None,
    };
    let mut nodes = vec![Node::new(0, Op::Input, vec![], 2 * width, 0)];
    nodes.extend(layers);
    ModelGraph {
        model: name.into(),
        task: Task::Dynamics { coordinates: width },
        inputs: vec![port("x"), port("p")],
        outputs: vec![port("dx"), port("dp")],
        groups: vec![],
        symmetries: vec![],
        parameters: nodes.iter().map(|n| n.params).sum(),
        output: nodes.len() - 1,
        nodes,
        losses: vec![LossTerm {
            kind: LossKind::Mse,
            weight: 1.0,
        }],
        data: DataConfig::Builtin {
            name: "nbody_spring".into(),
            params: BTreeMap::new(),
        },
        train: TrainConfig {
            steps,
            lr: 3e-3,
            batch: Some(100),
            weight_decay: 0.0,
            seed: 0,
            schedule: "cosine".into(),
        },
    }
}

fn graph_network(bodies: usize, steps: usize) -> ModelGraph {
    let features = 2 * DIMS;
    let h = features - DIMS;
    let params = mlp_params(&[DIMS + 1 + 2 * h, HIDDEN[0], HIDDEN[1]])
        + mlp_params(&[h + HIDDEN[1], HIDDEN[0], HIDDEN[1], features]);
    let op = Op::GraphNetwork {
        bodies,
        dims: DIMS,
        features,
        hidden: HIDDEN.to_vec(),
        act: Activation::Swish,
    };
    let name = format!("graph network, {bodies} bodies");
    graph(
        &name,
        bodies,
        vec![Node::new(1, op, vec![0], bodies * features, params)],
        steps,
    )
}

fn plain_mlp(bodies: usize, steps: usize) -> ModelGraph {
    let width = 2 * bodies * DIMS;
    let widths = [width, 128, 128, width];
    let mut layers = Vec::new();
    for (l, w) in widths.windows(2).enumerate() {
        let id = layers.len() + 1;
        let linear = Op::Linear {
            inp: w[0],
            out: w[1],
            bias: true,
        };
        layers.push(Node::new(
            id,
            linear,
            vec![id - 1],
            w[1],
            w[0] * w[1] + w[1],
        ));
        if l + 2 < widths.len() {
            let act = Op::Activation {
                kind: Activation::Swish,
            };
            layers.push(Node::new(id + 1, act, vec![id], w[1], 0));
        }
    }
    graph("MLP on the flat state", bodies, layers, steps)
}

fn mse(model: &Model, table: &Table) -> Result<f64, Box<dyn std::error::Error>> {
    let y = model.forward(&table.x, table.rows)?;
    let sum: f64 = y
        .iter()
        .zip(&table.y)
        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
        .sum();
    Ok(sum / table.y.len() as f64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps: usize = std::env::args().nth(1).map_or(Ok(3000), |s| s.parse())?;
    let data = |bodies: usize| {
        let params = BTreeMap::from([("bodies".to_string(), bodies as f64)]);
        builtin("nbody_spring", &params)
    };
    let (three, four) = (data(3)?, data(4)?);
    let zero = |t: &Table| t.y.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / t.y.len() as f64;
    println!(
        "nbody_spring, {} training states, {steps} steps\n",
        three.train.rows
    );
    println!("| model | params | test MSE, 3 bodies | test MSE, 4 bodies | kept step |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| predict zero | 0 | {:.4} | {:.4} | |",
        zero(&three.test),
        zero(&four.test)
    );
    for graph in [graph_network(3, steps), plain_mlp(3, steps)] {
        let outcome = train(&graph, &three, &mut ())?;
        let on_three = mse(&outcome.model, &three.test)?;
        // Parameters do not depend on the number of bodies: the same tensors run on four.
        let on_four = if matches!(graph.nodes[1].op, Op::GraphNetwork { .. }) {
            let mut bigger = Model::new(&graph_network(4, steps), 0)?;
            bigger.load_parameters(&outcome.model.named_parameters())?;
            format!("{:.4}", mse(&bigger, &four.test)?)
        } else {
            "cannot run".into()
        };
        println!(
            "| {} | {} | {on_three:.4} | {on_four} | {} |",
            graph.model, graph.parameters, outcome.best_step
        );
    }
    Ok(())
}
