//! The planner: a checked [`Spec`] → one [`ModelGraph`] per model.
//!
//! For each symmetry it keeps the strategy the spec chose (or the documented
//! default, [`SymmetryKind::default_strategy`]), records one line saying why, and
//! builds the network that strategy asks for:
//!
//! | strategy | nodes |
//! | --- | --- |
//! | none, `loss`, `augment`, no symmetry | MLP: `Linear` + `Activation` per hidden layer, then `Linear` |
//! | `architecture` on a group | EMLP: per layer `EquivariantLinear` to hidden rep + gates, `Bilinear`, `Gated`; then `EquivariantLinear` to the output rep |
//! | `soft` on a group | the EMLP above with every `EquivariantLinear` paired with an unconstrained `Linear` of the same shape, the two summed by a `Sum` node (residual pathway priors) |
//! | `hamiltonian` / `lagrangian` on `time` | one `Hamiltonian` / `Lagrangian` node |
//! | `graph` on `translation` / `permutation` | one `GraphNetwork` node |
//! | `hamiltonian` on `time` with `graph` on `translation` / `permutation` | one `HamiltonianGraph` node |
//! | `group_conv` on `rotation(4)` (+ `reflection`) | `GroupConv` (p4 / p4m) with invariant pooling, then `Linear` |
//! | `learn(...) => operator` | the input alone: the generators are the result |
//! | `learn(...) => invariance` | the MLP predictor whose invariances are learned |
//! | `learn(generators, dim) => latent` | an autoencoder of two MLPs: the `net`'s `hidden` layers from the input down to a `dim`-dimensional code, the same layers in reverse from the code back up to the output |
//!
//! Regularisers: `loss` adds the penalty the spec names (`penalty = sampled`,
//! `lie` or `orbit`); without one, `SampledEquivariance` for groups that act
//! orthogonally (sampling their elements is well defined) and `LieDerivative`
//! for the others (random elements of a non-compact group are unbounded, its
//! generators are not). `soft` adds `SoftPrior`: the spec's weight on the
//! unconstrained path, [`SOFT_EQUIVARIANT_RATIO`] times it on the equivariant one.
//! Beside `time => hamiltonian`, `loss` on a group acting on the state adds
//! `PoissonBracket` instead: the head's output is a field, and the symmetry
//! asked for is H's invariance.

use super::emlp::{gate_count, uniform_rep, BilinearPlan, BILINEAR_CHANNELS};
use super::validate::{validate, ValidationError};
use super::*;
use crate::group::{BasisSolver, Group, GroupError, Rep};
use crate::lang::{Diagnostic, Model, NamedGroup, Net, Port, Span, Spec, Symmetry, SymmetryKind};
use std::collections::HashMap;

/// Relative equivariance error an architectural strategy must stay under in
/// `symc check`: float32 rounding through a few layers, with room to spare.
const ARCHITECTURE_TOLERANCE: f64 = 1e-4;
/// Non-orthogonal groups amplify rounding by the condition number of ρ(g).
const NON_COMPACT_TOLERANCE: f64 = 1e-3;
/// The L2 prior on a soft model's equivariant path relative to the one on its
/// unconstrained path: Finzi et al.'s defaults (10² and 10⁻³) differ by 10⁵.
const SOFT_EQUIVARIANT_RATIO: f64 = 1e-5;

/// What can go wrong while planning a checked spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The group engine could not solve for an equivariant basis.
    #[error("cannot build the equivariant layer {rep_in} → {rep_out} over `{group}`: {error}")]
    Basis {
        span: Span,
        group: String,
        rep_in: Rep,
        rep_out: Rep,
        error: GroupError,
    },
    /// A symmetry names a group the spec does not declare.
    #[error("the symmetry's group `{group}` is not declared")]
    UnknownGroup { span: Span, group: String },
    /// The spec's `net` is not the kind its architecture needs.
    #[error("net `{net}` does not fit this model's architecture")]
    NetMismatch { span: Span, net: &'static str },
    /// `time => hamiltonian` beside a graph network on a state that is not
    /// the positions and momenta of bodies.
    #[error("a Hamiltonian graph network {problem}")]
    HamiltonianGraph { span: Span, problem: String },
    /// The emitted graph broke an IR invariant (a planner bug, reported, not panicked on).
    #[error("the planned graph is invalid: {error}")]
    Invalid { span: Span, error: ValidationError },
}

