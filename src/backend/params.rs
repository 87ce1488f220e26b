//! Trainable parameters: flat dfdx tensors with a name and a logical shape.

use super::kernels::tape::{host, KernelDevice};
use super::{BackendError, NamedTensor};
use dfdx::prelude::*;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal, Uniform};

/// How a parameter's initial values are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Draw {
    /// U(−bound, bound), bound > 0.
    Uniform(f32),
    /// N(0, std²), std > 0.
    Normal(f32),
    /// All zeros.
    Zero,
}

/// A bare bound is a uniform draw, as most layers start.
impl From<f32> for Draw {
    fn from(bound: f32) -> Self {
        Draw::Uniform(bound)
    }
}

/// One parameter tensor. Stored flat; `shape` is how it is named and exported.
pub(crate) struct Param<D: KernelDevice> {
    name: String,
    shape: Vec<usize>,
    tensor: Tensor<(usize,), f32, D>,
}

impl<D: KernelDevice> Param<D> {
    /// A parameter drawn as `draw` says with `rng` (the model's one seeded
    /// stream, so values depend only on the seed and the layer order).
    pub(crate) fn new(
        device: &D,
        name: String,
        shape: Vec<usize>,
        draw: impl Into<Draw>,
        rng: &mut StdRng,
    ) -> Result<Self, BackendError> {
        let len = shape.iter().product();
        let values: Vec<f32> = match draw.into() {
            Draw::Uniform(bound) => Uniform::new(-bound, bound)
                .sample_iter(rng)
                .take(len)
                .collect(),
            Draw::Normal(std) => Normal::new(0.0, std)
                .expect("a finite positive std")
                .sample_iter(rng)
                .take(len)
                .collect(),
            Draw::Zero => vec![0.0; len],
        };
        let tensor = device
            .try_tensor_from_vec(values, (len,))
            .map_err(BackendError::device)?;
        Ok(Param {
            name,
            shape,
            tensor,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn len(&self) -> usize {
        self.tensor.shape().0
    }

    /// A copy of the values.
    pub(crate) fn values(&self) -> Vec<f32> {
        host(&self.tensor)
    }

    /// The handle backward kernels write this parameter's gradient through
    /// (shares the buffer; gradients are keyed by the tensor's id).
    pub(crate) fn handle(&self) -> Tensor<(usize,), f32, D> {
        self.tensor.clone()
    }

    /// The tensor on a fresh tape of kind `T`, for dfdx's operations: its
    /// gradient is collected under this parameter's id.
    pub(crate) fn traced<T: Tape<f32, D>>(&self) -> Tensor<(usize,), f32, D, T> {
        self.tensor.retaped()
    }

    /// Overwrites the values.
    pub(crate) fn set(&mut self, values: &[f32]) {
        self.tensor.copy_from(values);
    }

    pub(crate) fn to_named(&self) -> NamedTensor {
        NamedTensor {
            name: self.name.clone(),
            shape: self.shape.clone(),
            data: self.values(),
        }
    }

    /// Whether `t` fits this parameter (shape and length).
    pub(crate) fn check(&self, t: &NamedTensor) -> Result<(), BackendError> {
        let problem = if t.shape != self.shape {
            Some(format!(
                "shape {:?} does not match the model's {:?}",
                t.shape, self.shape
            ))
        } else if t.data.len() != self.len() {
            Some(format!(
                "{} values for {} entries",
                t.data.len(),
                self.len()
            ))
        } else {
            None
        };
        match problem {
            Some(problem) => Err(BackendError::Parameter {
                name: t.name.clone(),
                problem,
            }),
            None => Ok(()),
        }
    }
}
