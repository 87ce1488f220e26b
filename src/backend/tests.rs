//! Tests of the public `Model` API on small graphs.

use super::*;
use crate::plan::{
    Activation, DataConfig, LinearInit, LossKind, LossTerm, Node, Op, Port, TrainConfig,
};
use std::collections::BTreeMap;

/// A graph with the given nodes, input width and loss, everything else minimal.
pub(super) fn graph(
    in_dim: usize,
    nodes: Vec<Node>,
    task: Task,
    loss: LossKind,
    weight_decay: f64,
) -> ModelGraph {
    let output = nodes.len() - 1;
    let out_dim = nodes[output].out_dim;
    let parameters = nodes.iter().map(|n| n.params).sum();
    ModelGraph {
        model: "test".into(),
        task,
        inputs: vec![Port {
            name: "x".into(),
            dim: in_dim,
            rep: None,
        }],
        outputs: vec![Port {
            name: "y".into(),
            dim: out_dim,
            rep: None,
        }],
        groups: vec![],
        symmetries: vec![],
        nodes,
        output,
        losses: vec![LossTerm {
            kind: loss,
            weight: 1.0,
        }],
        data: DataConfig::Builtin {
            name: "none".into(),
            params: BTreeMap::new(),
        },
        train: TrainConfig {
            steps: 1,
            lr: 1e-3,
            batch: None,
            weight_decay,
            seed: 0,
            schedule: "constant".into(),
            clip: None,
        },
        parameters,
    }
}

/// in → hidden (act) → … → out, as the planner lays out an MLP.
pub(super) fn mlp(
    in_dim: usize,
    hidden: &[usize],
    out: usize,
    act: Activation,
    task: Task,
    loss: LossKind,
) -> ModelGraph {
    let mut nodes = vec![Node::new(0, Op::Input, vec![], in_dim, 0)];
    let mut width = in_dim;
    for &h in hidden.iter().chain([&out]) {
        let id = nodes.len();
        nodes.push(Node::new(
            id,
            Op::Linear {
                inp: width,
                out: h,
                bias: true,
                init: LinearInit::Uniform,
            },
            vec![id - 1],
            h,
            width * h + h,
        ));
        if nodes.len() < 2 * hidden.len() + 1 {
            nodes.push(Node::new(
                id + 1,
                Op::Activation { kind: act },
                vec![id],
                h,
                0,
            ));
        }
        width = h;
    }
    graph(in_dim, nodes, task, loss, 0.0)
}

/// x ~ N(0, 1) in 2D, y = sin(x₀) + x₁²/2.
pub(super) fn regression_data(rows: usize) -> (Vec<f32>, Vec<f32>) {
    let x = super::layers::testing::random_matrix(rows, 2, 3);
    let y = x
        .chunks(2)
        .map(|r| r[0].sin() + 0.5 * r[1] * r[1])
        .collect();
    (x, y)
}

#[test]
fn an_mlp_fits_a_smooth_function() {
    let g = mlp(
        2,
        &[32, 32],
        1,
        Activation::Tanh,
        Task::Regression,
        LossKind::Mse,
    );
    let mut model = Model::new(&g, 1).unwrap();
    assert_eq!(model.parameter_count(), g.parameters);
    let (x, y) = regression_data(64);
    let batch = Batch {
        x: &x,
        y: &y,
        rows: 64,
    };
    let before = model.evaluate(&batch).unwrap();
    for _ in 0..300 {
        model.train_step(&batch, 1e-2).unwrap();
    }
    let after = model.evaluate(&batch).unwrap();
    assert_eq!(after.terms.len(), 1);
    assert_eq!(after.terms[0].0, "mse");
    assert!(after.total < 0.02 * before.total, "{before:?} → {after:?}");
}

