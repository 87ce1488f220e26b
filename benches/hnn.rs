//! Hamiltonian and Lagrangian heads against the unconstrained baseline.
//!
//! `cargo bench --bench hnn` (speed): the set-up of the PyTorch peer
//! (`peers/hnn_torch.py`): H = (q² + p²)/2, 25 + 25 trajectories of 30 points
//! over [0, 2π], r ~ U[0.2, 1], noise 0.1; MLP 2→200→200→1 (baseline →2) with
//! tanh, PyTorch's default initialisation, full batch, Adam 1e-3, 2000 steps
//! (or the first numeric argument), on a pool of `SYMC_THREADS` (default 2)
//! threads. Prints wall and CPU time, steps/s, train and test MSE per model.
//!
//! `cargo bench --bench hnn -- reproduce [SYSTEM…]`: the paper experiments
//! (`scripts/reproduce-hnn.sh`), 3 seeds each, printed as a table.

use std::collections::BTreeMap;
use std::time::Instant;
use symc::backend::physics::{DynamicsNet, Head, Init};
use symc::data::systems::simulate;
use symc::data::Table;
use symc::plan::Activation;
use symc::train::dynamics::{evaluate, fit, DynamicsReport, Integrator, Protocol};

fn params(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// CPU time of this process so far (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn field_mse(net: &DynamicsNet, t: &Table) -> f64 {
    let f = net.field(&t.x).expect("shapes agree");
    f.iter()
        .zip(&t.y)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum::<f64>()
        / f.len() as f64
}

fn speed(steps: usize) {
    let threads: usize = std::env::var("SYMC_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let p = params(&[
        ("trajectories", 50.0),
        ("points", 30.0),
        ("t_end", 2.0 * std::f64::consts::PI),
        ("scale", 0.5),
        ("r_min", 0.2),
        ("r_max", 1.0),
        ("noise", 0.1),
    ]);
    let data = simulate("mass_spring", &p)
        .expect("built in")
        .expect("valid parameters")
        .splits();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    println!(
        "symc: train {} points, test {} points, {threads} threads, {steps} steps",
        data.train.rows, data.test.rows
    );
    for (head, name) in [(Head::Hamiltonian, "hnn"), (Head::Direct, "baseline")] {
        let mut net = DynamicsNet::new(head, 1, &[200, 200], Activation::Tanh, Init::Uniform, 0)
            .expect("valid head");
        let (start, cpu) = (Instant::now(), cpu_seconds());
        pool.install(|| fit(&mut net, &data.train.x, &data.train.y, steps, 1e-3))
            .expect("shapes agree");
        let (wall, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        println!(
            "symc {name:8} train {wall:7.3} s  cpu {cpu:7.3} s  {:7.1} steps/s  train MSE {:.4e}  test MSE {:.4e}",
            steps as f64 / wall,
            field_mse(&net, &data.train),
            field_mse(&net, &data.test)
        );
    }
}

/// One row pair of the reproduction table.
struct Experiment {
    system: &'static str,
    data: Vec<(&'static str, f64)>,
    coordinates: usize,
    hidden: Vec<usize>,
    act: Activation,
    init: Init,
    heads: [Head; 2],
    lr: f64,
    protocol: Protocol,
    /// The paper's figures for (baseline, structured head), on the metric shown.
    paper: (f64, f64),
    /// Show the final-time relative energy error instead of the energy MSE.
    final_error: bool,
}

fn experiments() -> Vec<Experiment> {
    let rk4 = |span: f64, points: usize| Protocol {
        span,
        points,
        integrator: Integrator::Rk4,
        max_step: 0.01,
    };
    // The HNN paper's set-up: 200×200 tanh, uniform initialisation, Adam 1e-3.
    let hnn = |system, data, coordinates, protocol, paper| Experiment {
        system,
        data,
        coordinates,
        hidden: vec![200, 200],
        act: Activation::Tanh,
        init: Init::Uniform,
        heads: [Head::Direct, Head::Hamiltonian],
        lr: 1e-3,
        protocol,
        paper,
        final_error: false,
    };
    vec![
        hnn("mass_spring", vec![], 1, rk4(20.0, 201), (1.71e-1, 3.84e-4)),
        hnn("pendulum", vec![], 1, rk4(20.0, 201), (4.15e-2, 2.49e-2)),
        hnn(
            "two_body",
            vec![("trajectories", 100.0)],
            4,
            rk4(20.0, 201),
            (6.33e-2, 3.88e-5),
        ),
        hnn(
            "three_body",
            vec![("trajectories", 100.0)],
            6,
            rk4(5.0, 51),
            (1.09e2, 4.19e-2),
        ),
        Experiment {
            system: "double_pendulum",
            // 40 test initial conditions, as in the LNN paper's energy study.
            data: vec![
                ("trajectories", 80.0),
                ("points", 100.0),
                ("t_end", 10.0),
                ("noise", 0.0),
            ],
            coordinates: 2,
            hidden: vec![128, 128],
            act: Activation::Softplus,
            init: Init::Lnn,
            heads: [Head::Direct, Head::Lagrangian],
            lr: 1e-3,
            protocol: rk4(100.0, 101),
            paper: (8e-2, 4.3e-3),
            final_error: true,
        },
    ]
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0).max(1.0);
    (m, var.sqrt())
}

