//! Parameters kept as one flat host vector, read as named tensors through a
//! table of ranges: what the hand-derived runners (the physics heads, the
//! fused dense chain) share for exporting, loading and stepping their weights.

use super::adam::{squared_norm, AdamW};
use super::params::match_tensors;
use super::{BackendError, NamedTensor};
use std::ops::Range;

/// The named tensors of a flat parameter vector, in export order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorTable(Vec<(String, Vec<usize>, Range<usize>)>);

impl TensorTable {
    /// A table from each tensor's name, shape and range in the flat vector.
    pub(crate) fn new(tensors: Vec<(String, Vec<usize>, Range<usize>)>) -> Self {
        TensorTable(tensors)
    }

    /// Lengths of the tensors, in order (AdamW keeps one state per tensor).
    pub(crate) fn lengths(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().map(|(.., range)| range.len())
    }

    /// Each tensor of `params` with its name and shape.
    pub(crate) fn named(&self, params: &[f32]) -> Vec<NamedTensor> {
        self.0
            .iter()
            .map(|(name, shape, range)| NamedTensor {
                name: name.clone(),
                shape: shape.clone(),
                data: params[range.clone()].to_vec(),
            })
            .collect()
    }

    /// Overwrites `params` with `tensors`, which must name each tensor exactly
    /// once with its shape. On error `params` is unchanged.
    pub(crate) fn load(
        &self,
        params: &mut [f32],
        tensors: &[NamedTensor],
    ) -> Result<(), BackendError> {
        let names = self
            .0
            .iter()
            .map(|(name, shape, _)| (name.as_str(), shape.as_slice()));
        let matched = match_tensors(names, tensors)?;
        for ((.., range), t) in self.0.iter().zip(matched) {
            params[range.clone()].copy_from_slice(&t.data);
        }
        Ok(())
    }

    /// One AdamW step on `params` from `grad` (laid out alike). A non-finite
    /// gradient is an error naming its tensor, and changes nothing.
    pub(crate) fn step(
        &self,
        params: &mut [f32],
        grad: &[f32],
        lr: f64,
        adam: &mut AdamW,
    ) -> Result<(), BackendError> {
        let norm = squared_norm(grad);
        if !norm.is_finite() {
            let bad = self
                .0
                .iter()
                .find(|(.., r)| !grad[r.clone()].iter().all(|g| g.is_finite()));
            return Err(BackendError::NonFinite {
                what: format!("gradient of `{}`", bad.map_or("?", |(name, ..)| name)),
            });
        }
        adam.begin_step(norm);
        for (i, (.., range)) in self.0.iter().enumerate() {
            adam.update(i, &mut params[range.clone()], &grad[range.clone()], lr);
        }
        Ok(())
    }
}
