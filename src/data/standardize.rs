//! Standardising data without breaking the symmetry the model is asked to keep.

use super::{DataError, Table};
use crate::group::Rep;
use crate::plan::{Port, Task};

/// A per-coordinate affine map `x' = (x − shift) / scale` for inputs and targets,
/// fitted on a training set so that a symmetry acting on the data survives it.
///
/// The rule, port by port:
/// - a port whose representation is made only of scalars gets each coordinate
///   centred and divided by its standard deviation (group elements do not move
///   invariant coordinates, so any affine map of them commutes with the action);
/// - every other port — a vector-valued representation, or no representation at
///   all, which a `permutation` or `translation` clause may still act on — is only
///   divided by one scalar, its root mean square over samples and coordinates.
///   A mean is never subtracted from it: ρ(g)(x − μ) ≠ ρ(g)x − μ in general, while
///   a scalar multiple commutes with every linear action.
///
/// Targets of classification (class indices) and of dynamics (time derivatives
/// tied to the units of the state) are left as they are, and so are dynamics
/// inputs: scaling state and derivative apart would break `ẋ = J∇H`'s form.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    pub x_shift: Vec<f32>,
    pub x_scale: Vec<f32>,
    pub y_shift: Vec<f32>,
    pub y_scale: Vec<f32>,
}

impl Standardizer {
    /// The map that changes nothing.
    pub fn identity(x_dim: usize, y_dim: usize) -> Self {
        Standardizer {
            x_shift: vec![0.0; x_dim],
            x_scale: vec![1.0; x_dim],
            y_shift: vec![0.0; y_dim],
            y_scale: vec![1.0; y_dim],
        }
    }

    /// Fits the map on `train` for a model with these ports and task; an error if
    /// the table's widths do not match the ports.
    ///
    /// ```
    /// use symc::data::{Standardizer, Table};
    /// use symc::plan::{Port, Task};
    /// let x = Port { name: "x".into(), dim: 2, rep: None };
    /// let y = Port { name: "y".into(), dim: 1, rep: None };
    /// let train = Table { x: vec![1.0, 2.0, 3.0, 6.0], y: vec![1.0, 3.0], rows: 2, x_dim: 2, y_dim: 1 };
    /// let s = Standardizer::fit(&train, &[x], &[y], &Task::Regression).unwrap();
    /// // No representation: divided by the RMS √((1 + 4 + 9 + 36) / 4) = 3.54, never centred.
    /// assert_eq!(s.x_shift, [0.0, 0.0]);
    /// assert!((s.x_scale[0] - 12.5f32.sqrt()).abs() < 1e-6);
    /// ```
    pub fn fit(
        train: &Table,
        inputs: &[Port],
        outputs: &[Port],
        task: &Task,
    ) -> Result<Self, DataError> {
        let width = |ports: &[Port]| ports.iter().map(|p| p.dim).sum::<usize>();
        let mismatch = |what: &str, found: usize, ports: &[Port]| {
            DataError::Invalid(format!(
                "the data has {found} {what} columns but the model's {what} ports take {}",
                width(ports)
            ))
        };
        if width(inputs) != train.x_dim {
            return Err(mismatch("input", train.x_dim, inputs));
        }
        let mut fitted = Standardizer::identity(train.x_dim, train.y_dim);
        match task {
            Task::Regression => {
                if width(outputs) != train.y_dim {
                    return Err(mismatch("output", train.y_dim, outputs));
                }
                fit_ports(
                    inputs,
                    &train.x,
                    train.x_dim,
                    &mut fitted.x_shift,
                    &mut fitted.x_scale,
                );
                fit_ports(
                    outputs,
                    &train.y,
                    train.y_dim,
                    &mut fitted.y_shift,
                    &mut fitted.y_scale,
                );
            }
            Task::Classification { .. } => {
                fit_ports(
                    inputs,
                    &train.x,
                    train.x_dim,
                    &mut fitted.x_shift,
                    &mut fitted.x_scale,
                );
            }
            Task::Dynamics { .. } | Task::Discover { .. } => {}
        }
        Ok(fitted)
    }

