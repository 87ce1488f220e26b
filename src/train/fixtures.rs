//! A tiny model and data set for the tests of this module.

use crate::data::{Splits, Table};
use crate::group::Rep;
use crate::plan::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::BTreeMap;

/// An MLP 6 → 8 → 1 on two vectors of O(3), predicting the invariant |a|² − a·b,
/// with the O(3) symmetry declared but not enforced (`=> none`).
pub(crate) fn tiny_graph() -> ModelGraph {
    let over_o3 = |rep| {
        Some(PortRep {
            group: "O3".into(),
            rep,
        })
    };
    // Rotations about the three axes, and one reflection.
    let generator = |i: usize, j: usize| {
        let mut a = vec![vec![0.0; 3]; 3];
        a[i][j] = -1.0;
        a[j][i] = 1.0;
        a
    };
    ModelGraph {
        model: "tiny".into(),
        task: Task::Regression,
        inputs: vec![Port {
            name: "x".into(),
            dim: 6,
            rep: over_o3(Rep::Mul(2, Box::new(Rep::V))),
        }],
        outputs: vec![Port {
            name: "y".into(),
            dim: 1,
            rep: over_o3(Rep::Scalar),
        }],
        groups: vec![GroupDef {
            name: "O3".into(),
            n: 3,
            lie: vec![generator(1, 2), generator(2, 0), generator(0, 1)],
            discrete: vec![vec![
                vec![-1.0, 0.0, 0.0],
                vec![0.0, 1.0, 0.0],
                vec![0.0, 0.0, 1.0],
            ]],
            tolerance: None,
        }],
        symmetries: vec![SymmetryPlan {
            symmetry: "O3".into(),
            strategy: Strategy::None,
            reason: "baseline".into(),
            tolerance: None,
        }],
        nodes: vec![
            Node::new(0, Op::Input, vec![], 6, 0),
            Node::new(
                1,
                Op::Linear {
                    inp: 6,
                    out: 8,
                    bias: true,
                    init: LinearInit::Uniform,
                },
                vec![0],
                8,
                56,
            ),
            Node::new(
                2,
                Op::Activation {
                    kind: Activation::Tanh,
                },
                vec![1],
                8,
                0,
            ),
            Node::new(
                3,
                Op::Linear {
                    inp: 8,
                    out: 1,
                    bias: true,
                    init: LinearInit::Uniform,
                },
                vec![2],
                1,
                9,
            ),
        ],
        output: 3,
        losses: vec![LossTerm {
            kind: LossKind::Mse,
            weight: 1.0,
        }],
        data: DataConfig::Builtin {
            name: "tiny".into(),
            params: BTreeMap::new(),
        },
        train: TrainConfig {
            steps: 20,
            lr: 1e-2,
            batch: Some(16),
            weight_decay: 0.0,
            seed: 0,
            schedule: "constant".into(),
            clip: None,
        },
        parameters: 65,
    }
}

/// 40 training, 10 validation and 10 test rows of the tiny task.
pub(crate) fn tiny_splits() -> Splits {
    let mut rng = StdRng::seed_from_u64(7);
    let mut table = |rows: usize| {
        let x: Vec<f32> = (0..rows * 6).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let y = x
            .chunks(6)
            .map(|v| {
                let (a, b) = v.split_at(3);
                a.iter().map(|t| t * t).sum::<f32>()
                    - a.iter().zip(b).map(|(s, t)| s * t).sum::<f32>()
            })
            .collect();
        Table {
            x,
            y,
            rows,
            x_dim: 6,
            y_dim: 1,
        }
    };
    Splits {
        train: table(40),
        val: table(10),
        test: table(10),
    }
}