impl From<&PlanError> for Diagnostic {
    fn from(e: &PlanError) -> Diagnostic {
        match e {
            PlanError::Basis { span, group, .. } => Diagnostic::error(e.to_string())
                .with_primary(*span, format!("the symmetry `{group}` is honoured here"))
                .with_help("use fewer channels (`net emlp(channels = …)`) or `=> loss(...)`"),
            PlanError::UnknownGroup { span, .. } | PlanError::NetMismatch { span, .. } => {
                Diagnostic::error(e.to_string())
                    .with_primary(*span, "in this model")
                    .with_note("the checker refuses this in spec text; a `Spec` changed by hand must keep its rules")
            }
            PlanError::HamiltonianGraph { span, .. } => Diagnostic::error(e.to_string())
                .with_primary(*span, "this symmetry asks for it")
                .with_help("declare `state q: R^[bodies, dims], p: R^[bodies, dims]` and `symmetry translation(on q) => graph`"),
            PlanError::Invalid { span, .. } => Diagnostic::error(e.to_string())
                .with_primary(*span, "in this model")
                .with_note("this is a bug in symc's planner; please report it with the spec"),
        }
    }
}

/// Plans every model of a spec.
pub fn plan(spec: &Spec) -> Result<Vec<ModelGraph>, Vec<PlanError>> {
    let mut solvers = HashMap::new();
    let (mut graphs, mut errors) = (Vec::new(), Vec::new());
    for model in &spec.models {
        match plan_model(spec, model, &mut solvers) {
            Ok(g) => graphs.push(g),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(graphs)
    } else {
        Err(errors)
    }
}

/// Basis solvers by group name, shared across models so equal blocks solve once.
type Solvers = HashMap<String, BasisSolver>;

fn plan_model(spec: &Spec, model: &Model, solvers: &mut Solvers) -> Result<ModelGraph, PlanError> {
    let mut b = GraphBuilder { nodes: Vec::new() };
    let n_in: usize = model.inputs.iter().map(Port::dim).sum();
    let n_out: usize = model.outputs.iter().map(Port::dim).sum();
    let input = b.push(Op::Input, None, n_in, 0, None);
    let base = model
        .symmetries
        .iter()
        .find(|s| shapes_network(&s.strategy));
    let kind = base.map(|s| (&s.kind, &s.strategy));
    // On a Hamiltonian head a group's loss acts on H through its flow on phase space.
    let hamiltonian = model
        .symmetries
        .iter()
        .any(|s| s.kind == SymmetryKind::Time && s.strategy == Strategy::Hamiltonian);
    // Time symmetry by a Hamiltonian and translations or permutations by a
    // graph network make one model: H as a sum over bodies and pairs.
    let hamiltonian_graph = hamiltonian
        && model
            .symmetries
            .iter()
            .any(|s| s.strategy == Strategy::Graph);
    let net = model.net.clone().or_else(|| {
        Net::defaults(match kind.map(|k| k.1) {
            _ if hamiltonian_graph => "graph",
            Some(Strategy::Architecture | Strategy::Soft { .. }) => "emlp",
            Some(Strategy::Graph) => "graph",
            Some(Strategy::GroupConv) => "gcnn",
            _ => "mlp",
        })
    });
    let output = match (kind, net) {
        (Some(_), Some(Net::Graph { hidden, act })) if hamiltonian_graph => {
            hamiltonian_graph_network(&mut b, model, input, hidden, act)?
        }
        (
            Some((SymmetryKind::Learn { .. }, Strategy::Invariance)),
            Some(Net::Mlp { hidden, act, init }),
        ) => mlp(&mut b, input, n_in, &hidden, (act, init), n_out),
        (
            Some((SymmetryKind::Learn { dim, .. }, Strategy::Latent)),
            Some(Net::Mlp { hidden, act, init }),
        ) => {
            let code = mlp(&mut b, input, n_in, &hidden, (act, init), *dim);
            let mirrored: Vec<usize> = hidden.iter().rev().copied().collect();
            mlp(&mut b, code, *dim, &mirrored, (act, init), n_out)
        }
        (Some((SymmetryKind::Learn { .. }, _)), _) => input,
        (Some((SymmetryKind::Group(g), strategy)), Some(Net::Emlp { channels, layers })) => {
            let (Some(named), Some(s)) = (spec.group(g), base) else {
                return Err(PlanError::UnknownGroup {
                    span: model.span,
                    group: g.clone(),
                });
            };
            let shape = EmlpShape {
                channels,
                layers,
                residual: matches!(strategy, Strategy::Soft { .. }),
            };
            emlp(&mut b, solvers, named, model, shape, s.span)?
        }
        (Some((SymmetryKind::Time, strategy)), Some(Net::Mlp { hidden, act, .. })) => {
            let coordinates = n_in / 2;
            let params = mlp_params(n_in, &hidden, 1);
            let op = if let Strategy::Lagrangian { damping, init } = *strategy {
                Op::Lagrangian {
                    coordinates,
                    hidden,
                    act,
                    damping,
                    init,
                }
            } else {
                Op::Hamiltonian {
                    coordinates,
                    hidden,
                    act,
                }
            };
            b.push(op, Some(input), n_out, params, Some("time"))
        }
        (
            Some((SymmetryKind::Translation { .. } | SymmetryKind::Permutation { .. }, _)),
            Some(Net::Graph { hidden, act }),
        ) => graph_network(&mut b, model, input, n_out, hidden, act),
        (
            Some((SymmetryKind::Rotation(_) | SymmetryKind::Reflection, _)),
            Some(Net::Gcnn { channels, kernel }),
        ) => group_conv(&mut b, model, input, n_out, channels, kernel),
        (None, Some(Net::Mlp { hidden, act, init })) => {
            mlp(&mut b, input, n_in, &hidden, (act, init), n_out)
        }
        (_, net) => {
            let net = net.map_or("none", |n| n.keyword());
            return Err(PlanError::NetMismatch {
                span: model.span,
                net,
            });
        }
    };

    let mut losses = vec![LossTerm {
        kind: match model.task {
            Task::Classification { .. } => LossKind::CrossEntropy,
            _ => LossKind::Mse,
        },
        weight: 1.0,
    }];
    let mut symmetries = Vec::new();
    for s in &model.symmetries {
        let compact = match &s.kind {
            SymmetryKind::Group(g) => spec.group(g).map_or(true, |n| n.group.is_compact()),
            _ => true,
        };
        if let SymmetryKind::Group(g) = &s.kind {
            let group = g.clone();
            match s.strategy {
                Strategy::Loss { weight, .. } if hamiltonian => losses.push(LossTerm {
                    kind: LossKind::PoissonBracket { group },
                    weight,
                }),
                Strategy::Loss {
                    weight,
                    samples,
                    penalty,
                } => {
                    let default = if compact {
                        Penalty::Sampled
                    } else {
                        Penalty::Lie
                    };
                    let kind = match penalty.unwrap_or(default) {
                        Penalty::Sampled => LossKind::SampledEquivariance { group, samples },
                        Penalty::Lie => LossKind::LieDerivative { group },
                        Penalty::Orbit => LossKind::WeightOrbit { group },
                    };
                    losses.push(LossTerm { kind, weight });
                }
                Strategy::Soft { weight } => losses.push(LossTerm {
                    kind: LossKind::SoftPrior {
                        group,
                        equivariant: weight * SOFT_EQUIVARIANT_RATIO,
                    },
                    weight,
                }),
                _ => {}
            }
        }
        // A basis solved with a loosened singular-value tolerance (`lie(tolerance
        // = t)`, as exported learned groups have) keeps maps that are
        // equivariant only to about t: `symc check` holds it to that.
        let loosened = match &s.kind {
            SymmetryKind::Group(g) => spec.group(g).and_then(|n| n.group.tolerance()),
            _ => None,
        };
        let tolerance = is_architectural(&s.strategy)
            .then_some(if compact {
                ARCHITECTURE_TOLERANCE
            } else {
                NON_COMPACT_TOLERANCE
            })
            .map(|t| loosened.map_or(t, |l| t.max(l)))
            .filter(|_| !matches!(s.kind, SymmetryKind::Time | SymmetryKind::Learn { .. }));
        symmetries.push(SymmetryPlan {
            symmetry: s.text.clone(),
            strategy: s.strategy.clone(),
            reason: reason(s, compact, hamiltonian),
            tolerance,
        });
    }

    let graph = ModelGraph {
        model: model.name.clone(),
        task: model.task.clone(),
        inputs: model.inputs.iter().map(port).collect(),
        outputs: model.outputs.iter().map(port).collect(),
        groups: referenced_groups(spec, model, &b.nodes),
        symmetries,
        parameters: b.nodes.iter().map(|n| n.params).sum(),
        nodes: b.nodes,
        output,
        losses,
        data: model.data.clone(),
        train: model.train.clone(),
    };
    validate(&graph).map_err(|error| PlanError::Invalid {
        span: model.span,
        error,
    })?;
    Ok(graph)
}

/// Whether the strategy decides the network's layers (soft ones too, which are not exact).
fn shapes_network(s: &Strategy) -> bool {
    is_architectural(s) || matches!(s, Strategy::Soft { .. })
}

fn is_architectural(s: &Strategy) -> bool {
    matches!(
        s,
        Strategy::Architecture
            | Strategy::Hamiltonian
            | Strategy::Lagrangian { .. }
            | Strategy::Graph
            | Strategy::GroupConv
            | Strategy::Operator
            | Strategy::Latent
            | Strategy::Invariance
    )
}

/// The one-line reason recorded for a symmetry's strategy.
fn reason(s: &Symmetry, compact: bool, hamiltonian: bool) -> String {
    let why = match (&s.kind, &s.strategy) {
        (SymmetryKind::Group(_), Strategy::Loss { .. }) if hamiltonian => {
            "H(q, p) penalised by its Poisson bracket with the group's momenta, so they are conserved".into()
        }
        (SymmetryKind::Group(g), Strategy::Architecture) => format!(
            "EMLP layers whose weights span the equivariant basis of `{g}` are equivariant by construction"
        ),
        (_, Strategy::Hamiltonian) => {
            "the output is the symplectic gradient of a learned H(q, p), so H is conserved".into()
        }
        (_, Strategy::Lagrangian { .. }) => {
            "the output solves the Euler–Lagrange equations of a learned L(q, q̇), so energy is conserved".into()
        }
        (_, Strategy::Graph) if hamiltonian => {
            "H sums energies of bodies and of pairs' relative positions: invariant to shifts and relabelling, so total momentum is conserved".into()
        }
        (_, Strategy::Graph) => {
            "messages depend on relative positions and are summed over bodies: invariant to shifts and relabelling".into()
        }
        (SymmetryKind::Reflection, Strategy::GroupConv) => {
            "p4m group convolutions with invariant pooling are exactly invariant to mirroring".into()
        }
        (_, Strategy::GroupConv) => {
            "p4 group convolutions with invariant pooling are exactly invariant to quarter turns".into()
        }
        (_, Strategy::Loss { penalty: Some(Penalty::Sampled), .. }) => {
            "an MLP penalised by the equivariance error at sampled group elements".into()
        }
        (_, Strategy::Loss { penalty: Some(Penalty::Lie), .. }) => {
            "an MLP penalised by its Lie derivative along each generator".into()
        }
        (_, Strategy::Loss { penalty: Some(Penalty::Orbit), .. }) => {
            "an MLP whose first-layer weights are pulled towards closing under the group's generators".into()
        }
        (_, Strategy::Loss { .. }) if compact => {
            "an MLP penalised by the equivariance error at sampled group elements".into()
        }
        (_, Strategy::Loss { .. }) => {
            "an MLP penalised by its Lie derivative: elements of a non-compact group cannot be sampled uniformly".into()
        }
        (_, Strategy::Soft { .. }) => {
            "an EMLP whose every linear layer has an unconstrained residual path under a strong L2 prior: equivariant where the data allows".into()
        }
        (_, Strategy::Augment { .. }) => {
            "an MLP trained on transformed copies of each sample; equivariance is learned, not guaranteed".into()
        }
        (_, Strategy::Operator) => {
            "learns generators G with x′ ≈ exp(Σ tᵢGᵢ)x from the pairs".into()
        }
        (_, Strategy::Latent) => "learns generators acting on a learned latent space".into(),
        (_, Strategy::Invariance) => {
            "trains an MLP predictor, then learns the generators along which its output does not change".into()
        }
        _ => "a plain MLP with no symmetry built in: the baseline".into(),
    };
    let who = if s.explicit {
        "the spec asks for it"
    } else {
        "the default for this symmetry"
    };
    format!("{who}: {why}")
}

struct GraphBuilder {
    nodes: Vec<Node>,
}

impl GraphBuilder {
    fn push(
        &mut self,
        op: Op,
        input: Option<usize>,
        out_dim: usize,
        params: usize,
        constraint: Option<&str>,
    ) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node {
            id,
            op,
            inputs: input.into_iter().collect(),
            out_dim,
            params,
            constraint: constraint.map(String::from),
        });
        id
    }

    /// A `Sum` node over `inputs`, each `out_dim` wide.
    fn sum(&mut self, inputs: Vec<usize>, out_dim: usize) -> usize {
        let id = self.push(Op::Sum, None, out_dim, 0, None);
        self.nodes[id].inputs = inputs;
        id
    }
}

