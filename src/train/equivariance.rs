//! Measuring how far a trained model is from the symmetries of its spec.

use super::TrainError;
use crate::backend::BackendError;
use crate::data::Table;
use crate::group::{matrix_from_rows, Group};
use crate::plan::{GroupDef, ModelGraph, Op, Port, Strategy};
use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// How many group elements and test points a measurement uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EquivarianceOptions {
    /// Group elements sampled per symmetry.
    pub samples: usize,
    /// Test points used: the first `points` rows of the table.
    pub points: usize,
    /// Seed of the group samples.
    pub seed: u64,
}

/// The measured equivariance error of one symmetry clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The symmetry as the spec writes it (a group's name).
    pub symmetry: String,
    pub strategy: Strategy,
    /// The bound `symc check` holds the model to, for architectural strategies.
    pub tolerance: Option<f64>,
    pub error: f64,
}

impl Measurement {
    /// Whether the error is within the tolerance (always, when there is none).
    pub fn passes(&self) -> bool {
        self.tolerance.map_or(true, |t| self.error <= t)
    }
}

/// Measures, for every symmetry clause of `graph` that names one of its groups
/// or translates or permutes the bodies of its graph network, the relative
/// equivariance error of `f` (a function of raw input rows, giving raw output
/// rows):
///
/// e = mean over points xᵢ and sampled g of
/// ‖f(g·xᵢ) − ρ_out(g)f(xᵢ)‖ / (‖ρ_out(g)f(xᵢ)‖ + δ),
/// δ = 10⁻³ · (mean over i of ‖f(xᵢ)‖²)^½.
///
/// For a group, g·x = ρ_in(g)x with ρ_in block-diagonal over the input ports:
/// a port's own representation where it is declared over the group, the
/// identity elsewhere; ρ_out likewise over the output ports, and g is drawn by
/// [`Group::sample`]. A translation adds one random vector to every body's
/// position (of the size of the positions' spread) and leaves the outputs as
/// they are: a graph network's outputs are forces and features, which do not
/// move with the frame. A permutation relabels the bodies of every input and
/// output block alike. δ keeps an output that happens to be near zero from
/// dominating the mean: it is a thousandth of the outputs' typical size.
/// Time symmetries and learned ones are not measured here.
pub fn measure_equivariance(
    graph: &ModelGraph,
    f: &dyn Fn(&[f32], usize) -> Result<Vec<f32>, BackendError>,
    points: &Table,
    options: &EquivarianceOptions,
) -> Result<Vec<Measurement>, TrainError> {
    let rows = points.rows.min(options.points);
    let x = DMatrix::from_row_slice(rows, points.x_dim, &points.x[..rows * points.x_dim])
        .map(|v| v as f64);
    let fx = outputs(f, &x)?;
    let delta =
        1e-3 * (fx.row_iter().map(|r| r.norm_squared()).sum::<f64>() / rows.max(1) as f64).sqrt();
    let mut rng = StdRng::seed_from_u64(options.seed);
    let bodies = BodyLayout::of(graph);
    let mut measured = Vec::new();
    for plan in &graph.symmetries {
        let sampler: Box<dyn Fn(&mut StdRng) -> Result<Move, TrainError>> = if let Some(def) =
            graph.groups.iter().find(|g| g.name == plan.symmetry)
        {
            let group = rebuild(def)?;
            Box::new(move |rng: &mut StdRng| {
                let g = group.sample(rng);
                Ok(Move {
                    input: block_action(&graph.inputs, def, &g)?,
                    shift: None,
                    output: block_action(&graph.outputs, def, &g)?,
                })
            })
        } else if let Some(layout) = bodies.as_ref().filter(|_| plan.strategy == Strategy::Graph) {
            // The clause's text is how the spec wrote it: `translation(on …)`
            // or `permutation(on …)`, the two symmetries a graph honours.
            if plan.symmetry.starts_with("translation(") {
                let spread = layout.position_spread(&x);
                Box::new(move |rng: &mut StdRng| Ok(layout.translation(spread, rng)))
            } else if plan.symmetry.starts_with("permutation(") {
                Box::new(move |rng: &mut StdRng| Ok(layout.permutation(rng)))
            } else {
                continue;
            }
        } else {
            continue;
        };
        let mut sum = 0.0;
        for _ in 0..options.samples {
            let g = sampler(&mut rng)?;
            let mut moved_x = &x * g.input.transpose();
            if let Some(shift) = &g.shift {
                moved_x
                    .row_iter_mut()
                    .for_each(|mut r| r += shift.transpose());
            }
            let moved = outputs(f, &moved_x)?;
            let expected = &fx * g.output.transpose();
            sum += (0..rows)
                .map(|i| (moved.row(i) - expected.row(i)).norm() / (expected.row(i).norm() + delta))
                .sum::<f64>();
        }
        measured.push(Measurement {
            symmetry: plan.symmetry.clone(),
            strategy: plan.strategy.clone(),
            tolerance: plan.tolerance,
            error: sum / (rows * options.samples).max(1) as f64,
        });
    }
    Ok(measured)
}