#[test]
fn forward_agrees_with_evaluate() {
    let g = mlp(
        2,
        &[8],
        1,
        Activation::Swish,
        Task::Regression,
        LossKind::Mse,
    );
    let model = Model::new(&g, 4).unwrap();
    let (x, y) = regression_data(10);
    let out = model.forward(&x, 10).unwrap();
    let mse = out
        .iter()
        .zip(&y)
        .map(|(p, t)| ((p - t) as f64).powi(2))
        .sum::<f64>()
        / 10.0;
    let loss = model
        .evaluate(&Batch {
            x: &x,
            y: &y,
            rows: 10,
        })
        .unwrap();
    assert!((loss.total - mse).abs() < 1e-6 * (1.0 + mse));
}

#[test]
fn same_graph_and_seed_train_bit_identically() {
    let g = mlp(
        2,
        &[300, 300],
        1,
        Activation::Tanh,
        Task::Regression,
        LossKind::Mse,
    );
    let (x, y) = regression_data(200);
    let batch = Batch {
        x: &x,
        y: &y,
        rows: 200,
    };
    let run = || {
        let mut model = Model::new(&g, 9).unwrap();
        let losses: Vec<f64> = (0..3)
            .map(|_| model.train_step(&batch, 1e-3).unwrap().total)
            .collect();
        (losses, model.named_parameters())
    };
    let (first, second) = (run(), run());
    assert_eq!(
        first.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        second.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    for (a, b) in first.1.iter().zip(&second.1) {
        assert!(
            a.data
                .iter()
                .zip(&b.data)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{}",
            a.name
        );
    }
    let other = Model::new(&g, 10).unwrap().named_parameters();
    assert_ne!(
        other[0].data,
        Model::new(&g, 9).unwrap().named_parameters()[0].data
    );
}

/// A 2 → 16 → 3 classifier on cross-entropy.
fn three_class_mlp(act: Activation) -> ModelGraph {
    mlp(
        2,
        &[16],
        3,
        act,
        Task::Classification { classes: 3 },
        LossKind::CrossEntropy,
    )
}

#[test]
fn a_classifier_learns_separable_classes() {
    let g = three_class_mlp(Activation::Relu);
    let mut model = Model::new(&g, 2).unwrap();
    let x = super::layers::testing::random_matrix(90, 2, 5);
    // The class is the sector of the plane the point lies in.
    let y: Vec<f32> = x
        .chunks(2)
        .map(|r| {
            ((r[1].atan2(r[0]) + std::f32::consts::PI) * 3.0 / std::f32::consts::TAU)
                .floor()
                .min(2.0)
        })
        .collect();
    let batch = Batch {
        x: &x,
        y: &y,
        rows: 90,
    };
    for _ in 0..400 {
        model.train_step(&batch, 1e-2).unwrap();
    }
    let logits = model.forward(&x, 90).unwrap();
    let correct = logits
        .chunks(3)
        .zip(&y)
        .filter(|(l, &c)| (0..3).max_by(|&a, &b| l[a].total_cmp(&l[b])) == Some(c as usize))
        .count();
    assert!(correct >= 80, "{correct}/90 correct");
}

#[test]
fn weight_decay_shrinks_weights_without_gradient() {
    // A zero-weight MSE leaves only the decoupled decay: θ ← θ·(1 − lr·λ).
    let mut g = mlp(2, &[], 1, Activation::Tanh, Task::Regression, LossKind::Mse);
    g.losses[0].weight = 0.0;
    g.train.weight_decay = 0.5;
    let mut model = Model::new(&g, 0).unwrap();
    let before = model.named_parameters();
    let (x, y) = regression_data(4);
    model
        .train_step(
            &Batch {
                x: &x,
                y: &y,
                rows: 4,
            },
            0.1,
        )
        .unwrap();
    for (a, b) in model.named_parameters().iter().zip(&before) {
        for (new, old) in a.data.iter().zip(&b.data) {
            assert!((new - old * 0.95).abs() < 1e-7);
        }
    }
}

#[test]
fn branches_and_concatenation_get_gradients() {
    // y = Linear([tanh(L1 x), x]): x is read twice, once through a concatenation.
    let nodes = vec![
        Node::new(0, Op::Input, vec![], 3, 0),
        Node::new(
            1,
            Op::Linear {
                inp: 3,
                out: 4,
                bias: false,
                init: LinearInit::Uniform,
            },
            vec![0],
            4,
            12,
        ),
        Node::new(
            2,
            Op::Activation {
                kind: Activation::Tanh,
            },
            vec![1],
            4,
            0,
        ),
        Node::new(
            3,
            Op::Linear {
                inp: 7,
                out: 2,
                bias: true,
                init: LinearInit::Uniform,
            },
            vec![2, 0],
            2,
            16,
        ),
    ];
    let g = graph(3, nodes, Task::Regression, LossKind::Mse, 0.0);
    let mut model = Model::new(&g, 0).unwrap();
    let x = super::layers::testing::random_matrix(5, 3, 8);
    let y = super::layers::testing::random_matrix(5, 2, 9);
    let batch = Batch {
        x: &x,
        y: &y,
        rows: 5,
    };
    let before = model.named_parameters();
    model.train_step(&batch, 1e-3).unwrap();
    // Adam's first step moves every entry with a non-zero gradient by about lr.
    for (a, b) in model.named_parameters().iter().zip(&before) {
        for (new, old) in a.data.iter().zip(&b.data) {
            assert!(
                ((new - old).abs() - 1e-3).abs() < 1e-4,
                "{}: {old} → {new}",
                a.name
            );
        }
    }
}

#[test]
fn parameters_round_trip_and_bad_loads_change_nothing() {
    let g = mlp(
        2,
        &[3],
        1,
        Activation::Sigmoid,
        Task::Regression,
        LossKind::Mse,
    );
    let source = Model::new(&g, 1).unwrap();
    let mut target = Model::new(&g, 2).unwrap();
    let names: Vec<String> = source
        .named_parameters()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["n1.weight", "n1.bias", "n3.weight", "n3.bias"]);
    assert_eq!(source.named_parameters()[0].shape, [3, 2]);
    let original = target.named_parameters();
    let mut bad = source.named_parameters();
    bad[2].shape = vec![1, 4];
    assert!(matches!(
        target.load_parameters(&bad),
        Err(BackendError::Parameter { .. })
    ));
    assert!(matches!(
        target.load_parameters(&source.named_parameters()[1..]),
        Err(BackendError::Parameter { .. })
    ));
    assert_eq!(target.named_parameters(), original);
    target.load_parameters(&source.named_parameters()).unwrap();
    let x = [0.3, -1.2];
    assert_eq!(
        target.forward(&x, 1).unwrap(),
        source.forward(&x, 1).unwrap()
    );
}