/// Parameters of a dense network `inp → hidden… → out` with biases.
fn mlp_params(inp: usize, hidden: &[usize], out: usize) -> usize {
    let widths: Vec<usize> = std::iter::once(inp)
        .chain(hidden.iter().copied())
        .chain([out])
        .collect();
    widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
}

fn mlp(
    b: &mut GraphBuilder,
    input: usize,
    n_in: usize,
    hidden: &[usize],
    (act, init): (Activation, LinearInit),
    n_out: usize,
) -> usize {
    let mut prev = (input, n_in);
    for &h in hidden {
        let lin = b.push(
            Op::Linear {
                inp: prev.1,
                out: h,
                bias: true,
                init,
            },
            Some(prev.0),
            h,
            prev.1 * h + h,
            None,
        );
        prev = (
            b.push(Op::Activation { kind: act }, Some(lin), h, 0, None),
            h,
        );
    }
    b.push(
        Op::Linear {
            inp: prev.1,
            out: n_out,
            bias: true,
            init,
        },
        Some(prev.0),
        n_out,
        prev.1 * n_out + n_out,
        None,
    )
}

/// The sum of the ports' representations, as one value.
fn ports_rep(ports: &[Port]) -> Rep {
    let mut reps: Vec<Rep> = ports
        .iter()
        .filter_map(|p| p.rep.as_ref().map(|r| r.1.clone()))
        .collect();
    if reps.len() == 1 {
        reps.remove(0)
    } else {
        Rep::Sum(reps)
    }
}