/// One sampled transformation: x ↦ `input`·x + `shift`, y ↦ `output`·y.
struct Move {
    input: DMatrix<f64>,
    shift: Option<DVector<f64>>,
    output: DMatrix<f64>,
}

/// Where the bodies sit in the rows of a model built on a graph network: its
/// inputs and outputs are blocks of `bodies` rows each (body-major), the first
/// input block holding the positions.
#[derive(Debug, Clone, PartialEq)]
struct BodyLayout {
    bodies: usize,
    /// Per-body widths of the input blocks, positions first.
    input: Vec<usize>,
    /// Per-body widths of the output blocks.
    output: Vec<usize>,
}

impl BodyLayout {
    /// The layout of the graph's graph-network node, when it has one.
    fn of(graph: &ModelGraph) -> Option<BodyLayout> {
        let out_dim: usize = graph.outputs.iter().map(|p| p.dim).sum();
        graph.nodes.iter().find_map(|node| match &node.op {
            Op::GraphNetwork {
                bodies,
                dims,
                features,
                ..
            } if out_dim % bodies == 0 => {
                let k = out_dim / bodies;
                Some(BodyLayout {
                    bodies: *bodies,
                    input: vec![*dims, features - dims],
                    output: vec![k.min(*dims), k - k.min(*dims)],
                })
            }
            Op::HamiltonianGraph { bodies, dims, .. } => Some(BodyLayout {
                bodies: *bodies,
                input: vec![*dims, *dims],
                output: vec![*dims, *dims],
            }),
            _ => None,
        })
    }

    /// The root mean square of the position entries of `x`.
    fn position_spread(&self, x: &DMatrix<f64>) -> f64 {
        let block = self.bodies * self.input[0];
        let positions = x.columns(0, block);
        (positions.norm_squared() / positions.len().max(1) as f64).sqrt()
    }

    fn translation(&self, spread: f64, rng: &mut StdRng) -> Move {
        let dims = self.input[0];
        let c: Vec<f64> = (0..dims)
            .map(|_| spread * Distribution::<f64>::sample(&StandardNormal, rng))
            .collect();
        let width = self.bodies * self.input.iter().sum::<usize>();
        let shift = DVector::from_fn(width, |i, _| {
            if i < self.bodies * dims {
                c[i % dims]
            } else {
                0.0
            }
        });
        let out = self.bodies * self.output.iter().sum::<usize>();
        Move {
            input: DMatrix::identity(width, width),
            shift: Some(shift),
            output: DMatrix::identity(out, out),
        }
    }

    fn permutation(&self, rng: &mut StdRng) -> Move {
        let mut order: Vec<usize> = (0..self.bodies).collect();
        order.shuffle(rng);
        Move {
            input: self.relabel(&self.input, &order),
            shift: None,
            output: self.relabel(&self.output, &order),
        }
    }

    /// The matrix that puts body `order[i]`'s entries of every block in body `i`'s place.
    fn relabel(&self, widths: &[usize], order: &[usize]) -> DMatrix<f64> {
        let size = self.bodies * widths.iter().sum::<usize>();
        let mut p = DMatrix::zeros(size, size);
        let mut offset = 0;
        for &w in widths {
            for (i, &j) in order.iter().enumerate() {
                for c in 0..w {
                    p[(offset + i * w + c, offset + j * w + c)] = 1.0;
                }
            }
            offset += self.bodies * w;
        }
        p
    }
}

/// `f` on the rows of `x`, computed in f32 and returned as f64 rows.
fn outputs(
    f: &dyn Fn(&[f32], usize) -> Result<Vec<f32>, BackendError>,
    x: &DMatrix<f64>,
) -> Result<DMatrix<f64>, TrainError> {
    let rows = x.nrows();
    let flat: Vec<f32> = x.transpose().iter().map(|&v| v as f32).collect();
    let y = f(&flat, rows)?;
    let width = if rows == 0 { 0 } else { y.len() / rows };
    Ok(DMatrix::from_row_slice(rows, width, &y).map(|v| v as f64))
}