#[test]
fn unsupported_ops_and_bad_graphs_are_errors() {
    let mut g = mlp(
        2,
        &[3],
        1,
        Activation::Tanh,
        Task::Regression,
        LossKind::Mse,
    );
    g.nodes[1].op = Op::Hamiltonian {
        coordinates: 1,
        hidden: vec![3],
        act: Activation::Tanh,
    };
    assert_eq!(
        Model::new(&g, 0).err(),
        Some(BackendError::Unsupported {
            op: "hamiltonian".into()
        })
    );
    let mut g = mlp(
        2,
        &[3],
        1,
        Activation::Tanh,
        Task::Regression,
        LossKind::Mse,
    );
    g.parameters += 1;
    assert!(matches!(
        Model::new(&g, 0),
        Err(BackendError::ShapeMismatch { .. })
    ));
    let mut g = mlp(
        2,
        &[3],
        1,
        Activation::Tanh,
        Task::Regression,
        LossKind::Mse,
    );
    g.nodes[1].inputs = vec![2];
    assert!(matches!(
        Model::new(&g, 0),
        Err(BackendError::InvalidGraph(_))
    ));
    let model = Model::new(
        &mlp(
            2,
            &[3],
            1,
            Activation::Tanh,
            Task::Regression,
            LossKind::Mse,
        ),
        0,
    )
    .unwrap();
    assert!(matches!(
        model.forward(&[1.0; 5], 2),
        Err(BackendError::ShapeMismatch {
            expected: 4,
            found: 5,
            ..
        })
    ));
    let nan = [f32::NAN, 0.0];
    let mut model = model;
    let err = model
        .train_step(
            &Batch {
                x: &nan,
                y: &[0.0],
                rows: 1,
            },
            1e-3,
        )
        .unwrap_err();
    assert_eq!(
        err,
        BackendError::NonFinite {
            what: "loss".into()
        }
    );
}