fn run(e: &Experiment, head: Head, seed: u64, steps: usize) -> Result<DynamicsReport, String> {
    let mut p = params(&e.data);
    p.insert("seed".into(), seed as f64);
    let data = simulate(e.system, &p)
        .expect("built in")
        .map_err(|err| err.to_string())?;
    let splits = data.splits();
    let mut net = DynamicsNet::new(head, e.coordinates, &e.hidden, e.act, e.init, seed)
        .map_err(|err| err.to_string())?;
    let train = &splits.train;
    fit(&mut net, &train.x, &train.y, steps, e.lr).map_err(|err| err.to_string())?;
    evaluate(|x| net.field(x), &data, &e.protocol)
        .map(|evaluation| evaluation.report)
        .map_err(|err| err.to_string())
}

fn reproduce(only: &[String], steps: usize) {
    let seeds = [0u64, 1, 2];
    println!("| system | model | test MSE | energy metric | symc (mean ± std, 3 seeds) | paper |");
    println!("|---|---|---|---|---|---|");
    for e in experiments()
        .iter()
        .filter(|e| only.is_empty() || only.iter().any(|o| o == e.system))
    {
        for (k, head) in e.heads.iter().enumerate() {
            let start = Instant::now();
            let reports: Vec<Result<DynamicsReport, String>> =
                seeds.iter().map(|&s| run(e, *head, s, steps)).collect();
            let ok: Vec<&DynamicsReport> = reports.iter().filter_map(|r| r.as_ref().ok()).collect();
            let failures: Vec<&String> = reports.iter().filter_map(|r| r.as_ref().err()).collect();
            let metric = if e.final_error {
                "final |ΔE|/max V"
            } else {
                "energy MSE"
            };
            let all: Vec<f64> = ok
                .iter()
                .map(|r| {
                    if e.final_error {
                        r.final_energy_error
                    } else {
                        r.energy_mse
                    }
                })
                .collect();
            // A rollout that left every bound (an unstable learned field) has no finite energy.
            let values: Vec<f64> = all.iter().copied().filter(|v| v.is_finite()).collect();
            let diverged = all.len() - values.len();
            let (mse, mse_sd) = mean_std(&ok.iter().map(|r| r.test_mse).collect::<Vec<_>>());
            let (m, sd) = mean_std(&values);
            let paper = if k == 0 { e.paper.0 } else { e.paper.1 };
            let mut note = String::new();
            if diverged > 0 {
                note += &format!(" ({diverged} rollouts diverged)");
            }
            if let Some(first) = failures.first() {
                note += &format!(" ({} seeds failed: {first})", failures.len());
            }
            println!(
                "| {} | {:?} | {mse:.3e} ± {mse_sd:.1e} | {metric} | {m:.3e} ± {sd:.1e}{note} | {paper:.2e} |",
                e.system, head
            );
            eprintln!(
                "{} {:?}: {:.1} s",
                e.system,
                head,
                start.elapsed().as_secs_f64()
            );
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; ignore flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let steps = args.iter().find_map(|a| a.parse().ok()).unwrap_or(2000);
    if args.first().map(String::as_str) == Some("reproduce") {
        let only: Vec<String> = args[1..]
            .iter()
            .filter(|a| a.parse::<usize>().is_err())
            .cloned()
            .collect();
        reproduce(&only, steps);
    } else {
        speed(steps);
    }
}
