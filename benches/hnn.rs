//! Training speed of the Hamiltonian head and the unconstrained baseline on the
//! set-up of the PyTorch peer (`peers/hnn_torch.py`): H = (q² + p²)/2, 25 + 25
//! trajectories of 30 points over [0, 2π], r ~ U[0.2, 1], noise 0.1; MLP
//! 2→200→200→1 (baseline →2) with tanh, PyTorch's default initialisation, full
//! batch, Adam 1e-3, 2000 steps, on a pool of `SYMC_THREADS` (default 2) threads.
//!
//! Prints one line per model: wall time, steps/s, train and test MSE.
//! `cargo bench --bench hnn [-- STEPS]`.

use std::collections::BTreeMap;
use std::time::Instant;
use symc::backend::physics::{Adam, DynamicsNet, Head, Init};
use symc::data::systems::{builtin, Table};
use symc::plan::Activation;

fn mse(net: &mut DynamicsNet, t: &Table) -> f32 {
    let mut grad = vec![0.0; net.parameters().len()];
    net.loss_and_grad(&t.x, &t.y, &mut grad)
        .expect("shapes agree")
}

fn main() {
    let steps: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let threads: usize = std::env::var("SYMC_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let params: BTreeMap<String, f64> = [
        ("trajectories", 50.0),
        ("points", 30.0),
        ("t_end", 2.0 * std::f64::consts::PI),
        ("scale", 0.5),
        ("r_min", 0.2),
        ("r_max", 1.0),
        ("noise", 0.1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let data = builtin("mass_spring", &params)
        .expect("built in")
        .expect("valid parameters");
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
        let mut adam = Adam::new(net.parameters().len(), 1e-3);
        let mut grad = vec![0.0; net.parameters().len()];
        let start = Instant::now();
        pool.install(|| {
            for _ in 0..steps {
                grad.fill(0.0);
                net.loss_and_grad(&data.train.x, &data.train.y, &mut grad)
                    .expect("shapes agree");
                adam.step(net.parameters_mut(), &grad);
            }
        });
        let wall = start.elapsed().as_secs_f64();
        println!(
            "symc {name:8} train {wall:7.3} s  {:7.1} steps/s  train MSE {:.4e}  test MSE {:.4e}",
            steps as f64 / wall,
            mse(&mut net, &data.train),
            mse(&mut net, &data.test)
        );
    }
}
