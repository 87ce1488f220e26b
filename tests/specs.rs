//! Specs in, graphs out; bad specs in, diagnostics out.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use symc::group::Rep;
use symc::lang::{ModelBuilder, Net, PortType, Severity, SpecBuilder, SymmetryKind};
use symc::plan::{Activation, DataConfig, HeadInit, LinearInit, Strategy, TrainConfig};

/// `path` relative to the crate root, so snapshots do not depend on the checkout.
fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .to_path_buf()
}

fn compile_file(path: &Path) -> Result<symc::Compiled, symc::Diagnostics> {
    let rel = relative(path);
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    symc::compile(&text, &rel.display().to_string(), rel.parent().unwrap())
}

#[test]
fn every_spec_compiles_to_its_snapshot() {
    insta::glob!("../specs", "*.sym", |path| {
        let compiled = compile_file(path).unwrap_or_else(|d| panic!("{}", d.render(false)));
        assert!(compiled.warnings.items.is_empty(), "{}", compiled.warnings);
        for g in &compiled.graphs {
            symc::plan::validate(g).unwrap();
        }
        insta::assert_snapshot!(symc::plan::to_yaml(&compiled.graphs).unwrap());
    });
}

#[test]
fn every_bad_spec_renders_located_errors() {
    let mut count = 0;
    insta::glob!("bad", "*.sym", |path| {
        count += 1;
        let errors = compile_file(path)
            .err()
            .expect("a bad spec must not compile");
        assert!(errors.has_errors());
        for d in &errors.items {
            let span = d.primary_span().expect("every diagnostic points somewhere");
            assert!(span.start <= span.end && span.end <= errors.sources.text(span.file).len());
        }
        insta::assert_snapshot!(errors.render(false));
    });
    assert!(count >= 40, "only {count} bad specs");
}

#[test]
fn all_errors_of_a_file_come_back_at_once() {
    let errors = compile_file(Path::new("tests/bad/many_semantic_errors.sym")).unwrap_err();
    let messages: Vec<&str> = errors.items.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages.len(), 5, "{messages:?}");
    assert!(messages.contains(&"unknown argument `sed`"));
    assert!(messages.contains(&"strategy `hamiltonian` does not apply to `O5`"));
    let syntax = compile_file(Path::new("tests/bad/many_syntax_errors.sym")).unwrap_err();
    let lines: Vec<usize> = syntax
        .items
        .iter()
        .map(|d| {
            let span = d.primary_span().unwrap();
            syntax.sources.line_col(span.file, span.start).0
        })
        .collect();
    assert_eq!(lines, vec![3, 6, 9]);
}

#[test]
fn ten_megabyte_specs_fail_cleanly() {
    // Ten megabytes of the language's own characters in random order: parse
    // errors with locations, found by a recovery pass that is linear in the size.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let alphabet: Vec<char> = "{}()[]=,*^+ xV\n#abc019".chars().collect();
    let noise: String = (0..10 << 20)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
        .collect();
    let errors = symc::compile(&noise, "noise.sym", Path::new(".")).unwrap_err();
    assert!(errors.has_errors());
    for d in &errors.items {
        assert!(d.primary_span().is_some_and(|s| s.end <= noise.len()));
    }
    // Ten megabytes of open brackets stop at the nesting limit, not the stack.
    let deep = "(".repeat(10 << 20);
    let errors = symc::compile(&deep, "deep.sym", Path::new(".")).unwrap_err();
    assert_eq!(errors.items.len(), 1);
    assert!(errors.items[0].message.contains("nest deeper"));
}

/// The spec files and their text, for the property test.
fn valid_specs() -> Vec<(String, String)> {
    let mut specs: Vec<(String, String)> = std::fs::read_dir("specs")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sym"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    specs.sort();
    specs
}

