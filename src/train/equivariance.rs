//! Measuring how far a trained model is from the symmetries of its spec.

use super::TrainError;
use crate::backend::BackendError;
use crate::data::Table;
use crate::group::{matrix_from_rows, Group};
use crate::plan::{GroupDef, ModelGraph, Port, Strategy};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::SeedableRng;

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

/// Measures, for every symmetry clause of `graph` that names one of its groups,
/// the relative equivariance error of `f` (a function of raw input rows, giving
/// raw output rows):
///
/// e = mean over points xᵢ and sampled g of
/// ‖f(ρ_in(g)xᵢ) − ρ_out(g)f(xᵢ)‖ / (‖ρ_out(g)f(xᵢ)‖ + δ),
/// δ = 10⁻³ · (mean over i of ‖f(xᵢ)‖²)^½.
///
/// ρ_in is block-diagonal over the input ports: a port's own representation
/// where it is declared over the group, the identity elsewhere; ρ_out likewise
/// over the output ports. g is drawn by [`Group::sample`]. δ keeps an output
/// that happens to be near zero from dominating the mean: it is a thousandth of
/// the outputs' typical size. Symmetries that are not matrix groups (time,
/// translation, permutation, learned ones) are not measured here.
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
    let mut measured = Vec::new();
    for plan in &graph.symmetries {
        let Some(def) = graph.groups.iter().find(|g| g.name == plan.symmetry) else {
            continue;
        };
        let group = rebuild(def)?;
        let mut sum = 0.0;
        for _ in 0..options.samples {
            let g = group.sample(&mut rng);
            let rho_in = block_action(&graph.inputs, def, &g)?;
            let rho_out = block_action(&graph.outputs, def, &g)?;
            let moved = outputs(f, &(&x * rho_in.transpose()))?;
            let expected = &fx * rho_out.transpose();
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
}
