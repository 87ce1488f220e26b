//! The regularisers against host computations and finite differences.

use super::super::kernels::tape::host;
use super::super::layers::testing::random_matrix;
use super::*;
use crate::group::Rep;
use crate::plan::*;
use dfdx::tensor::{Cpu, OwnedTape};
use nalgebra::DMatrix;
use std::collections::BTreeMap;

type Traced = OwnedTape<f32, Cpu>;

fn linear(id: usize, input: usize, inp: usize, out: usize) -> Node {
    let op = Op::Linear {
        inp,
        out,
        bias: true,
        init: LinearInit::Uniform,
    };
    Node::new(id, op, vec![input], out, inp * out + out)
}

fn act(id: usize, input: usize, width: usize, kind: Activation) -> Node {
    Node::new(id, Op::Activation { kind }, vec![input], width, 0)
}

/// Rotations of the plane.
fn so2() -> GroupDef {
    GroupDef {
        name: "G".into(),
        n: 2,
        lie: vec![vec![vec![0.0, -1.0], vec![1.0, 0.0]]],
        discrete: vec![],
        tolerance: None,
    }
}

/// x₂ ↦ x₂ + t·x₁: a non-compact group under which functions of x₁ are invariant.
fn shear() -> GroupDef {
    GroupDef {
        name: "G".into(),
        n: 2,
        lie: vec![vec![vec![0.0, 0.0], vec![1.0, 0.0]]],
        discrete: vec![],
        tolerance: None,
    }
}

/// A graph over group `G` with the given ports, nodes and regulariser.
fn graph(
    group: GroupDef,
    rep_in: Rep,
    rep_out: Rep,
    nodes: Vec<Node>,
    term: LossKind,
) -> ModelGraph {
    let port = |name: &str, rep: Rep| Port {
        name: name.into(),
        dim: rep.size(group.n),
        rep: Some(PortRep {
            group: "G".into(),
            rep,
        }),
    };
    ModelGraph {
        model: "test".into(),
        task: Task::Regression,
        inputs: vec![port("x", rep_in)],
        outputs: vec![port("y", rep_out)],
        groups: vec![group],
        symmetries: vec![],
        output: nodes.len() - 1,
        parameters: nodes.iter().map(|n| n.params).sum(),
        nodes,
        losses: vec![
            LossTerm {
                kind: LossKind::Mse,
                weight: 1.0,
            },
            LossTerm {
                kind: term,
                weight: 0.7,
            },
        ],
        data: DataConfig::Builtin {
            name: "none".into(),
            params: BTreeMap::new(),
        },
        train: TrainConfig {
            steps: 1,
            lr: 1e-3,
            batch: None,
            weight_decay: 0.0,
            seed: 0,
            schedule: "constant".into(),
            clip: None,
        },
    }
}

/// An MLP 4 → 6 (tanh) → 5 (swish, a node of its own) → 2 on `2*V → V` of SO(2).
fn so2_mlp(term: LossKind) -> ModelGraph {
    let nodes = vec![
        Node::new(0, Op::Input, vec![], 4, 0),
        linear(1, 0, 4, 6),
        act(2, 1, 6, Activation::Tanh),
        linear(3, 2, 6, 5),
        act(4, 3, 5, Activation::Swish),
        act(5, 4, 5, Activation::Softplus),
        linear(6, 5, 5, 2),
    ];
    graph(so2(), Rep::V.times(2), Rep::V, nodes, term)
}

fn build(graph: &ModelGraph) -> (Network<Cpu>, Regularizer) {
    let net = Network::new(graph, Cpu::default(), 3).unwrap();
    let mut regs = Regularizer::compile(graph, 5).unwrap();
    assert_eq!(regs.len(), 1);
    (net, regs.remove(0))
}

fn value(r: &Regularizer, net: &Network<Cpu>, x: &[f32], rows: usize) -> f64 {
    r.apply::<Cpu, NoneTape>(net, x, rows).unwrap().array() as f64
}

fn forward(net: &Network<Cpu>, x: &[f32], rows: usize) -> DMatrix<f64> {
    let input = net
        .device()
        .tensor_from_vec(x.to_vec(), (rows, net.in_dim()));
    let y = host(&net.run(input).unwrap());
    DMatrix::from_row_slice(rows, net.out_dim(), &y).map(|v| v as f64)
}

fn matrix(rows: &[Vec<f64>]) -> DMatrix<f64> {
    crate::group::matrix_from_rows(rows).unwrap()
}

/// Block-diagonal copies of `m`.
fn blocks(m: &DMatrix<f64>, copies: usize) -> DMatrix<f64> {
    let n = m.nrows();
    let mut out = DMatrix::zeros(n * copies, n * copies);
    for c in 0..copies {
        out.view_mut((c * n, c * n), (n, n)).copy_from(m);
    }
    out
}