    /// The standardised copy of `table`.
    pub fn apply(&self, table: &Table) -> Table {
        let mut out = table.clone();
        self.standardize_inputs(&mut out.x);
        forward(&mut out.y, &self.y_shift, &self.y_scale);
        out
    }

    /// Maps raw input rows (row-major, any number of rows) to the model's units.
    pub fn standardize_inputs(&self, x: &mut [f32]) {
        forward(x, &self.x_shift, &self.x_scale);
    }

    /// Maps model outputs (row-major) back to the data's original units.
    pub fn restore_outputs(&self, y: &mut [f32]) {
        for row in y.chunks_mut(self.y_shift.len()) {
            for ((v, shift), scale) in row.iter_mut().zip(&self.y_shift).zip(&self.y_scale) {
                *v = *v * scale + shift;
            }
        }
    }
}

fn forward(values: &mut [f32], shift: &[f32], scale: &[f32]) {
    for row in values.chunks_mut(shift.len()) {
        for ((v, shift), scale) in row.iter_mut().zip(shift).zip(scale) {
            *v = (*v - shift) / scale;
        }
    }
}

fn only_scalars(rep: &Rep) -> bool {
    match rep {
        Rep::Scalar => true,
        Rep::V => false,
        Rep::Dual(r) | Rep::Mul(_, r) | Rep::Pow(r, _) => only_scalars(r),
        Rep::Sum(rs) | Rep::Tensor(rs) => rs.iter().all(only_scalars),
    }
}