/// The size of an EMLP, and whether each linear layer gets a residual path.
struct EmlpShape {
    channels: usize,
    layers: usize,
    residual: bool,
}

fn emlp(
    b: &mut GraphBuilder,
    solvers: &mut Solvers,
    named: &NamedGroup,
    model: &Model,
    EmlpShape {
        channels,
        layers,
        residual,
    }: EmlpShape,
    span: Span,
) -> Result<usize, PlanError> {
    let (name, group) = (named.name.as_str(), &named.group);
    let solver = solvers
        .entry(name.to_string())
        .or_insert_with(|| BasisSolver::new(group));
    let n = group.n();
    let hidden = uniform_rep(channels, n, group.is_compact());
    let gates = gate_count(&hidden);
    let gated = match gates {
        0 => hidden.clone(),
        _ => Rep::Sum(vec![hidden.clone(), Rep::Scalar.times(gates)]),
    };
    // Products reach the invariants a linear layer cannot (x·y under O(n)).
    let products = BilinearPlan::new(solver, &gated, BILINEAR_CHANNELS)
        .map_err(|error| PlanError::Basis {
            span,
            group: name.to_string(),
            rep_in: Rep::Tensor(vec![gated.clone(), gated.clone()]),
            rep_out: gated.clone(),
            error,
        })?
        .parameters();
    let mut solve = |rep_in: &Rep, rep_out: &Rep| -> Result<(usize, usize), PlanError> {
        let err = |error| PlanError::Basis {
            span,
            group: name.to_string(),
            rep_in: rep_in.clone(),
            rep_out: rep_out.clone(),
            error,
        };
        let basis = solver.blocks(rep_in, rep_out).map_err(err)?.dimension();
        let bias = solver
            .blocks(&Rep::Scalar, rep_out)
            .map_err(err)?
            .dimension();
        Ok((basis, bias))
    };
    // An equivariant linear map, summed with a dense one of the same shape when residual.
    let mut linear = |b: &mut GraphBuilder, (input, rep_in): (usize, &Rep), rep_out: &Rep| {
        let (basis, bias) = solve(rep_in, rep_out)?;
        let (inp, out) = (rep_in.size(n), rep_out.size(n));
        let op = Op::EquivariantLinear {
            group: name.into(),
            rep_in: rep_in.clone(),
            rep_out: rep_out.clone(),
            basis,
            bias,
        };
        let equivariant = b.push(op, Some(input), out, basis + bias, Some(name));
        if !residual {
            return Ok(equivariant);
        }
        let op = Op::Linear {
            inp,
            out,
            bias: true,
            init: LinearInit::Uniform,
        };
        let dense = b.push(op, Some(input), out, inp * out + out, None);
        Ok(b.sum(vec![equivariant, dense], out))
    };
    let mut prev = (0, ports_rep(&model.inputs));
    for _ in 0..layers {
        let lin = linear(b, (prev.0, &prev.1), &gated)?;
        let op = Op::Bilinear {
            group: name.into(),
            rep: gated.clone(),
            channels: BILINEAR_CHANNELS,
        };
        let lin = b.push(op, Some(lin), gated.size(n), products, Some(name));
        let op = Op::Gated {
            group: name.into(),
            rep: hidden.clone(),
            gates,
        };
        prev = (
            b.push(op, Some(lin), hidden.size(n), 0, Some(name)),
            hidden.clone(),
        );
    }
    linear(b, (prev.0, &prev.1), &ports_rep(&model.outputs))
}