/// Compares the tape's parameter gradients of `r` with central differences.
fn check_parameter_gradients(
    make: impl Fn() -> Regularizer,
    net: &mut Network<Cpu>,
    x: &[f32],
    rows: usize,
) {
    let mut grads = make()
        .apply::<Cpu, Traced>(net, x, rows)
        .unwrap()
        .backward();
    let h = 1e-2f32;
    let count = net.params().count();
    for k in 0..count {
        let (handle, values, name) = {
            let p = net.params().nth(k).unwrap();
            (p.handle(), p.values(), p.name().to_string())
        };
        // Parameters the term does not read have no gradient entry yet: zeros.
        let g = grads.get_or_alloc_mut(&handle).unwrap().to_vec();
        for i in (0..values.len()).step_by(values.len().div_ceil(12)) {
            let mut at = |v: f32| {
                let mut shifted = values.clone();
                shifted[i] = v;
                net.params_mut().nth(k).unwrap().set(&shifted);
                value(&make(), net, x, rows)
            };
            let fd = (at(values[i] + h) - at(values[i] - h)) / (2.0 * h as f64);
            net.params_mut().nth(k).unwrap().set(&values);
            let tolerance = 3e-3 * (1.0 + g[i].abs() as f64);
            assert!(
                (fd - g[i] as f64).abs() < tolerance,
                "{name}[{i}]: tape {} vs finite differences {fd}",
                g[i]
            );
        }
    }
}

#[test]
fn stacked_tangents_are_directional_derivatives() {
    let graph = so2_mlp(LossKind::Mse);
    let net = Network::new(&graph, Cpu::default(), 1).unwrap();
    let rows = 3;
    let x = random_matrix(rows, 4, 1);
    let tangents = [random_matrix(rows, 4, 2), random_matrix(rows, 4, 3)];
    let stacked: Vec<f32> = x.iter().chain(tangents.iter().flatten()).copied().collect();
    let input = net.device().tensor_from_vec(stacked, (3 * rows, 4));
    let out = host(&net.run_stacked(input, rows).unwrap());
    let fx = forward(&net, &x, rows);
    for (i, v) in fx.transpose().iter().enumerate() {
        assert!((out[i] as f64 - v).abs() < 1e-6, "value {i}");
    }
    let h = 1e-2;
    for (k, t) in tangents.iter().enumerate() {
        let shifted = |s: f32| -> Vec<f32> { x.iter().zip(t).map(|(x, t)| x + s * t).collect() };
        let fd = (forward(&net, &shifted(h), rows) - forward(&net, &shifted(-h), rows))
            / (2.0 * h as f64);
        let block = &out[(k + 1) * rows * 2..(k + 2) * rows * 2];
        for (i, v) in fd.transpose().iter().enumerate() {
            assert!(
                (block[i] as f64 - v).abs() < 2e-3 * (1.0 + v.abs()),
                "tangent {k}, entry {i}: {} vs {v}",
                block[i]
            );
        }
    }
}

#[test]
fn lie_penalty_matches_finite_differences_of_the_network() {
    let graph = so2_mlp(LossKind::LieDerivative { group: "G".into() });
    let (mut net, r) = build(&graph);
    let rows = 4;
    let x = random_matrix(rows, 4, 7);
    let a = matrix(&so2().lie[0]);
    let (d_in, d_out) = (blocks(&a, 2), a.clone());
    let xs = DMatrix::from_row_slice(rows, 4, &x).map(|v| v as f64);
    let tangent = &xs * d_in.transpose();
    let h = 1e-2;
    let at = |s: f64| {
        let moved: Vec<f32> = (&xs + &tangent * s)
            .transpose()
            .iter()
            .map(|&v| v as f32)
            .collect();
        forward(&net, &moved, rows)
    };
    let jvp = (at(h) - at(-h)) / (2.0 * h);
    let residual = jvp - forward(&net, &x, rows) * d_out.transpose();
    let expected = 0.7 * residual.norm_squared() / (rows * 2) as f64;
    let found = value(&r, &net, &x, rows);
    assert!(expected > 1e-3, "a random MLP is not equivariant");
    assert!(
        (found - expected).abs() < 1e-3 * expected,
        "{found} vs {expected}"
    );
    check_parameter_gradients(|| build(&graph).1, &mut net, &x, rows);
}