/// EMLP(V + V² → scalar) over O(3): one gated layer of 8·scalar + 3·V + V²,
/// then an equivariant map to the scalar output. (Linear maps and gates alone
/// cannot make an invariant out of vectors — O(3) has no linear map V → V²
/// or V → scalar — so the input carries a V² for the scalars to read.)
fn emlp_input() -> crate::group::Rep {
    crate::group::Rep::Sum(vec![crate::group::Rep::V, crate::group::Rep::V.pow(2)])
}

fn emlp_graph() -> ModelGraph {
    use crate::group::{BasisSolver, Group, Rep};
    let group = Group::builtin("O", &[3]).unwrap();
    let mut solver = BasisSolver::new(&group);
    let hidden = Rep::Sum(vec![Rep::Scalar.times(8), Rep::V.times(3), Rep::V.pow(2)]);
    let gated = Rep::Sum(vec![hidden.clone(), Rep::Scalar.times(4)]);
    let mut linear = |id: usize, rep_in: &Rep, rep_out: &Rep| {
        let basis = solver.blocks(rep_in, rep_out).unwrap().dimension();
        let bias = solver.blocks(&Rep::Scalar, rep_out).unwrap().dimension();
        let op = Op::EquivariantLinear {
            group: group.name().into(),
            rep_in: rep_in.clone(),
            rep_out: rep_out.clone(),
            basis,
            bias,
        };
        Node::new(id, op, vec![id - 1], rep_out.size(3), basis + bias)
    };
    let gate = Op::Gated {
        group: group.name().into(),
        rep: hidden.clone(),
        gates: 4,
    };
    let nodes = vec![
        Node::new(0, Op::Input, vec![], 12, 0),
        linear(1, &emlp_input(), &gated),
        Node::new(2, gate, vec![1], hidden.size(3), 0),
        linear(3, &hidden, &Rep::Scalar),
    ];
    let mut g = graph(12, nodes, Task::Regression, LossKind::Mse, 0.0);
    g.groups = vec![super::layers::testing::group_def(&group)];
    g
}

#[test]
fn an_emlp_learns_an_invariant_and_stays_invariant() {
    let g = emlp_graph();
    let mut model = Model::new(&g, 3).unwrap();
    let rows = 64;
    let x = super::layers::testing::random_matrix(rows, 12, 21);
    // y = tanh(tr M) for the V² part M, an O(3) invariant.
    let y: Vec<f32> = x.chunks(12).map(|r| (r[3] + r[7] + r[11]).tanh()).collect();
    let batch = Batch { x: &x, y: &y, rows };
    let before = model.evaluate(&batch).unwrap().total;
    for _ in 0..200 {
        model.train_step(&batch, 1e-2).unwrap();
    }
    let after = model.evaluate(&batch).unwrap().total;
    assert!(after < 0.1 * before, "{before} → {after}");
    let group = crate::group::Group::builtin("O", &[3]).unwrap();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(4);
    let fx = model.forward(&x, rows).unwrap();
    for _ in 0..5 {
        let rho = emlp_input().rho(&group.sample(&mut rng));
        let gx: Vec<f32> = x
            .chunks(12)
            .flat_map(|r| {
                let v = nalgebra::DVector::from_iterator(12, r.iter().map(|&v| v as f64));
                (&rho * v).iter().map(|&v| v as f32).collect::<Vec<_>>()
            })
            .collect();
        let fgx = model.forward(&gx, rows).unwrap();
        let diff: f64 = fx
            .iter()
            .zip(&fgx)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum();
        let norm: f64 = fx.iter().map(|&a| (a as f64).powi(2)).sum();
        assert!(
            (diff / norm).sqrt() < 1e-5,
            "relative invariance error {}",
            (diff / norm).sqrt()
        );
    }
}