pub(super) fn rebuild(def: &GroupDef) -> Result<Group, TrainError> {
    let matrices = |list: &[Vec<Vec<f64>>]| -> Result<Vec<DMatrix<f64>>, TrainError> {
        list.iter()
            .map(|rows| {
                matrix_from_rows(rows)
                    .map_err(|e| TrainError::Invalid(format!("group `{}`: {e}", def.name)))
            })
            .collect()
    };
    Ok(Group::from_generators(
        &def.name,
        def.n,
        matrices(&def.lie)?,
        matrices(&def.discrete)?,
    ))
}

/// The block-diagonal action of `g` on the concatenation of `ports`.
pub(super) fn block_action(
    ports: &[Port],
    group: &GroupDef,
    g: &DMatrix<f64>,
) -> Result<DMatrix<f64>, TrainError> {
    let dim = ports.iter().map(|p| p.dim).sum();
    let mut action = DMatrix::identity(dim, dim);
    let mut offset = 0;
    for port in ports {
        if let Some(rep) = port.rep.as_ref().filter(|r| r.group == group.name) {
            let rho = rep.rep.rho(g);
            if rho.nrows() != port.dim {
                return Err(TrainError::Invalid(format!(
                    "port `{}` has {} components but its representation `{}` acts on {}",
                    port.name,
                    port.dim,
                    rep.rep,
                    rho.nrows()
                )));
            }
            action
                .view_mut((offset, offset), (port.dim, port.dim))
                .copy_from(&rho);
        }
        offset += port.dim;
    }
    Ok(action)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::tiny_graph;
    use super::*;
    use crate::plan::SymmetryPlan;
    use rand::Rng;

    fn points(rows: usize) -> Table {
        let mut rng = StdRng::seed_from_u64(3);
        let x = (0..rows * 6).map(|_| rng.gen_range(-1.0..1.0)).collect();
        Table {
            x,
            y: vec![0.0; rows],
            rows,
            x_dim: 6,
            y_dim: 1,
        }
    }

    fn error_of(f: &dyn Fn(&[f32], usize) -> Result<Vec<f32>, BackendError>) -> f64 {
        let options = EquivarianceOptions {
            samples: 8,
            points: 50,
            seed: 1,
        };
        let measured = measure_equivariance(&tiny_graph(), f, &points(80), &options).unwrap();
        assert_eq!(measured.len(), 1);
        assert_eq!(measured[0].symmetry, "O3");
        measured[0].error
    }

    #[test]
    fn an_invariant_function_measures_at_float_precision() {
        // |a|² + a·b is O(3)-invariant.
        let invariant = |x: &[f32], _: usize| -> Result<Vec<f32>, BackendError> {
            Ok(x.chunks(6)
                .map(|v| (0..3).map(|i| v[i] * v[i] + v[i] * v[i + 3]).sum::<f32>() + 2.0)
                .collect())
        };
        let error = error_of(&invariant);
        assert!(error < 1e-6, "{error}");
    }

    #[test]
    fn a_function_of_one_coordinate_is_far_from_invariant() {
        let coordinate = |x: &[f32], _: usize| -> Result<Vec<f32>, BackendError> {
            Ok(x.chunks(6).map(|v| v[0] + 2.0).collect())
        };
        let error = error_of(&coordinate);
        assert!(error > 0.05, "{error}");
    }

    #[test]
    fn the_error_is_the_mean_relative_deviation() {
        // f(x) = 2 + a₁ with all points at a = (1, 0, 0): after any g the output is
        // 2 + (g e₁)₁, so each term is |(g e₁)₁ − 1| / (3 + 0.003).
        let graph = tiny_graph();
        let mut table = points(4);
        table
            .x
            .chunks_mut(6)
            .for_each(|v| v.copy_from_slice(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]));
        let f = |x: &[f32], _: usize| -> Result<Vec<f32>, BackendError> {
            Ok(x.chunks(6).map(|v| v[0] + 2.0).collect())
        };
        let options = EquivarianceOptions {
            samples: 5,
            points: 4,
            seed: 9,
        };
        let measured = measure_equivariance(&graph, &f, &table, &options).unwrap();
        let group = rebuild(&graph.groups[0]).unwrap();
        let mut rng = StdRng::seed_from_u64(9);
        let expected: f64 = (0..5)
            .map(|_| (group.sample(&mut rng)[(0, 0)] - 1.0).abs() / 3.003)
            .sum::<f64>()
            / 5.0;
        assert!(
            (measured[0].error - expected).abs() < 1e-6,
            "{} vs {expected}",
            measured[0].error
        );
    }

    #[test]
    fn symmetries_without_a_group_are_skipped_and_tolerances_kept() {
        let mut graph = tiny_graph();
        graph.symmetries[0].tolerance = Some(1e-5);
        graph.symmetries.push(SymmetryPlan {
            symmetry: "time".into(),
            strategy: Strategy::Hamiltonian,
            reason: String::new(),
            tolerance: None,
        });
        let f = |x: &[f32], _: usize| -> Result<Vec<f32>, BackendError> {
            Ok(x.chunks(6).map(|v| v[1]).collect())
        };
        let options = EquivarianceOptions {
            samples: 2,
            points: 10,
            seed: 0,
        };
        let measured = measure_equivariance(&graph, &f, &points(10), &options).unwrap();
        assert_eq!(measured.len(), 1);
        assert_eq!(measured[0].tolerance, Some(1e-5));
        assert!(!measured[0].passes());
    }

    /// Three bodies in the plane as a Hamiltonian graph network plans them.
    fn bodies_graph() -> ModelGraph {
        let spec = r#"
model bodies {
  data     builtin.nbody_spring(bodies = 3, dims = 2, train = 2, val = 1, test = 1, points = 5, seed = 0)
  state    q: R^[3, 2], p: R^[3, 2]
  symmetry time => hamiltonian
  symmetry translation(on q) => graph
  symmetry permutation(on q, p) => graph
  net      graph(hidden = [8, 8], act = softplus)
}
"#;
        crate::compile(spec, "bodies.sym", ".".as_ref())
            .unwrap()
            .graphs
            .remove(0)
    }

    fn body_errors(
        graph: &ModelGraph,
        f: &dyn Fn(&[f32], usize) -> Result<Vec<f32>, BackendError>,
    ) -> (f64, f64) {
        let mut rng = StdRng::seed_from_u64(5);
        let rows = 20;
        let points = Table {
            x: (0..rows * 12).map(|_| rng.gen_range(-2.0..2.0)).collect(),
            y: vec![0.0; rows * 12],
            rows,
            x_dim: 12,
            y_dim: 12,
        };
        let options = EquivarianceOptions {
            samples: 6,
            points: rows,
            seed: 2,
        };
        let measured = measure_equivariance(graph, f, &points, &options).unwrap();
        let names: Vec<&str> = measured.iter().map(|m| m.symmetry.as_str()).collect();
        assert_eq!(names, ["translation(on q)", "permutation(on q, p)"]);
        (measured[0].error, measured[1].error)
    }

    /// Body i's output: Σⱼ (qⱼ − qᵢ) and pᵢ, in the state's two blocks.
    fn pull(x: &[f32], _: usize) -> Result<Vec<f32>, BackendError> {
        Ok(x.chunks(12)
            .flat_map(|row| {
                let (q, p) = row.split_at(6);
                let force = (0..6).map(move |k| {
                    let (i, c) = (k / 2, k % 2);
                    (0..3).map(|j| q[2 * j + c] - q[2 * i + c]).sum::<f32>()
                });
                force.chain(p.iter().copied()).collect::<Vec<_>>()
            })
            .collect())
    }

    #[test]
    fn relative_positions_summed_over_bodies_measure_invariant_and_equivariant() {
        let (translation, permutation) = body_errors(&bodies_graph(), &pull);
        assert!(translation < 1e-6, "{translation}");
        assert!(permutation < 1e-6, "{permutation}");
    }

    #[test]
    fn absolute_positions_break_translation_and_a_fixed_body_breaks_permutation() {
        // Outputting the positions themselves moves with every shift but
        // relabels with the bodies; reading body 0 alone is the reverse.
        let positions = |x: &[f32], _: usize| -> Result<Vec<f32>, BackendError> {
            Ok(x.chunks(12).flat_map(|r| r.to_vec()).collect())
        };
        let (translation, permutation) = body_errors(&bodies_graph(), &positions);
        assert!(translation > 0.1, "{translation}");
        assert!(permutation < 1e-6, "{permutation}");
        let first = |x: &[f32], _: usize| -> Result<Vec<f32>, BackendError> {
            Ok(x.chunks(12)
                .flat_map(|r| {
                    let d = [r[0] - r[2], r[1] - r[3]];
                    [d[0], d[1], d[0], d[1], d[0], d[1]]
                        .into_iter()
                        .chain([0.0; 6])
                })
                .collect())
        };
        let (translation, permutation) = body_errors(&bodies_graph(), &first);
        assert!(translation < 1e-6, "{translation}");
        assert!(permutation > 0.1, "{permutation}");
    }

    #[test]
    fn a_hamiltonian_graph_network_passes_its_graph_symmetries() {
        let graph = bodies_graph();
        let model = crate::backend::Model::new(&graph, 0).unwrap();
        let (translation, permutation) = body_errors(&graph, &|x, rows| model.forward(x, rows));
        assert!(translation < 1e-5, "{translation}");
        assert!(permutation < 1e-5, "{permutation}");
    }
}