#[test]
fn sampled_penalty_matches_a_host_computation() {
    let samples = 3;
    let term = LossKind::SampledEquivariance {
        group: "G".into(),
        samples,
    };
    let graph = so2_mlp(term);
    let (mut net, r) = build(&graph);
    let rows = 5;
    let x = random_matrix(rows, 4, 9);
    // The same stream the regulariser draws from (seed 5, term index 1).
    let mut rng = StdRng::seed_from_u64(5 ^ (2 << 32));
    let group = group_from_def(&so2()).unwrap();
    let xs = DMatrix::from_row_slice(rows, 4, &x).map(|v| v as f64);
    let fx = forward(&net, &x, rows);
    let mut sum = 0.0;
    for _ in 0..samples {
        let g = group.sample(&mut rng);
        let moved: Vec<f32> = (&xs * blocks(&g, 2).transpose())
            .transpose()
            .iter()
            .map(|&v| v as f32)
            .collect();
        sum += (forward(&net, &moved, rows) - &fx * g.transpose()).norm_squared();
    }
    let expected = 0.7 * sum / (samples * rows * 2) as f64;
    let found = value(&r, &net, &x, rows);
    assert!(
        (found - expected).abs() < 1e-4 * expected,
        "{found} vs {expected}"
    );
    check_parameter_gradients(|| build(&graph).1, &mut net, &x, rows);
}

#[test]
fn penalties_vanish_on_an_exactly_invariant_network() {
    for term in [
        LossKind::LieDerivative { group: "G".into() },
        LossKind::SampledEquivariance {
            group: "G".into(),
            samples: 4,
        },
    ] {
        let nodes = vec![
            Node::new(0, Op::Input, vec![], 2, 0),
            linear(1, 0, 2, 8),
            act(2, 1, 8, Activation::Tanh),
            linear(3, 2, 8, 1),
        ];
        let graph = graph(shear(), Rep::V, Rep::Scalar, nodes, term);
        let (mut net, r) = build(&graph);
        // Blind the network to x₂, which is all the shear moves.
        let weight = net.params_mut().next().unwrap();
        let mut w = weight.values();
        w.iter_mut().skip(1).step_by(2).for_each(|v| *v = 0.0);
        weight.set(&w);
        let x = random_matrix(6, 2, 4);
        let found = value(&r, &net, &x, 6);
        assert!(found < 1e-12, "{}: {found}", r.name());
    }
}

#[test]
fn the_chamfer_distance_of_a_closed_orbit_is_zero() {
    let quarter = [0.0, -1.0, 1.0, 0.0];
    let closed = [1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, -1.0];
    let (value, grad) = ops::chamfer(&closed, (4, 2), &[quarter.to_vec()]);
    assert_eq!(value, 0.0);
    assert!(grad.iter().all(|&g| g == 0.0));
    // Rows (1, 0) and (0, 2): (1, 0)ρ = (0, −1) is nearest (1, 0), at distance² 2;
    // (0, 2)ρ = (2, 0) is nearest (1, 0), at 1. The mean is (2 + 1)/2.
    let (value, _) = ops::chamfer(&[1.0, 0.0, 0.0, 2.0], (2, 2), &[quarter.to_vec()]);
    assert!((value - 1.5).abs() < 1e-6, "{value}");
}

#[test]
fn weight_orbit_gradient_matches_finite_differences() {
    let graph = so2_mlp(LossKind::WeightOrbit { group: "G".into() });
    let (mut net, r) = build(&graph);
    let x = random_matrix(2, 4, 1);
    assert!(value(&r, &net, &x, 2) > 1e-3);
    check_parameter_gradients(|| build(&graph).1, &mut net, &x, 2);
}

#[test]
fn soft_prior_weighs_the_two_paths() {
    let nodes = vec![
        Node::new(0, Op::Input, vec![], 2, 0),
        Node::new(
            1,
            Op::EquivariantLinear {
                group: "G".into(),
                rep_in: Rep::V,
                rep_out: Rep::V,
                basis: 2,
                bias: 0,
            },
            vec![0],
            2,
            2,
        ),
        linear(2, 0, 2, 2),
        Node::new(3, Op::Sum, vec![1, 2], 2, 0),
    ];
    let term = LossKind::SoftPrior {
        group: "G".into(),
        equivariant: 0.07,
    };
    let graph = graph(so2(), Rep::V, Rep::V, nodes, term);
    let (net, r) = build(&graph);
    let squares = |id: usize| -> f64 {
        net.node_params(id)
            .iter()
            .flat_map(|p| p.values())
            .map(|v| (v as f64).powi(2))
            .sum()
    };
    let expected = 0.7 * squares(2) + 0.07 * squares(1);
    let found = value(&r, &net, &[0.0; 2], 1);
    assert!(
        (found - expected).abs() < 1e-6 * expected,
        "{found} vs {expected}"
    );
    let grads = r
        .apply::<Cpu, Traced>(&net, &[0.0; 2], 1)
        .unwrap()
        .backward();
    for (id, c) in [(1, 0.07), (2, 0.7)] {
        for p in net.node_params(id) {
            let g = grads.get(&p.handle()).as_vec();
            for (g, v) in g.iter().zip(p.values()) {
                assert!((g - 2.0 * c * v).abs() < 1e-6, "{}", p.name());
            }
        }
    }
}
