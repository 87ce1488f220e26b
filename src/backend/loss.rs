//! Loss terms of the training objective, on dfdx's own ops (they act on the
//! small `rows × out_dim` output, where fusing buys nothing).

use super::kernels::tape::{KernelDevice, Mat};
use super::BackendError;
use crate::plan::{LossKind, LossTerm};
use dfdx::prelude::*;

/// A scalar tensor carrying the tape `T`.
pub(crate) type Scalar<D, T> = Tensor<Rank0, f32, D, T>;

/// A supported loss term with its weight.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Loss {
    /// Mean over rows and outputs of the squared error.
    Mse(f64),
    /// Mean over rows of softmax cross-entropy; targets are class indices.
    CrossEntropy(f64),
}

impl Loss {
    /// The data terms of a graph's objective (the regularisers are
    /// [`Regularizer`](super::regularizers::Regularizer)s).
    pub(crate) fn compile(terms: &[LossTerm]) -> Vec<Loss> {
        terms
            .iter()
            .filter_map(|t| match t.kind {
                LossKind::Mse => Some(Loss::Mse(t.weight)),
                LossKind::CrossEntropy => Some(Loss::CrossEntropy(t.weight)),
                LossKind::SampledEquivariance { .. }
                | LossKind::LieDerivative { .. }
                | LossKind::WeightOrbit { .. }
                | LossKind::SoftPrior { .. }
                | LossKind::PoissonBracket { .. } => None,
            })
            .collect()
    }

    /// The name a `LossBreakdown` reports this term under.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Loss::Mse(_) => "mse",
            Loss::CrossEntropy(_) => "cross_entropy",
        }
    }

    /// The weighted term on `pred` (rows × cols) against targets `y`.
    pub(crate) fn apply<D: KernelDevice, T: Tape<f32, D>>(
        &self,
        pred: Mat<D, T>,
        y: &[f32],
    ) -> Result<Scalar<D, T>, BackendError> {
        let (rows, cols) = *pred.shape();
        let dev = pred.device().clone();
        let (value, weight) = match *self {
            Loss::Mse(weight) => {
                expect_len("regression targets", rows * cols, y.len())?;
                let target = dev
                    .try_tensor_from_vec(y.to_vec(), (rows, cols))
                    .map_err(BackendError::device)?;
                (mse_loss(pred, target), weight)
            }
            Loss::CrossEntropy(weight) => {
                expect_len("class targets", rows, y.len())?;
                let target = dev
                    .try_tensor_from_vec(one_hot(y, cols)?, (rows, cols))
                    .map_err(BackendError::device)?;
                (cross_entropy_with_logits_loss(pred, target), weight)
            }
        };
        Ok(value * weight as f32)
    }
}

fn expect_len(what: &str, expected: usize, found: usize) -> Result<(), BackendError> {
    if expected == found {
        Ok(())
    } else {
        Err(BackendError::ShapeMismatch {
            what: what.into(),
            expected,
            found,
        })
    }
}

/// One-hot rows for class indices given as f32.
fn one_hot(labels: &[f32], classes: usize) -> Result<Vec<f32>, BackendError> {
    let mut out = vec![0.0; labels.len() * classes];
    for (row, &value) in labels.iter().enumerate() {
        if !(value >= 0.0 && value < classes as f32 && value.fract() == 0.0) {
            return Err(BackendError::InvalidTarget {
                row,
                value,
                classes,
            });
        }
        out[row * classes + value as usize] = 1.0;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::tensor::Cpu;

    #[test]
    fn cross_entropy_matches_the_closed_form_and_its_gradient() {
        let dev = Cpu::default();
        let logits = [0.5f32, -1.0, 2.0, 0.0, 0.3, -0.7];
        let labels = [2.0f32, 1.0];
        let pred = dev.tensor_from_vec(logits.to_vec(), (2, 3));
        let loss = Loss::CrossEntropy(0.5)
            .apply(pred.leaky_trace(), &labels)
            .unwrap();
        let mut expected = 0.0f64;
        let mut grad = vec![0.0f64; 6];
        for r in 0..2 {
            let row = &logits[r * 3..r * 3 + 3];
            let z: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
            let label = labels[r] as usize;
            expected += z.ln() - row[label] as f64;
            for c in 0..3 {
                let p = (row[c] as f64).exp() / z;
                grad[r * 3 + c] = 0.5 * (p - if c == label { 1.0 } else { 0.0 }) / 2.0;
            }
        }
        assert!((loss.array() as f64 - 0.5 * expected / 2.0).abs() < 1e-6);
        let g = loss.backward().get(&pred).as_vec();
        for (a, b) in g.iter().zip(&grad) {
            assert!((*a as f64 - b).abs() < 1e-6);
        }
    }

    #[test]
    fn mse_is_the_weighted_mean_square() {
        let dev = Cpu::default();
        let pred = dev.tensor_from_vec(vec![1.0, 2.0, 3.0, 5.0], (2, 2));
        let loss = Loss::Mse(2.0).apply(pred, &[0.0, 2.0, 1.0, 5.0]).unwrap();
        assert_eq!(loss.array(), 2.0 * (1.0 + 0.0 + 4.0 + 0.0) / 4.0);
    }

    #[test]
    fn bad_class_indices_are_errors() {
        let dev = Cpu::default();
        for bad in [3.0, -1.0, 0.5, f32::NAN] {
            let pred = dev.tensor_from_vec(vec![0.0; 3], (1, 3));
            let err = Loss::CrossEntropy(1.0).apply(pred, &[bad]).unwrap_err();
            assert!(
                matches!(
                    err,
                    BackendError::InvalidTarget {
                        row: 0,
                        classes: 3,
                        ..
                    }
                ),
                "{err}"
            );
        }
    }
}