/// A message-passing block over bodies.
///
/// Body `i`'s features are row `i` of every input port, in port order; the first
/// `dims` of them (the translated port's row) are its position. Messages
/// `m_ij = φ_e(x_j − x_i, h_i, h_j)` (`h` the non-position features) are summed
/// over `j ≠ i`, and `φ_n(h_i, Σ_j m_ij)` gives body `i`'s output row. `φ_e` is
/// a dense network `dims + 2(features − dims) → hidden…` ending in the last hidden
/// width; `φ_n` is `(features − dims) + hidden.last → hidden… → out/bodies`.
fn graph_network(
    b: &mut GraphBuilder,
    model: &Model,
    input: usize,
    n_out: usize,
    hidden: Vec<usize>,
    act: Activation,
) -> usize {
    let bodies = model.inputs.first().map_or(1, |p| p.shape[0]);
    let features: usize = model
        .inputs
        .iter()
        .map(|p| p.shape.get(1).copied().unwrap_or(0))
        .sum();
    let dims = model
        .symmetries
        .iter()
        .find_map(|s| match &s.kind {
            SymmetryKind::Translation { on } => model
                .inputs
                .iter()
                .find(|p| on.contains(&p.name))
                .map(|p| p.shape[1]),
            _ => None,
        })
        .unwrap_or(0);
    let (last, edge_hidden) = hidden.split_last().map_or((0, &[][..]), |(l, h)| (*l, h));
    let h = features - dims;
    // The edge model reads the relative position, the distance and both bodies' features.
    let params = mlp_params(dims + 1 + 2 * h, edge_hidden, last)
        + mlp_params(h + last, &hidden, n_out / bodies);
    let op = Op::GraphNetwork {
        bodies,
        dims,
        features,
        hidden,
        act,
    };
    let constraint = model
        .symmetries
        .iter()
        .filter(|s| s.strategy == Strategy::Graph)
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    b.push(op, Some(input), n_out, params, Some(&constraint))
}

