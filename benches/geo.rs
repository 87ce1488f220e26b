//! Training throughput (forward + backward + AdamW step, images per second) of
//! the p4 group-convolution network on 8×8 digits against a plain CNN of about
//! the same parameter count, both read out by one `Linear` to 10 classes.
//!
//! Run with `cargo bench --bench geo` (release build). Set
//! `SYMC_BENCH_SECONDS` to change the time spent on each model (default 5).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use symc::backend::{Batch, Model};
use symc::plan::*;

const ROWS: usize = 64;
const SIDE: usize = 8;
const CLASSES: usize = 10;

/// A classifier: `conv` pooled to `pooled` values, parameters `params`, then a `Linear`.
fn graph(conv: Op, pooled: usize, params: usize) -> ModelGraph {
    let head = pooled * CLASSES + CLASSES;
    let linear = Op::Linear {
        inp: pooled,
        out: CLASSES,
        bias: true,
        init: LinearInit::Uniform,
    };
    ModelGraph {
        model: "digits_bench".into(),
        task: Task::Classification { classes: CLASSES },
        inputs: vec![Port {
            name: "image".into(),
            dim: SIDE * SIDE,
            rep: None,
        }],
        outputs: vec![Port {
            name: "digit".into(),
            dim: CLASSES,
            rep: None,
        }],
        groups: vec![],
        symmetries: vec![],
        nodes: vec![
            Node::new(0, Op::Input, vec![], SIDE * SIDE, 0),
            Node::new(1, conv, vec![0], pooled, params),
            Node::new(2, linear, vec![1], CLASSES, head),
        ],
        output: 2,
        losses: vec![LossTerm {
            kind: LossKind::CrossEntropy,
            weight: 1.0,
        }],
        data: DataConfig::Builtin {
            name: "digits".into(),
            params: BTreeMap::new(),
        },
        train: TrainConfig {
            steps: 1,
            lr: 1e-3,
            batch: Some(ROWS),
            weight_decay: 0.0,
            seed: 0,
            schedule: "constant".into(),
            clip: None,
        },
        parameters: params + head,
    }
}

/// Images per second of training steps on one fixed batch.
fn images_per_second(graph: &ModelGraph) -> f64 {
    let seconds = std::env::var("SYMC_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let mut model = Model::new(graph, 0).expect("the benchmark graph compiles");
    let x: Vec<f32> = (0..ROWS * SIDE * SIDE)
        .map(|i| ((i * 7919) % 17) as f32)
        .collect();
    let y: Vec<f32> = (0..ROWS).map(|i| (i % CLASSES) as f32).collect();
    let batch = Batch {
        x: &x,
        y: &y,
        rows: ROWS,
    };
    let mut step = || {
        model.train_step(&batch, 1e-3).expect("a finite step");
    };
    (0..3).for_each(|_| step());
    let start = Instant::now();
    let mut steps = 0u32;
    while steps < 5 || start.elapsed() < Duration::from_secs_f64(seconds) {
        step();
        steps += 1;
    }
    (steps as usize * ROWS) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let p4 = Op::GroupConv {
        group: "p4".into(),
        channels: vec![16, 32],
        kernel: 3,
        height: SIDE,
        width: SIDE,
        invariant: true,
    };
    let plain = Op::Conv {
        channels: vec![32, 64],
        kernel: 3,
        height: SIDE,
        width: SIDE,
    };
    // Lifting 16·9 + 16, group layer 32·16·4·9 + 32; plain 32·9 + 32, 64·32·9 + 64.
    let runs = [
        ("p4 CNN [16, 32]", graph(p4, 32, 160 + 18_464)),
        ("plain CNN [32, 64]", graph(plain, 64, 320 + 18_496)),
    ];
    let mut rates = Vec::new();
    for (name, graph) in &runs {
        let rate = images_per_second(graph);
        println!(
            "{name:<22} {:>6} params  {rate:>9.0} images/s (batch {ROWS})",
            graph.parameters
        );
        rates.push(rate);
    }
    println!("plain / p4 time per image: {:.2}×", rates[1] / rates[0]);
}