/// Fragments an edit may insert: the language's own punctuation and words.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "=>",
    "*",
    "^",
    "+",
    " x ",
    "over",
    "V",
    "scalar",
    "0",
    "-1",
    "1e-3",
    "99999999999999999999",
    "\n",
    "#",
    "\"",
    "model",
    "group",
    "data",
    "symmetry",
    "é",
    "\0",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    /// Random edits of valid specs never panic and give a graph or located errors.
    #[test]
    fn edited_specs_give_graphs_or_located_errors(
        which in 0usize..64,
        edits in prop::collection::vec((0.0f64..1.0, 0usize..8, 0usize..FRAGMENTS.len()), 1..4),
        cut in prop::option::of(0.0f64..1.0),
    ) {
        let specs = valid_specs();
        let (name, original) = &specs[which % specs.len()];
        let mut text: Vec<char> = original.chars().collect();
        for (at, delete, fragment) in edits {
            let at = (at * text.len() as f64) as usize;
            let end = (at + delete).min(text.len());
            text.splice(at..end, FRAGMENTS[fragment].chars());
        }
        if let Some(cut) = cut {
            text.truncate((cut * text.len() as f64) as usize);
        }
        let text: String = text.into_iter().collect();
        let base = Path::new("specs");
        // Checking covers every path the text can take; planning the large EMLP
        // models is the group engine's work and is left to the snapshot test.
        match symc::check(&text, name, base) {
            Ok(spec) => {
                let emlp = spec.models.iter().any(|m| m.symmetries.iter().any(|s| matches!(s.strategy, Strategy::Architecture | Strategy::Soft { .. })));
                if !emlp {
                    prop_assert!(symc::compile(&text, name, base).is_ok());
                }
            }
            Err(errors) => {
                prop_assert!(errors.has_errors());
                for d in errors.items.iter().filter(|d| d.severity == Severity::Error) {
                    let span = d.primary_span().expect("located");
                    prop_assert!(span.end <= errors.sources.text(span.file).len());
                }
                prop_assert!(!errors.render(false).is_empty());
            }
        }
    }
}

fn train(steps: usize, lr: f64, batch: Option<usize>) -> TrainConfig {
    TrainConfig {
        steps,
        lr,
        batch,
        weight_decay: 0.0,
        seed: 0,
        schedule: "constant".into(),
        clip: None,
    }
}