/// One `HamiltonianGraph` node over a state `q, p` of two tables of bodies
/// with the same shape `[bodies, dims]`; a translation must act on `q` alone
/// (shifting momenta is no symmetry of a mechanical system).
fn hamiltonian_graph_network(
    b: &mut GraphBuilder,
    model: &Model,
    input: usize,
    hidden: Vec<usize>,
    act: Activation,
) -> Result<usize, PlanError> {
    let symmetry = |strategy: Strategy| {
        model
            .symmetries
            .iter()
            .find(|s| s.strategy == strategy)
            .map_or(model.span, |s| s.span)
    };
    let refuse = |span, problem: String| PlanError::HamiltonianGraph { span, problem };
    let [q, p] = model.inputs.as_slice() else {
        return Err(refuse(
            symmetry(Strategy::Hamiltonian),
            format!(
                "needs a state of positions and momenta, found {} state ports",
                model.inputs.len()
            ),
        ));
    };
    if q.shape.len() != 2 || q.shape != p.shape {
        return Err(refuse(
            symmetry(Strategy::Graph),
            format!(
                "needs `{}` and `{}` to be tables of bodies of the same shape",
                q.name, p.name
            ),
        ));
    }
    let shifted = model.symmetries.iter().find(
        |s| matches!(&s.kind, SymmetryKind::Translation { on } if on.iter().any(|n| *n != q.name)),
    );
    if let Some(s) = shifted {
        return Err(refuse(
            s.span,
            format!("translates positions only, and `{}` holds momenta", p.name),
        ));
    }
    let (bodies, dims) = (q.shape[0], q.shape[1]);
    let params = mlp_params(dims + 1, &hidden, 1) + mlp_params(dims, &hidden, 1);
    let constraint = model
        .symmetries
        .iter()
        .filter(|s| matches!(s.strategy, Strategy::Hamiltonian | Strategy::Graph))
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let op = Op::HamiltonianGraph {
        bodies,
        dims,
        hidden,
        act,
    };
    Ok(b.push(
        op,
        Some(input),
        2 * bodies * dims,
        params,
        Some(&constraint),
    ))
}

