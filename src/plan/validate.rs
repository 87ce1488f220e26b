//! The validation pass over a [`ModelGraph`]: the invariants of the IR and the
//! shapes of every node. A graph that passes can be built by a backend without
//! further checks; one read back from YAML should be validated before use.

use super::*;

/// A broken IR invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("node {index} has id {id}")]
    Id { index: usize, id: usize },
    #[error("node {node} reads node {input}, which is not an earlier node")]
    Order { node: usize, input: usize },
    #[error("node {node} expects an input of width {expected}, found {found}")]
    InputWidth {
        node: usize,
        expected: usize,
        found: usize,
    },
    #[error("node {node} should output {expected} values, but says {found}")]
    OutputWidth {
        node: usize,
        expected: usize,
        found: usize,
    },
    #[error("node {node} should own {expected} parameters, but says {found}")]
    Params {
        node: usize,
        expected: usize,
        found: usize,
    },
    #[error("group `{0}` is used but not defined")]
    UndefinedGroup(String),
    #[error("the output node {0} does not exist")]
    NoOutput(usize),
    #[error("the graph says it has {found} parameters, but its nodes own {expected}")]
    TotalParams { expected: usize, found: usize },
}

/// Facts about a valid graph that a backend needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shapes {
    /// Width of each node's (concatenated) input; 0 for the input node.
    pub input_widths: Vec<usize>,
}

