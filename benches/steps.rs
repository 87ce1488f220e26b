//! Training steps per second at batch 500 for the O(5) benchmark's models,
//! compiled from `specs/o5_mlp.sym` and `specs/o5_emlp.sym`: the plain MLP
//! baseline (10 → 384 → 384 → 384 → 1, swish, 300,289 parameters), the same
//! MLP with tanh, the tanh MLP written with dfdx's own modules, tape and Adam
//! (what fusing buys), and the EMLP (3 gated layers of 384 channels).
//!
//! Run with `cargo bench --bench steps [NAME…]` (release build; names filter
//! by substring, e.g. `EMLP`). Set `SYMC_BENCH_SECONDS` to change the time
//! spent on each model (default 5).

use dfdx::optim::{Adam, Optimizer};
use dfdx::prelude::*;
use std::path::Path;
use std::time::{Duration, Instant};
use symc::backend::{Batch, Model};
use symc::plan::{Activation, ModelGraph, Op};

const ROWS: usize = 500;
const IN: usize = 10;
const WIDTH: usize = 384;
const LR: f64 = 3e-3;

/// CPU time (user + system, all threads) this process has used, in seconds,
/// from `/proc/self/stat`; `None` where that file does not exist. On a shared
/// machine it shows the work a step costs, while wall time also counts waiting.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports these in USER_HZ, which is 100 on every supported architecture.
    Some(ticks / 100.0)
}

/// Whether the command line selects benchmark `name` (no filter selects all).
fn selected(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

/// Runs `step` repeatedly for the configured time after a short warm-up and
/// prints the rate.
fn report(name: &str, mut step: impl FnMut()) {
    let seconds = std::env::var("SYMC_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    for _ in 0..3 {
        step();
    }
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let mut steps = 0u32;
    while steps < 5 || start.elapsed() < Duration::from_secs_f64(seconds) {
        step();
        steps += 1;
    }
    let per_step = start.elapsed().as_secs_f64() / steps as f64;
    let cpu = match (cpu_start, cpu_seconds()) {
        (Some(a), Some(b)) => format!("{:>8.2}", (b - a) * 1e3 / steps as f64),
        _ => "       -".into(),
    };
    println!(
        "{name:<40} {:>8.1} steps/s {:>8.2} ms/step {cpu} CPU-ms/step ({steps} steps)",
        1.0 / per_step,
        per_step * 1e3
    );
}

/// The graph of the crate's own `specs/{name}.sym`, compiled by the front end.
fn spec_graph(name: &str) -> ModelGraph {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let path = dir.join(format!("{name}.sym"));
    let text = std::fs::read_to_string(&path).expect("the spec file is readable");
    let compiled = symc::compile(&text, &path.display().to_string(), &dir)
        .unwrap_or_else(|d| panic!("{}", d.render(false)));
    compiled
        .graphs
        .into_iter()
        .next()
        .expect("the spec defines a model")
}

/// `graph` with every standalone activation replaced by `act`.
fn with_activation(mut graph: ModelGraph, act: Activation) -> ModelGraph {
    for node in &mut graph.nodes {
        if let Op::Activation { kind } = &mut node.op {
            *kind = act;
        }
    }
    graph
}

/// Deterministic N(0, 1)-like inputs and a smooth target.
fn data() -> (Vec<f32>, Vec<f32>) {
    let x: Vec<f32> = (0..ROWS * IN)
        .map(|i| (((i * 2_654_435_761) % 10_007) as f32 / 10_007.0 - 0.5) * 3.0)
        .collect();
    let y = x
        .chunks(IN)
        .map(|r| r[0].sin() - 0.5 * r[5] * r[6])
        .collect();
    (x, y)
}

fn bench_symc(name: &str, graph: impl FnOnce() -> ModelGraph, x: &[f32], y: &[f32]) {
    if !selected(name) {
        return;
    }
    let graph = &graph();
    let start = Instant::now();
    let mut model = Model::new(graph, 0).expect("benchmark graph compiles");
    println!(
        "{name}: model built in {:.3} s",
        start.elapsed().as_secs_f64()
    );
    let batch = Batch { x, y, rows: ROWS };
    let name = format!("{name} ({} params)", model.parameter_count());
    report(&name, || {
        model.train_step(&batch, LR).expect("training step");
    });
}

/// The same MLP with dfdx's modules, tape and Adam: the unfused reference.
fn bench_dfdx_ops(x: &[f32], y: &[f32]) {
    if !selected("dfdx-ops MLP") {
        return;
    }
    type Mlp = (
        (Linear<IN, WIDTH>, Tanh),
        (Linear<WIDTH, WIDTH>, Tanh),
        (Linear<WIDTH, WIDTH>, Tanh),
        Linear<WIDTH, 1>,
    );
    let dev = Cpu::seed_from_u64(0);
    let mut model = dev.build_module::<Mlp, f32>();
    let mut grads = model.alloc_grads();
    let mut opt = Adam::new(
        &model,
        AdamConfig {
            lr: LR,
            ..Default::default()
        },
    );
    let x = dev.tensor_from_vec(x.to_vec(), (ROWS, Const::<IN>));
    let y = dev.tensor_from_vec(y.to_vec(), (ROWS, Const::<1>));
    let name = format!(
        "dfdx-ops MLP, tanh ({} params)",
        model.num_trainable_params()
    );
    report(&name, || {
        let pred = model.forward_mut(x.trace(grads.clone()));
        let loss = mse_loss(pred, y.clone());
        grads = loss.backward();
        opt.update(&mut model, &grads).expect("dfdx Adam step");
        model.zero_grads(&mut grads);
    });
}

fn main() {
    println!(
        "training steps at batch {ROWS}, {} rayon threads",
        rayon::current_num_threads()
    );
    let (x, y) = data();
    bench_symc("symc MLP, swish", || spec_graph("o5_mlp"), &x, &y);
    bench_symc(
        "symc MLP, tanh",
        || with_activation(spec_graph("o5_mlp"), Activation::Tanh),
        &x,
        &y,
    );
    bench_dfdx_ops(&x, &y);
    bench_symc("symc EMLP, O(5)", || spec_graph("o5_emlp"), &x, &y);
}