/// p4 (or p4m with reflections) convolutions on a one-channel image, pooled over
/// the group and the image, then a linear read-out.
///
/// Parameters: the lifting layer has `c₁·k²` weights and `c₁` biases; group layer
/// `i` has `cᵢ·cᵢ₋₁·|G|·k²` weights and `cᵢ` biases, `|G|` = 4 (p4) or 8 (p4m).
fn group_conv(
    b: &mut GraphBuilder,
    model: &Model,
    input: usize,
    n_out: usize,
    channels: Vec<usize>,
    kernel: usize,
) -> usize {
    let mirrored = model
        .symmetries
        .iter()
        .any(|s| s.kind == SymmetryKind::Reflection && s.strategy == Strategy::GroupConv);
    let (group, order) = if mirrored { ("p4m", 8) } else { ("p4", 4) };
    let (height, width) = model
        .inputs
        .first()
        .map_or((1, 1), |p| (p.shape[0], p.shape[1]));
    let k2 = kernel * kernel;
    let params: usize = channels
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if i == 0 {
                c * k2 + c
            } else {
                c * channels[i - 1] * order * k2 + c
            }
        })
        .sum();
    let last = channels.last().copied().unwrap_or(1);
    let op = Op::GroupConv {
        group: group.into(),
        channels,
        kernel,
        height,
        width,
        invariant: true,
    };
    let conv = b.push(op, Some(input), last, params, Some(group));
    b.push(
        Op::Linear {
            inp: last,
            out: n_out,
            bias: true,
            init: LinearInit::Uniform,
        },
        Some(conv),
        n_out,
        last * n_out + n_out,
        None,
    )
}