/// Checks the invariants listed in the IR's documentation and every node's shapes.
///
/// ```
/// use symc::plan::{validate, ModelGraph};
/// let src = "model m {\n data builtin.mass_spring()\n state q: R^1, p: R^1\n}\n";
/// let graphs: Vec<ModelGraph> = symc::compile(src, "m.sym", ".".as_ref()).unwrap().graphs;
/// let shapes = validate(&graphs[0]).unwrap();
/// assert_eq!(shapes.input_widths[1], 2);
/// ```
pub fn validate(g: &ModelGraph) -> Result<Shapes, ValidationError> {
    let group_n = |name: &str| {
        g.groups
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.n)
            .ok_or_else(|| ValidationError::UndefinedGroup(name.to_string()))
    };
    for p in g.inputs.iter().chain(&g.outputs) {
        if let Some(r) = &p.rep {
            group_n(&r.group)?;
        }
    }
    for l in &g.losses {
        match &l.kind {
            LossKind::SampledEquivariance { group, .. }
            | LossKind::LieDerivative { group }
            | LossKind::WeightOrbit { group }
            | LossKind::SoftPrior { group, .. }
            | LossKind::PoissonBracket { group } => {
                group_n(group)?;
            }
            LossKind::Mse | LossKind::CrossEntropy => {}
        }
    }
    let n_in: usize = g.inputs.iter().map(|p| p.dim).sum();
    let n_out: usize = g.outputs.iter().map(|p| p.dim).sum();
    let mut widths = Vec::with_capacity(g.nodes.len());
    for (index, node) in g.nodes.iter().enumerate() {
        let id = node.id;
        if id != index {
            return Err(ValidationError::Id { index, id });
        }
        let mut width = 0;
        for &input in &node.inputs {
            if input >= id {
                return Err(ValidationError::Order { node: id, input });
            }
            width += g.nodes[input].out_dim;
        }
        let expect_in = |expected: usize| {
            if width == expected {
                Ok(())
            } else {
                Err(ValidationError::InputWidth {
                    node: id,
                    expected,
                    found: width,
                })
            }
        };
        // (output width, parameters) the op implies; `None` where the node decides.
        let (out, params) = match &node.op {
            Op::Input => {
                expect_in(0)?;
                (Some(n_in), Some(0))
            }
            Op::Linear { inp, out, bias, .. } => {
                expect_in(*inp)?;
                (Some(*out), Some(inp * out + if *bias { *out } else { 0 }))
            }
            Op::Activation { .. } | Op::NormNonlinearity { .. } => (Some(width), Some(0)),
            Op::EquivariantLinear {
                group,
                rep_in,
                rep_out,
                basis,
                bias,
            } => {
                let n = group_n(group)?;
                expect_in(rep_in.size(n))?;
                (Some(rep_out.size(n)), Some(basis + bias))
            }
            Op::Gated { group, rep, gates } => {
                let n = group_n(group)?;
                expect_in(rep.size(n) + gates)?;
                (Some(rep.size(n)), Some(0))
            }
            Op::Bilinear { group, rep, .. } => {
                let n = group_n(group)?;
                expect_in(rep.size(n))?;
                (Some(rep.size(n)), None)
            }
            Op::Hamiltonian { coordinates, .. } | Op::Lagrangian { coordinates, .. } => {
                expect_in(2 * coordinates)?;
                (Some(2 * coordinates), None)
            }
            Op::HamiltonianGraph { bodies, dims, .. } => {
                expect_in(2 * bodies * dims)?;
                (Some(2 * bodies * dims), None)
            }
            Op::GraphNetwork {
                bodies, features, ..
            } => {
                expect_in(bodies * features)?;
                (None, None)
            }
            Op::GroupConv {
                group,
                channels,
                height,
                width: w,
                ..
            } => {
                group_n(group)?;
                expect_in(height * w)?;
                (channels.last().copied(), None)
            }
            Op::Conv {
                height, width: w, ..
            } => {
                expect_in(height * w)?;
                (None, None)
            }
            Op::Sum => {
                let uneven = node
                    .inputs
                    .iter()
                    .map(|&i| g.nodes[i].out_dim)
                    .find(|&w| w != node.out_dim);
                if let Some(found) = uneven {
                    return Err(ValidationError::InputWidth {
                        node: id,
                        expected: node.out_dim,
                        found,
                    });
                }
                (None, Some(0))
            }
        };
        if let Some(expected) = out.filter(|&e| e != node.out_dim) {
            return Err(ValidationError::OutputWidth {
                node: id,
                expected,
                found: node.out_dim,
            });
        }
        if let Some(expected) = params.filter(|&e| e != node.params) {
            return Err(ValidationError::Params {
                node: id,
                expected,
                found: node.params,
            });
        }
        widths.push(width);
    }
    let out_node = g
        .nodes
        .get(g.output)
        .ok_or(ValidationError::NoOutput(g.output))?;
    if out_node.out_dim != n_out {
        return Err(ValidationError::OutputWidth {
            node: g.output,
            expected: n_out,
            found: out_node.out_dim,
        });
    }
    let total: usize = g.nodes.iter().map(|n| n.params).sum();
    if total != g.parameters {
        return Err(ValidationError::TotalParams {
            expected: total,
            found: g.parameters,
        });
    }
    Ok(Shapes {
        input_widths: widths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn tiny() -> ModelGraph {
        ModelGraph {
            model: "m".into(),
            task: Task::Regression,
            inputs: vec![Port {
                name: "x".into(),
                dim: 3,
                rep: None,
            }],
            outputs: vec![Port {
                name: "y".into(),
                dim: 2,
                rep: None,
            }],
            groups: vec![],
            symmetries: vec![],
            nodes: vec![
                Node::new(0, Op::Input, vec![], 3, 0),
                Node::new(
                    1,
                    Op::Linear {
                        inp: 3,
                        out: 2,
                        bias: true,
                        init: LinearInit::Uniform,
                    },
                    vec![0],
                    2,
                    8,
                ),
            ],
            output: 1,
            losses: vec![LossTerm {
                kind: LossKind::Mse,
                weight: 1.0,
            }],
            data: DataConfig::Builtin {
                name: "o5_synthetic".into(),
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
            parameters: 8,
        }
    }

    #[test]
    fn a_consistent_graph_passes() {
        assert_eq!(validate(&tiny()).unwrap().input_widths, vec![0, 3]);
    }

    #[test]
    fn each_broken_invariant_is_named() {
        let mut g = tiny();
        g.nodes[1].inputs = vec![1];
        assert_eq!(
            validate(&g),
            Err(ValidationError::Order { node: 1, input: 1 })
        );
        let mut g = tiny();
        g.nodes[1].params = 6;
        assert_eq!(
            validate(&g),
            Err(ValidationError::Params {
                node: 1,
                expected: 8,
                found: 6
            })
        );
        let mut g = tiny();
        g.parameters = 9;
        assert_eq!(
            validate(&g),
            Err(ValidationError::TotalParams {
                expected: 8,
                found: 9
            })
        );
        let mut g = tiny();
        g.outputs[0].dim = 4;
        assert_eq!(
            validate(&g),
            Err(ValidationError::OutputWidth {
                node: 1,
                expected: 4,
                found: 2
            })
        );
        let mut g = tiny();
        g.losses.push(LossTerm {
            kind: LossKind::LieDerivative { group: "G".into() },
            weight: 1.0,
        });
        assert_eq!(
            validate(&g),
            Err(ValidationError::UndefinedGroup("G".into()))
        );
        let mut g = tiny();
        g.nodes[1].op = Op::Linear {
            inp: 4,
            out: 2,
            bias: true,
            init: LinearInit::Uniform,
        };
        assert_eq!(
            validate(&g),
            Err(ValidationError::InputWidth {
                node: 1,
                expected: 4,
                found: 3
            })
        );
    }
}