/// Fills `shift` and `scale` for the columns of `values` (rows of `width`) port by port.
fn fit_ports(ports: &[Port], values: &[f32], width: usize, shift: &mut [f32], scale: &mut [f32]) {
    let rows = values.len() / width;
    let column = |c: usize| values[c..].iter().step_by(width).map(|&v| v as f64);
    // A constant column keeps scale 1 rather than dividing by zero.
    let positive = |s: f64| if s > 0.0 { s as f32 } else { 1.0 };
    let mut start = 0;
    for port in ports {
        let columns = start..start + port.dim;
        start += port.dim;
        if rows == 0 {
            continue;
        }
        if port.rep.as_ref().is_some_and(|r| only_scalars(&r.rep)) {
            for c in columns {
                let mean = column(c).sum::<f64>() / rows as f64;
                let var = column(c).map(|v| (v - mean).powi(2)).sum::<f64>() / rows as f64;
                shift[c] = mean as f32;
                scale[c] = positive(var.sqrt());
            }
        } else {
            let squares: f64 = columns.clone().flat_map(column).map(|v| v * v).sum();
            let rms = positive((squares / (rows * port.dim) as f64).sqrt());
            scale[columns].iter_mut().for_each(|s| *s = rms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PortRep;
    use nalgebra::{DMatrix, DVector};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn port(name: &str, dim: usize, rep: Option<Rep>) -> Port {
        let rep = rep.map(|rep| PortRep {
            group: "G".into(),
            rep,
        });
        Port {
            name: name.into(),
            dim,
            rep,
        }
    }

    fn random_table(rows: usize, x_dim: usize, y_dim: usize, rng: &mut StdRng) -> Table {
        let mut draw = |n: usize| (0..n).map(|_| rng.gen_range(-2.0..5.0)).collect();
        Table {
            x: draw(rows * x_dim),
            y: draw(rows * y_dim),
            rows,
            x_dim,
            y_dim,
        }
    }

    #[test]
    fn vector_ports_are_scaled_by_one_rms_and_commute_with_rotations() {
        let mut rng = StdRng::seed_from_u64(1);
        // Inputs: 2 scalars then 2 copies of V over a 3-dimensional group.
        let inputs = [
            port("m", 2, Some(Rep::Mul(2, Box::new(Rep::Scalar)))),
            port("r", 6, Some(Rep::Mul(2, Box::new(Rep::V)))),
        ];
        let outputs = [port("t", 9, Some(Rep::Pow(Box::new(Rep::V), 2)))];
        let table = random_table(50, 8, 9, &mut rng);
        let s = Standardizer::fit(&table, &inputs, &outputs, &Task::Regression).unwrap();
        assert!(s.x_shift[2..].iter().chain(&s.y_shift).all(|&v| v == 0.0));
        let rms = |values: Vec<f32>| {
            (values.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / values.len() as f64).sqrt()
        };
        let positions: Vec<f32> = (0..50).flat_map(|i| table.x_row(i)[2..].to_vec()).collect();
        assert!((s.x_scale[2] as f64 - rms(positions)).abs() < 1e-5);
        assert!(s.x_scale[2..].iter().all(|&v| v == s.x_scale[2]));
        assert!((s.y_scale[0] as f64 - rms(table.y.clone())).abs() < 1e-5);

        // Standardising a rotated point gives the rotated standardised point.
        let q = DMatrix::from_fn(3, 3, |_, _| rng.gen_range(-1.0f32..1.0))
            .qr()
            .q();
        let rotate = |x: &[f32]| {
            let mut out = x.to_vec();
            for k in 0..2 {
                let v = &q * DVector::from_column_slice(&x[2 + 3 * k..5 + 3 * k]);
                out[2 + 3 * k..5 + 3 * k].copy_from_slice(v.as_slice());
            }
            out
        };
        for i in 0..table.rows {
            let (mut a, mut b) = (rotate(table.x_row(i)), table.x_row(i).to_vec());
            s.standardize_inputs(&mut a);
            s.standardize_inputs(&mut b);
            let b = rotate(&b);
            assert!(
                a.iter().zip(&b).all(|(u, v)| (u - v).abs() < 1e-5),
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn scalar_ports_are_centred_and_restored() {
        let mut rng = StdRng::seed_from_u64(2);
        let inputs = [port(
            "a",
            3,
            Some(Rep::Sum(vec![
                Rep::Scalar,
                Rep::Mul(2, Box::new(Rep::Scalar)),
            ])),
        )];
        let outputs = [port("y", 1, Some(Rep::Scalar))];
        let table = random_table(40, 3, 1, &mut rng);
        let s = Standardizer::fit(&table, &inputs, &outputs, &Task::Regression).unwrap();
        let standard = s.apply(&table);
        for c in 0..3 {
            let column: Vec<f64> = (0..40).map(|i| standard.x_row(i)[c] as f64).collect();
            let mean = column.iter().sum::<f64>() / 40.0;
            let var = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 40.0;
            assert!(
                mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
                "{mean} {var}"
            );
        }
        let mut restored = standard.y.clone();
        s.restore_outputs(&mut restored);
        assert!(restored
            .iter()
            .zip(&table.y)
            .all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn classification_targets_and_dynamics_are_untouched() {
        let mut rng = StdRng::seed_from_u64(3);
        let table = random_table(10, 2, 1, &mut rng);
        let x = [port("x", 2, None)];
        let y = [port("logits", 4, None)];
        let s = Standardizer::fit(&table, &x, &y, &Task::Classification { classes: 4 }).unwrap();
        assert_eq!(s.apply(&table).y, table.y);
        let dynamics =
            Standardizer::fit(&table, &x, &y, &Task::Dynamics { coordinates: 1 }).unwrap();
        assert_eq!(dynamics, Standardizer::identity(2, 1));
    }

    #[test]
    fn width_mismatch_is_an_error() {
        let table = Table {
            x: vec![0.0; 6],
            y: vec![0.0; 2],
            rows: 2,
            x_dim: 3,
            y_dim: 1,
        };
        let err = Standardizer::fit(
            &table,
            &[port("x", 2, None)],
            &[port("y", 1, None)],
            &Task::Regression,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the data has 3 input columns but the model's input ports take 2"
        );
    }
}