fn port(p: &Port) -> super::Port {
    super::Port {
        name: p.name.clone(),
        dim: p.dim(),
        rep: p.rep.as_ref().map(|(group, rep)| PortRep {
            group: group.clone(),
            rep: rep.clone(),
        }),
    }
}

/// Every group the graph refers to, in declaration order; `p4`/`p4m` from the engine's C(4)/D(4).
fn referenced_groups(spec: &Spec, model: &Model, nodes: &[Node]) -> Vec<GroupDef> {
    let mut names: Vec<&str> = Vec::new();
    for p in model.inputs.iter().chain(&model.outputs) {
        if let Some((g, _)) = &p.rep {
            names.push(g);
        }
    }
    for s in &model.symmetries {
        if let SymmetryKind::Group(g) = &s.kind {
            names.push(g);
        }
    }
    let mut defs: Vec<GroupDef> = spec
        .groups
        .iter()
        .filter(|g| names.contains(&g.name.as_str()))
        .map(|g| group_def(&g.name, &g.group))
        .collect();
    for node in nodes {
        if let Op::GroupConv { group, .. } = &node.op {
            let (family, order) = if group == "p4m" { ("D", 4) } else { ("C", 4) };
            if let Ok(g) = Group::builtin(family, &[order]) {
                defs.push(group_def(group, &g));
            }
        }
    }
    defs
}

fn group_def(name: &str, g: &Group) -> GroupDef {
    let rows = |m: &nalgebra::DMatrix<f64>| -> Vec<Vec<f64>> {
        m.row_iter().map(|r| r.iter().copied().collect()).collect()
    };
    GroupDef {
        name: name.to_string(),
        n: g.n(),
        lie: g.lie().iter().map(rows).collect(),
        discrete: g.discrete().iter().map(rows).collect(),
        tolerance: g.tolerance(),
    }
}

#[cfg(test)]
mod tests {
    /// `symc check` holds an EMLP to its group's loosened basis tolerance
    /// when that is looser than the default for the group.
    #[test]
    fn a_loosened_group_is_checked_at_its_tolerance() {
        let tolerance = |declared: &str| {
            let text = format!(
                "group Turn = lie{declared} {{ [[0, -1], [1, 0]] }}
model m {{
  data     builtin.o5_synthetic(train = 1, val = 1, test = 1)
  input    x: 5*V over Turn
  output   y: scalar over Turn
  symmetry Turn => architecture
  net      emlp(channels = 4, layers = 1)
}}"
            );
            let graphs = crate::compile(&text, "m.sym", ".".as_ref()).unwrap().graphs;
            graphs[0].symmetries[0].tolerance
        };
        assert_eq!(tolerance(""), Some(super::ARCHITECTURE_TOLERANCE));
        assert_eq!(tolerance("(tolerance = 0.02)"), Some(0.02));
        assert_eq!(
            tolerance("(tolerance = 1e-9)"),
            Some(super::ARCHITECTURE_TOLERANCE)
        );
    }
}