#[test]
fn an_emlp_trains_bit_identically() {
    let g = emlp_graph();
    let x = super::layers::testing::random_matrix(100, 12, 22);
    let y = super::layers::testing::random_matrix(100, 1, 23);
    let batch = Batch {
        x: &x,
        y: &y,
        rows: 100,
    };
    let run = || {
        let mut model = Model::new(&g, 5).unwrap();
        (0..3).for_each(|_| {
            model.train_step(&batch, 1e-2).unwrap();
        });
        model.forward(&x, 100).unwrap()
    };
    let (a, b) = (run(), run());
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
}

/// A fresh layered runner of `g` with its AdamW state.
fn fresh_layered(g: &ModelGraph, seed: u64) -> (Layered<Cpu>, AdamW) {
    let layered = Layered::new(g, Cpu::seed_from_u64(seed), seed).unwrap();
    let adam = AdamW::new(layered.tensor_lengths(), 0.0, None);
    (layered, adam)
}

/// Takes one split step of a fresh runner of `g` on `threads` threads,
/// checks its losses and parameters against the whole batch's step, and
/// returns the losses and the runner.
fn split_step_against_whole(
    g: &ModelGraph,
    batch: &Batch<'_>,
    threads: usize,
) -> (LossBreakdown, Layered<Cpu>, AdamW) {
    let (mut whole, mut adam) = fresh_layered(g, 6);
    let expected = whole.train_step(batch, 1e-3, &mut adam).unwrap();
    let (losses, split, adam) = super::kernels::on_threads(threads, || {
        let (mut split, mut adam) = fresh_layered(g, 6);
        let losses = split.train_step_split(batch, 1e-3, &mut adam).unwrap();
        (losses, split, adam)
    });
    assert!((losses.total - expected.total).abs() < 1e-6 * expected.total);
    for (a, b) in split
        .named_parameters()
        .iter()
        .zip(whole.named_parameters())
    {
        for (u, v) in a.data.iter().zip(&b.data) {
            assert!((u - v).abs() < 1e-6, "{}: {u} vs {v}", a.name);
        }
    }
    (losses, split, adam)
}

/// `rows` random inputs and targets for [`emlp_graph`], from `seed`.
fn emlp_rows(rows: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let x = super::layers::testing::random_matrix(rows, 12, seed);
    (x, super::layers::testing::random_matrix(rows, 1, seed + 1))
}

/// A batch of 300 rows split in halves gives the whole batch's losses and,
/// to rounding, its step; and the same bits on 1, 2 or 3 threads.
#[test]
fn a_split_step_is_the_whole_batch_step_on_any_number_of_threads() {
    let g = emlp_graph();
    let rows = 300;
    let (x, y) = emlp_rows(rows, 24);
    let batch = Batch { x: &x, y: &y, rows };
    let (losses, split, _) = split_step_against_whole(&g, &batch, 2);
    for threads in [1, 3] {
        let (other, other_split, _) = split_step_against_whole(&g, &batch, threads);
        assert_eq!(other.total.to_bits(), losses.total.to_bits());
        assert_eq!(other_split.named_parameters(), split.named_parameters());
    }
}

