//! Training steps per second at batch 500 for the O(5) benchmark's models:
//! the plain MLP baseline (10 → 384 → 384 → 384 → 1, about 300k parameters)
//! fused by symc, the same MLP written with dfdx's own modules and Adam
//! (showing what fusing buys), and symc's EMLP.
//!
//! Run with `cargo bench --bench steps [NAME…]` (release build; names filter
//! by substring, e.g. `EMLP`). Set `SYMC_BENCH_SECONDS` to change the time
//! spent on each model (default 5).

use dfdx::optim::{Adam, Optimizer};
use dfdx::prelude::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use symc::backend::{Batch, Model};
use symc::group::{BasisSolver, Group, Rep};
use symc::plan::{
    Activation, DataConfig, GroupDef, LossKind, LossTerm, ModelGraph, Node, Op, Port, PortRep,
    Task, TrainConfig,
};

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

fn node(id: usize, op: Op, inputs: Vec<usize>, out_dim: usize, params: usize) -> Node {
    Node {
        id,
        op,
        inputs,
        out_dim,
        params,
        constraint: None,
    }
}

/// A regression graph around `nodes` (the last one is the output).
fn graph(nodes: Vec<Node>) -> ModelGraph {
    let output = nodes.len() - 1;
    ModelGraph {
        model: "o5_bench".into(),
        task: Task::Regression,
        inputs: vec![Port {
            name: "x".into(),
            dim: IN,
            rep: None,
        }],
        outputs: vec![Port {
            name: "y".into(),
            dim: 1,
            rep: None,
        }],
        groups: vec![],
        symmetries: vec![],
        parameters: nodes.iter().map(|n| n.params).sum(),
        nodes,
        output,
        losses: vec![LossTerm {
            kind: LossKind::Mse,
            weight: 1.0,
        }],
        data: DataConfig::Builtin {
            name: "o5_synthetic".into(),
            params: BTreeMap::new(),
        },
        train: TrainConfig {
            steps: 1800,
            lr: LR,
            batch: Some(ROWS),
            weight_decay: 0.0,
            seed: 0,
            schedule: "constant".into(),
        },
    }
}

/// EMLP's MLP baseline: three hidden layers of 384 with `act`.
fn mlp_graph(act: Activation) -> ModelGraph {
    let mut nodes = vec![node(0, Op::Input, vec![], IN, 0)];
    let mut width = IN;
    for layer in 0..4 {
        let out = if layer == 3 { 1 } else { WIDTH };
        let id = nodes.len();
        let linear = Op::Linear {
            inp: width,
            out,
            bias: true,
        };
        nodes.push(node(id, linear, vec![id - 1], out, width * out + out));
        if layer < 3 {
            nodes.push(node(id + 1, Op::Activation { kind: act }, vec![id], out, 0));
        }
        width = out;
    }
    graph(nodes)
}

/// EMLP(2V → scalar) over O(5) with three gated layers of `uniform_rep(384)`
/// = 134·scalar + 25·V + 5·V² (384 channels, as EMLP allocates them).
fn emlp_graph() -> ModelGraph {
    let o5 = Group::builtin("O", &[5]).expect("O(5) is built in");
    let mut solver = BasisSolver::new(&o5);
    let hidden = Rep::Sum(vec![
        Rep::Scalar.times(134),
        Rep::V.times(25),
        Rep::V.pow(2).times(5),
    ]);
    let gates = 30;
    let input = Rep::V.times(2);
    let mut nodes = vec![node(0, Op::Input, vec![], IN, 0)];
    let mut linear = |nodes: &mut Vec<Node>, rep_in: &Rep, rep_out: Rep| {
        let basis = solver.blocks(rep_in, &rep_out).expect("basis").dimension();
        let bias = solver
            .blocks(&Rep::Scalar, &rep_out)
            .expect("bias")
            .dimension();
        let (id, out) = (nodes.len(), rep_out.size(5));
        let op = Op::EquivariantLinear {
            group: "O(5)".into(),
            rep_in: rep_in.clone(),
            rep_out,
            basis,
            bias,
        };
        nodes.push(node(id, op, vec![id - 1], out, basis + bias));
    };
    let mut rep = input.clone();
    for _ in 0..3 {
        let gated = Rep::Sum(vec![hidden.clone(), Rep::Scalar.times(gates)]);
        linear(&mut nodes, &rep, gated);
        let id = nodes.len();
        let op = Op::Gated {
            group: "O(5)".into(),
            rep: hidden.clone(),
            gates,
        };
        nodes.push(node(id, op, vec![id - 1], WIDTH, 0));
        rep = hidden.clone();
    }
    linear(&mut nodes, &rep, Rep::Scalar);
    let rows =
        |m: &nalgebra::DMatrix<f64>| m.row_iter().map(|r| r.iter().copied().collect()).collect();
    let mut g = graph(nodes);
    g.groups = vec![GroupDef {
        name: "O(5)".into(),
        n: 5,
        lie: o5.lie().iter().map(rows).collect(),
        discrete: o5.discrete().iter().map(rows).collect(),
    }];
    g.inputs[0].rep = Some(PortRep {
        group: "O(5)".into(),
        rep: input,
    });
    g
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
    bench_symc("symc MLP, swish", || mlp_graph(Activation::Swish), &x, &y);
    bench_symc("symc MLP, tanh", || mlp_graph(Activation::Tanh), &x, &y);
    bench_dfdx_ops(&x, &y);
    bench_symc("symc EMLP, O(5)", emlp_graph, &x, &y);
}
