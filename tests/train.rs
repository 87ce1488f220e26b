//! `symc train` and `symc check` end to end, on specs small enough to train in a second.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch folder removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("symc-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn symc(args: &[&str], dir: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_symc"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An MLP on a small inertia data set, with O(3) declared but not built in.
const TINY: &str = "\
group O3 = O(3)

model tiny {
  data     builtin.inertia(train = 64, val = 32, test = 32, seed = 0)
  input    x: 5*scalar + 5*V over O3
  output   y: V^2 over O3
  symmetry O3 => none
  net      mlp(hidden = [16], act = tanh)
  train    (steps = 6, lr = 3e-3, batch = 32, seed = 0)
}
";

#[test]
fn train_writes_a_run_folder_that_check_certifies() {
    let scratch = Scratch::new("train-check");
    scratch.write("tiny.sym", TINY);
    let trained = symc(
        &["train", "tiny.sym", "--out", "run", "--seed", "3"],
        &scratch.0,
    );
    assert_eq!(trained.code, 0, "{}", trained.stderr);
    assert!(
        trained.stdout.contains("trained `tiny`: 6 steps"),
        "{}",
        trained.stdout
    );
    // Not a terminal: one plain progress line per validation here (epochs of 2 steps).
    assert!(trained.stderr.contains("step 6/6"), "{}", trained.stderr);

    let run = scratch.0.join("run");
    for file in [
        "graph.yaml",
        "weights.safetensors",
        "history.csv",
        "loss.png",
        "report.yaml",
    ] {
        assert!(run.join(file).is_file(), "missing {file}");
    }
    let report = std::fs::read_to_string(run.join("report.yaml")).unwrap();
    for key in [
        "train_mse:",
        "test_mse:",
        "steps: 6",
        "seconds:",
        "steps_per_second:",
        "parameters: 489",
        "seed: 3",
    ] {
        assert!(report.contains(key), "report lacks `{key}`:\n{report}");
    }
    assert!(report.contains("equivariance_error:\n  O3: "), "{report}");
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 4, "{history}");

    let checked = symc(
        &[
            "check",
            "tiny.sym",
            "--run",
            "run",
            "--samples",
            "5",
            "--seed",
            "1",
        ],
        &scratch.0,
    );
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    assert!(
        checked
            .stdout
            .contains("32 test points x 5 group elements (seed 1)"),
        "{}",
        checked.stdout
    );
    let row = checked
        .stdout
        .lines()
        .find(|l| l.starts_with("O3 "))
        .unwrap();
    assert!(row.contains(" none ") && row.ends_with("measured"), "{row}");

    // Holding the same model to a tolerance it cannot meet fails the certificate.
    let graph = std::fs::read_to_string(run.join("graph.yaml")).unwrap();
    let strict = graph.replace(
        "  strategy: none\n",
        "  strategy: none\n  tolerance: 1.0e-9\n",
    );
    assert_ne!(strict, graph);
    std::fs::write(run.join("graph.yaml"), strict).unwrap();
    let failed = symc(
        &["check", "tiny.sym", "--run", "run", "--samples", "5"],
        &scratch.0,
    );
    assert_eq!(failed.code, 1, "{}", failed.stdout);
    assert!(
        failed
            .stdout
            .lines()
            .any(|l| l.starts_with("O3 ") && l.ends_with("FAIL")),
        "{}",
        failed.stdout
    );
    assert!(
        failed
            .stderr
            .contains("equivariance error above tolerance for O3"),
        "{}",
        failed.stderr
    );
}