fn builtin(name: &str, params: &[(&str, f64)]) -> DataConfig {
    DataConfig::Builtin {
        name: name.into(),
        params: params.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

fn compiled_text(file: &str) -> Vec<symc::ModelGraph> {
    compile_file(Path::new(file)).unwrap().graphs
}

#[test]
fn builder_and_text_give_equal_graphs() {
    let three_body = SpecBuilder::new().model(
        ModelBuilder::new("three_body_graph")
            .data(builtin(
                "three_body",
                &[("trajectories", 100.0), ("points", 50.0), ("seed", 0.0)],
            ))
            .state("x", PortType::Table(3, 2))
            .state("v", PortType::Table(3, 2))
            .symmetry(
                SymmetryKind::Translation {
                    on: vec!["x".into()],
                },
                Some(Strategy::Graph),
            )
            .symmetry(
                SymmetryKind::Permutation {
                    on: vec!["x".into(), "v".into()],
                },
                Some(Strategy::Graph),
            )
            .net(Net::Graph {
                hidden: vec![128, 128],
                act: Activation::Swish,
            })
            .train(train(5000, 1e-3, Some(100))),
    );
    let graphs = three_body
        .compile(Path::new("specs"))
        .unwrap_or_else(|d| panic!("{d}"))
        .graphs;
    assert_eq!(graphs, compiled_text("specs/three_body_graph.sym"));

    let boost = SpecBuilder::new().include("groups/boost.sym").model(
        ModelBuilder::new("boost_loss")
            .data(DataConfig::File {
                path: "data/minkowski2.csv".into(),
                inputs: 4,
                outputs: 1,
            })
            .input("x", PortType::Over(Rep::V.times(2), "Boost2".into()))
            .output("y", PortType::Over(Rep::Scalar, "Boost2".into()))
            .symmetry(
                SymmetryKind::Group("Boost2".into()),
                Some(Strategy::Loss {
                    weight: 0.1,
                    samples: 8,
                    penalty: None,
                }),
            )
            .net(Net::Mlp {
                hidden: vec![128, 128],
                act: Activation::Tanh,
                init: LinearInit::Uniform,
            })
            .train(train(1000, 3e-3, Some(100))),
    );
    let graphs = boost
        .compile(Path::new("specs"))
        .unwrap_or_else(|d| panic!("{d}"))
        .graphs;
    assert_eq!(graphs, compiled_text("specs/boost_loss.sym"));

    let digits = SpecBuilder::new().model(
        ModelBuilder::new("digits_p4")
            .data(DataConfig::File {
                path: "data/digits8x8.csv".into(),
                inputs: 64,
                outputs: 1,
            })
            .input("image", PortType::Table(8, 8))
            .output("digit", PortType::Classes(10))
            .symmetry(SymmetryKind::Rotation(4), Some(Strategy::GroupConv))
            .net(Net::Gcnn {
                channels: vec![16, 32],
                kernel: 3,
            })
            .train(train(2000, 1e-3, Some(64))),
    );
    let graphs = digits
        .compile(Path::new("specs"))
        .unwrap_or_else(|d| panic!("{d}"))
        .graphs;
    assert_eq!(graphs, compiled_text("specs/digits_p4.sym"));
}

#[test]
fn a_builder_mistake_is_located_in_the_written_source() {
    let spec = SpecBuilder::new().model(
        ModelBuilder::new("m")
            .data(builtin("mass_spring", &[]))
            .state("q", PortType::Real(1))
            .state("p", PortType::Real(1))
            .symmetry(SymmetryKind::Time, Some(Strategy::GroupConv)),
    );
    let errors = spec.compile(Path::new(".")).unwrap_err();
    let text = errors.render(false);
    assert!(
        text.contains("strategy `group_conv` does not apply to `time`"),
        "{text}"
    );
    assert!(text.contains("<builder>:6:"), "{text}");
}

#[test]
fn printed_representations_parse_back_to_themselves() {
    let reps = [
        Rep::Sum(vec![Rep::Scalar.times(5), Rep::V.times(5)]),
        Rep::V.pow(2),
        Rep::V.dual(),
        Rep::Tensor(vec![Rep::V, Rep::V.dual()]),
        Rep::Tensor(vec![Rep::V.dual(), Rep::V]),
        Rep::Tensor(vec![Rep::V, Rep::V]).times(2),
        Rep::Sum(vec![
            Rep::Sum(vec![Rep::V, Rep::Scalar]),
            Rep::Scalar.times(3),
        ]),
        Rep::V.dual().dual(),
        Rep::V.dual().pow(3),
        Rep::Sum(vec![Rep::V, Rep::Scalar]).dual(),
        Rep::V.pow(2).pow(2),
        symc::plan::uniform_rep(384, 4, false),
    ];
    for rep in reps {
        let text = rep.to_string();
        assert_eq!(symc::lang::parse_rep_expr(&text).unwrap(), rep, "{text}");
    }
}

#[test]
fn gradient_clipping_is_read_printed_back_and_checked() {
    let spec = |clip: &str| {
        format!(
            "model m {{\n  data builtin.mass_spring(trajectories = 4)\n  state q: R^1, p: R^1\n  \
             symmetry time => hamiltonian\n  net mlp(hidden = [8])\n  train (steps = 3{clip})\n}}\n"
        )
    };
    let base = Path::new(".");
    let graphs = symc::compile(&spec(", clip = 2.5"), "clip.sym", base)
        .unwrap()
        .graphs;
    assert_eq!(graphs[0].train.clip, Some(2.5));
    assert_eq!(
        symc::compile(&spec(""), "clip.sym", base).unwrap().graphs[0]
            .train
            .clip,
        None
    );
    // The builder writes the setting so that its text compiles to the same graph.
    let built = SpecBuilder::new().model(
        ModelBuilder::new("m")
            .data(builtin("mass_spring", &[("trajectories", 4.0)]))
            .state("q", PortType::Real(1))
            .state("p", PortType::Real(1))
            .symmetry(SymmetryKind::Time, Some(Strategy::Hamiltonian))
            .net(Net::Mlp {
                hidden: vec![8],
                act: Activation::Tanh,
                init: LinearInit::Uniform,
            })
            .train(TrainConfig {
                clip: Some(2.5),
                ..train(3, 1e-3, None)
            }),
    );
    assert!(built.source().contains("clip = 2.5"), "{}", built.source());
    assert_eq!(built.compile(base).unwrap().graphs[0].train.clip, Some(2.5));
    let errors = symc::compile(&spec(", clip = 0"), "clip.sym", base).unwrap_err();
    assert!(
        errors.render(false).contains("clip"),
        "{}",
        errors.render(false)
    );
}

#[test]
fn a_lagrangian_takes_damping_and_its_start() {
    let spec = |args: &str| {
        format!(
            "model m {{\n  data builtin.double_pendulum(trajectories = 4)\n  state q: R^2, qdot: R^2\n  \
             symmetry time => lagrangian{args}\n  net mlp(hidden = [8], act = softplus)\n}}\n"
        )
    };
    let base = Path::new(".");
    let op = |args: &str| {
        let graphs = symc::compile(&spec(args), "l.sym", base)
            .unwrap_or_else(|d| panic!("{d}"))
            .graphs;
        graphs[0].nodes[1].op.clone()
    };
    let damped = op("(damping = 0.5, init = uniform)");
    assert!(
        matches!(damped, symc::plan::Op::Lagrangian { damping, init: HeadInit::Uniform, .. } if damping == 0.5),
        "{damped:?}"
    );
    assert!(matches!(
        op(""),
        symc::plan::Op::Lagrangian { damping, init: HeadInit::Lnn, .. } if damping == 0.0
    ));
    // The clause prints back as written, and defaults print as the bare word.
    let strategy = Strategy::Lagrangian {
        damping: 0.5,
        init: HeadInit::Uniform,
    };
    assert_eq!(
        strategy.to_string(),
        "lagrangian(damping = 0.5, init = uniform)"
    );
    assert_eq!(op(&strategy.to_string()["lagrangian".len()..]), damped);
    // graph.yaml files from before the arguments existed say `strategy: lagrangian`.
    let plain = symc::compile(&spec(""), "l.sym", base).unwrap().graphs;
    let yaml = symc::plan::to_yaml(&plain).unwrap();
    assert!(yaml.contains("strategy: !lagrangian {}"), "{yaml}");
    let old = yaml.replace("strategy: !lagrangian {}", "strategy: lagrangian");
    assert_eq!(symc::plan::from_yaml(&old).unwrap(), plain);
    for (bad, word) in [
        ("(damping = -1)", "damping"),
        ("(init = xavier)", "init"),
        ("(weight = 1)", "weight"),
    ] {
        let errors = symc::compile(&spec(bad), "l.sym", base)
            .unwrap_err()
            .render(false);
        assert!(errors.contains(word), "{bad}: {errors}");
    }
}

#[test]
fn held_out_shares_of_a_builtin_set_reach_its_data() {
    let spec = "model m {\n  data builtin.double_pendulum(trajectories = 10, points = 5, \
                val_fraction = 0.2, test_fraction = 0.3)\n  state q: R^2, qdot: R^2\n  \
                symmetry time => lagrangian\n  net mlp(hidden = [8], act = softplus)\n}\n";
    let graphs = symc::compile(spec, "m.sym", Path::new("."))
        .unwrap_or_else(|d| panic!("{d}"))
        .graphs;
    let splits = symc::data::load(&graphs[0].data, Path::new(".")).unwrap();
    // 10 trajectories of 5 points: 3 for test, 2 for validation, 5 for training.
    assert_eq!(
        (splits.train.rows, splits.val.rows, splits.test.rows),
        (25, 10, 15)
    );
}
