//! The trained model as a function of the data's own units, and the errors
//! reported on it.

use crate::backend::{BackendError, Model};
use crate::data::{Standardizer, Table};

/// Rows per forward call, to bound memory on large evaluation sets.
const CHUNK: usize = 4096;

/// A model together with the standardising it was trained behind: inputs and
/// outputs in the data's original units.
pub struct Predictor<'a> {
    pub model: &'a Model,
    pub standardizer: &'a Standardizer,
}

impl Predictor<'_> {
    /// The model output for `rows` raw input rows, in original units.
    pub fn predict(&self, x: &[f32], rows: usize) -> Result<Vec<f32>, BackendError> {
        let width = if rows == 0 { 0 } else { x.len() / rows };
        let mut out = Vec::new();
        for chunk in x.chunks(CHUNK * width.max(1)) {
            let mut inputs = chunk.to_vec();
            self.standardizer.standardize_inputs(&mut inputs);
            let mut y = self.model.forward(&inputs, chunk.len() / width.max(1))?;
            self.standardizer.restore_outputs(&mut y);
            out.extend(y);
        }
        Ok(out)
    }

    /// Mean squared error over rows and output coordinates, in original units.
    pub fn mse(&self, table: &Table) -> Result<f64, BackendError> {
        let predicted = self.predict(&table.x, table.rows)?;
        Ok(mean_squared_error(&predicted, &table.y))
    }

    /// Fraction of rows whose largest logit is at the labelled class.
    pub fn accuracy(&self, table: &Table) -> Result<f64, BackendError> {
        let logits = self.predict(&table.x, table.rows)?;
        let classes = if table.rows == 0 {
            1
        } else {
            logits.len() / table.rows
        };
        Ok(accuracy(&logits, classes, &table.y))
    }
}

/// Mean of the squared differences; 0 for empty inputs.
pub(crate) fn mean_squared_error(predicted: &[f32], target: &[f32]) -> f64 {
    let sum: f64 = predicted
        .iter()
        .zip(target)
        .map(|(p, t)| (*p as f64 - *t as f64).powi(2))
        .sum();
    sum / target.len().max(1) as f64
}

/// Fraction of `labels` that are the argmax of their row of `logits`.
fn accuracy(logits: &[f32], classes: usize, labels: &[f32]) -> f64 {
    let hits = logits
        .chunks(classes.max(1))
        .zip(labels)
        .filter(|(row, &label)| {
            let best = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i);
            best == Some(label as usize)
        })
        .count();
    hits as f64 / labels.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_follow_their_definitions() {
        assert_eq!(
            mean_squared_error(&[1.0, 2.0, 4.0], &[1.0, 0.0, 1.0]),
            13.0 / 3.0
        );
        let logits = [0.1, 0.9, 0.0, 3.0, -1.0, 2.0];
        assert_eq!(accuracy(&logits, 3, &[1.0, 2.0]), 0.5);
    }
}
