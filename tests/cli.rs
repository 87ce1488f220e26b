//! The real `symc` binary: arguments in, stdout, stderr and exit code out.

use std::process::Command;

/// What one run of the binary printed and returned.
struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

fn symc(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_symc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().expect("exited, not killed"),
    }
}

fn spec_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/specs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sym"))
        .map(|p| format!("specs/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files
}

#[test]
fn build_succeeds_on_every_spec_and_its_yaml_reads_back() {
    let files = spec_files();
    assert!(files.len() >= 10);
    // Specs build in parallel: the EMLP ones spend seconds in the basis solver.
    let runs: Vec<(String, Run)> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|f| s.spawn(move || (f.clone(), symc(&["build", f]))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (file, run) in runs {
        assert_eq!(run.code, 0, "{file}: {}", run.stderr);
        let graphs = symc::plan::from_yaml(&run.stdout).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!graphs.is_empty());
        // Reading back and writing again gives the same text: nothing is lost.
        assert_eq!(symc::plan::to_yaml(&graphs).unwrap(), run.stdout, "{file}");
        for g in &graphs {
            symc::plan::validate(g).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}

#[test]
fn build_writes_the_file_named_by_output() {
    let dir = std::env::temp_dir().join(format!("symc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("hnn.yaml");
    let run = symc(&[
        "build",
        "specs/mass_spring_hnn.sym",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let graphs = symc::plan::from_yaml(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(graphs[0].model, "mass_spring_hnn");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_spec_exits_2_with_located_errors_on_stderr() {
    let run = symc(&["build", "tests/bad/many_semantic_errors.sym"]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr
            .contains("tests/bad/many_semantic_errors.sym:4:24"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("help: did you mean `O5`?"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.matches("error:").count(), 5, "{}", run.stderr);
}

#[test]
fn a_missing_file_exits_1() {
    let run = symc(&["build", "specs/no_such_spec.sym"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("error: cannot read `specs/no_such_spec.sym`"),
        "{}",
        run.stderr
    );
}

#[test]
fn explain_states_the_regulariser_its_samples_and_weights() {
    let run = symc(&["explain", "specs/o5_loss.sym"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for line in [
        "symmetry O5 => loss(weight = 1, samples = 4, penalty = sampled)",
        "loss: mse × 1 + sampled equivariance over `O5` (4 samples) × 1",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    let run = symc(&["explain", "specs/boost_loss.sym"]);
    assert!(
        run.stdout
            .contains("Lie derivative along every generator of `Boost2` × 0.1"),
        "{}",
        run.stdout
    );
    let run = symc(&["explain", "specs/o5_soft.sym"]);
    for line in [
        "symmetry O5 => soft(weight = 1)",
        "sum (residual pathway)",
        "residual-pathway prior towards `O5` (L2 on the unconstrained path; 0.00001 × L2 on the `O5`-equivariant path) × 1",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
}

#[test]
fn explain_names_strategy_reason_layers_and_parameters() {
    let run = symc(&["explain", "specs/mass_spring_hnn.sym"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("model mass_spring_hnn: dynamics of 1 coordinates, 2 → 2"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("symmetry time => hamiltonian"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("why: the spec asks for it: the output is the symplectic gradient"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Hamiltonian head, hidden [200, 200]"),
        "{}",
        run.stdout
    );
    // 2·200+200 + 200·200+200 + 200+1 weights and biases.
    assert!(run.stdout.contains("parameters: 41001"), "{}", run.stdout);
}

#[test]
fn basis_prints_the_dimension_and_the_time() {
    let run = symc(&["basis", "SO(3)", "V^2", "V^2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "dimension: 3");
    let seconds: f64 = lines[1].strip_prefix("seconds: ").unwrap().parse().unwrap();
    assert!(seconds >= 0.0);
    // The permutation-equivariant maps of R⁴: the identity and the all-ones matrix.
    let run = symc(&["basis", "S(4)", "V", "V", "--show"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("dimension: 2\n"), "{}", run.stdout);
    assert_eq!(run.stdout.matches("basis ").count(), 2, "{}", run.stdout);
}

#[test]
fn basis_with_a_bad_group_exits_2() {
    let run = symc(&["basis", "SO(3", "V", "V"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("<group>:1:5"), "{}", run.stderr);
    let run = symc(&["basis", "SO(3)", "V^", "V"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("<rep>:1:3"), "{}", run.stderr);
}

#[test]
fn every_command_has_help_with_an_example() {
    for args in [
        &["--help"][..],
        &["build", "--help"],
        &["explain", "--help"],
        &["basis", "--help"],
    ] {
        let run = symc(args);
        assert_eq!(run.code, 0, "{args:?}");
        assert!(run.stdout.contains("Example:"), "{args:?}: {}", run.stdout);
    }
    let run = symc(&["frobnicate"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("frobnicate"));
}

#[test]
fn discover_writes_a_group_that_compiles() {
    let dir = std::env::temp_dir().join(format!("symc-discover-{}", std::process::id()));
    let run = symc(&[
        "discover",
        "specs/rotation_learn.sym",
        "--out",
        dir.to_str().unwrap(),
        "--steps",
        "300",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for file in ["found.sym", "report.yaml", "generator_0.png"] {
        assert!(dir.join(file).is_file(), "no {file} in the run folder");
    }
    // The exported declaration is a spec of its own: a model over it compiles.
    let found = std::fs::read_to_string(dir.join("found.sym")).unwrap();
    let spec = format!(
        "{found}\nmodel over_found {{\n  data builtin.rotation2_pairs(train = 50, val = 10, test = 10)\n  \
         input x: V over Found\n  output y: V over Found\n  symmetry Found => architecture\n  \
         net emlp(channels = 16, layers = 1)\n  train (steps = 1)\n}}\n"
    );
    let compiled = symc::compile(&spec, "over_found.sym", &dir);
    assert!(
        compiled.is_ok(),
        "{}",
        compiled.err().unwrap().render(false)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn discover_prints_what_the_latent_method_measured() {
    let dir = std::env::temp_dir().join(format!("symc-latent-{}", std::process::id()));
    let run = symc(&[
        "discover",
        "specs/oscillator_latent.sym",
        "--out",
        dir.to_str().unwrap(),
        "--steps",
        "20",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("mean latent flow: eigenvalues"))
        .unwrap_or_else(|| panic!("no latent summary in:\n{}", run.stdout));
    // The 2-dimensional code has two complex eigenvalues, then the held-out errors.
    let eigenvalues = line
        .trim_start_matches("mean latent flow: eigenvalues ")
        .split(';')
        .next()
        .unwrap();
    let values: Vec<&str> = eigenvalues.split(", ").collect();
    assert_eq!(values.len(), 2, "{line}");
    assert!(values.iter().all(|v| v.ends_with('i')), "{line}");
    assert!(line.contains("predicting no change"), "{line}");
    std::fs::remove_dir_all(&dir).unwrap();
}