/// Evaluating and running a batch of 300 rows as halves gives the whole
/// batch's losses and outputs, with the same bits on 1, 2 or 3 threads.
#[test]
fn split_evaluation_and_outputs_are_the_whole_batchs_on_any_number_of_threads() {
    let g = emlp_graph();
    let rows = 300;
    let (x, y) = emlp_rows(rows, 26);
    let batch = Batch { x: &x, y: &y, rows };
    let (layered, _) = fresh_layered(&g, 7);
    let (whole_loss, whole_out) = (
        layered.evaluate(&batch).unwrap(),
        layered.forward(&x, rows).unwrap(),
    );
    let on = |threads: usize| {
        super::kernels::on_threads(threads, || {
            (
                layered.evaluate_split(&batch).unwrap(),
                layered.forward_split(&x, rows).unwrap(),
            )
        })
    };
    let (loss, out) = on(2);
    assert!((loss.total - whole_loss.total).abs() < 1e-6 * whole_loss.total);
    assert_eq!(loss.terms.len(), whole_loss.terms.len());
    assert_eq!(out.len(), whole_out.len());
    for (a, b) in out.iter().zip(&whole_out) {
        assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
    for threads in [1, 3] {
        let (other_loss, other_out) = on(threads);
        assert_eq!(other_loss.total.to_bits(), loss.total.to_bits());
        assert!(other_out
            .iter()
            .zip(&out)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    // An error in a half is reported as the whole batch's.
    let short = Batch {
        x: &x[..x.len() - 1],
        y: &y,
        rows,
    };
    let (split, whole) = (layered.evaluate_split(&short), layered.evaluate(&short));
    assert_eq!(
        split.unwrap_err().to_string(),
        whole.unwrap_err().to_string()
    );
}

/// A classifier's split step: one class index per row, halves weighted by
/// rows; a bad label is reported by its row in the whole batch.
#[test]
fn a_split_classifier_step_is_the_whole_batch_step() {
    let g = three_class_mlp(Activation::Tanh);
    let rows = 301;
    let (x, _) = regression_data(rows);
    let y: Vec<f32> = (0..rows).map(|r| (r % 3) as f32).collect();
    let batch = Batch { x: &x, y: &y, rows };
    let (_, mut split, mut adam) = split_step_against_whole(&g, &batch, 2);
    let mut bad = y.clone();
    bad[290] = 7.0;
    let batch = Batch {
        x: &x,
        y: &bad,
        rows,
    };
    let err = split.train_step_split(&batch, 1e-3, &mut adam).unwrap_err();
    assert!(err.to_string().contains("290"), "{err}");
}

/// The first model of the spec at `path` (relative to the crate root).
fn spec_graph(path: &str) -> ModelGraph {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join(path);
    let text = std::fs::read_to_string(&path).unwrap();
    let base = path.parent().unwrap();
    crate::compile(&text, &path.display().to_string(), base)
        .unwrap()
        .graphs
        .swap_remove(0)
}

#[test]
fn on_a_gpu_host_only_parts_are_errors_that_name_them() {
    for (spec, what) in [
        ("specs/digits_p4.sym", "`group_conv`"),
        ("specs/three_body_graph.sym", "(`graph_network`)"),
        ("specs/double_pendulum_lnn.sym", "(`lagrangian`)"),
        ("specs/o5_lie.sym", "loss term `lie_derivative`"),
    ] {
        let graph = spec_graph(spec);
        let err = Model::new_on(&graph, 0, DeviceKind::Cuda(0)).err();
        let Some(BackendError::HostOnly { what: found }) = &err else {
            panic!("{spec}: {err:?}");
        };
        assert!(found.contains(what), "{spec}: {found}");
        Model::new_on(&graph, 0, DeviceKind::Cpu).unwrap();
    }
}

#[cfg(not(feature = "cuda"))]
#[test]
fn without_the_cuda_feature_a_portable_graph_asks_for_it() {
    for spec in [
        "specs/o5_mlp.sym",
        "specs/o5_emlp.sym",
        "specs/mass_spring_hnn.sym",
    ] {
        let result = Model::new_on(&spec_graph(spec), 0, DeviceKind::Cuda(0));
        assert!(
            matches!(
                result,
                Err(BackendError::DeviceUnavailable {
                    device: DeviceKind::Cuda(0),
                    ..
                })
            ),
            "{spec}: {:?}",
            result.err()
        );
    }
}