#[test]
fn every_loss_strategy_trains_and_checks() {
    let scratch = Scratch::new("loss-strategies");
    let strategies = [
        ("loss(weight = 0.5, samples = 2)", None),
        ("loss(penalty = lie)", None),
        ("loss(penalty = orbit)", None),
        ("augment(samples = 2)", None),
        ("soft(weight = 1)", Some("emlp(channels = 8, layers = 1)")),
    ];
    for (i, (strategy, net)) in strategies.into_iter().enumerate() {
        let mut spec = TINY.replace("=> none", &format!("=> {strategy}"));
        if let Some(net) = net {
            spec = spec.replace("mlp(hidden = [16], act = tanh)", net);
        }
        let file = format!("s{i}.sym");
        scratch.write(&file, &spec);
        let run = format!("run{i}");
        let trained = symc(&["train", &file, "--out", &run], &scratch.0);
        assert_eq!(trained.code, 0, "{strategy}: {}", trained.stderr);
        let checked = symc(
            &["check", &file, "--run", &run, "--samples", "4"],
            &scratch.0,
        );
        assert_eq!(checked.code, 0, "{strategy}: {}", checked.stderr);
        let word = strategy.split('(').next().unwrap_or_default();
        assert!(
            checked.stdout.contains(&format!("O3        {word}")),
            "{strategy}: {}",
            checked.stdout
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_history_and_weights() {
    let scratch = Scratch::new("determinism");
    scratch.write("tiny.sym", TINY);
    for out in ["a", "b"] {
        let trained = symc(&["train", "tiny.sym", "--out", out], &scratch.0);
        assert_eq!(trained.code, 0, "{}", trained.stderr);
    }
    let read = |run: &str, file: &str| std::fs::read(scratch.0.join(run).join(file)).unwrap();
    assert_eq!(read("a", "history.csv"), read("b", "history.csv"));
    assert_eq!(
        read("a", "weights.safetensors"),
        read("b", "weights.safetensors")
    );
    let again = symc(&["train", "tiny.sym", "--out", "a"], &scratch.0);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("already holds a run"),
        "{}",
        again.stderr
    );
}

#[test]
fn csv_defects_and_missing_cuda_are_reported() {
    let scratch = Scratch::new("errors");
    scratch.write("points.csv", "a,b,y\n1,2,3\n4,,6\n");
    let spec = TINY
        .replace(
            "builtin.inertia(train = 64, val = 32, test = 32, seed = 0)",
            "file(\"points.csv\", inputs = 2, outputs = 1)",
        )
        .replace("5*scalar + 5*V over O3", "R^2")
        .replace("V^2 over O3", "R^1")
        .replace("  symmetry O3 => none\n", "");
    scratch.write("csv.sym", &spec);
    let failed = symc(&["train", "csv.sym", "--out", "run"], &scratch.0);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed
            .stderr
            .contains("points.csv:3, column 2: `b`: missing value"),
        "{}",
        failed.stderr
    );

    // A CUDA build may be run where a GPU exists; only a CPU build must refuse.
    if !cfg!(feature = "cuda") {
        scratch.write("tiny.sym", TINY);
        let cuda = symc(&["train", "tiny.sym", "--device", "cuda"], &scratch.0);
        assert_eq!(cuda.code, 1);
        assert!(cuda.stderr.contains("--features cuda"), "{}", cuda.stderr);
    }
}

#[test]
fn a_hamiltonian_run_reports_rollout_metrics_and_plots_them() {
    let scratch = Scratch::new("hnn");
    let spec = scratch.write(
        "hnn.sym",
        "\
model tiny_hnn {
  data     builtin.mass_spring(trajectories = 4, points = 10, seed = 0)
  state    q: R^1, p: R^1
  symmetry time => hamiltonian
  net      mlp(hidden = [8], act = tanh)
  train    (steps = 5, lr = 1e-2, seed = 0)
}
",
    );
    let run = scratch.0.join("run");
    let spec = spec.to_str().unwrap();
    let out = symc(&["train", spec, "--out", run.to_str().unwrap()], &scratch.0);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("energy_mse"), "{}", out.stdout);
    for file in ["phase.png", "energy.png", "loss.png", "rollout.csv"] {
        let bytes = std::fs::read(run.join(file)).unwrap();
        assert!(bytes.len() > 100, "{file} is {} bytes", bytes.len());
    }
    let report: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(run.join("report.yaml")).unwrap()).unwrap();
    let dynamics = &report["dynamics"];
    for key in ["test_mse", "energy_mse", "final_energy_error", "state_mse"] {
        let value = dynamics[key].as_f64().unwrap_or(f64::NAN);
        assert!(value.is_finite() && value >= 0.0, "{key}: {value}");
    }
    // The derivative MSE of the rollout report is the run's test MSE.
    let (a, b) = (
        dynamics["test_mse"].as_f64().unwrap(),
        report["test_mse"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 1e-6 * b, "{a} vs {b}");
    // The data have no validation split (val_fraction 0), so no validation figure.
    assert!(report.get("val_mse").is_none(), "{report:?}");
    // Two test trajectories × 201 times, one header.
    let csv = std::fs::read_to_string(run.join("rollout.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 201);
    let check = symc(&["check", spec, "--run", run.to_str().unwrap()], &scratch.0);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains("final_energy_error"),
        "{}",
        check.stdout
    );
}
