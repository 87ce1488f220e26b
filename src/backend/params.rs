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

    pub(crate) fn shape(&self) -> &[usize] {
        &self.shape
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
}

/// Pairs each of a model's parameters, given as `(name, shape)` in the model's
/// order, with the one tensor of `tensors` that names it and has its shape.
/// Every parameter must be named exactly once, and no other name may appear.
pub(crate) fn match_tensors<'t, 'n>(
    params: impl Iterator<Item = (&'n str, &'n [usize])>,
    tensors: &'t [NamedTensor],
) -> Result<Vec<&'t NamedTensor>, BackendError> {
    let problem = |name: &str, problem: String| BackendError::Parameter {
        name: name.into(),
        problem,
    };
    let params: Vec<(&str, &[usize])> = params.collect();
    let mut found: Vec<Option<&NamedTensor>> = vec![None; params.len()];
    for t in tensors {
        let i = params
            .iter()
            .position(|(name, _)| *name == t.name)
            .ok_or_else(|| problem(&t.name, "the model has no parameter of this name".into()))?;
        if found[i].replace(t).is_some() {
            return Err(problem(&t.name, "given twice".into()));
        }
    }
    params
        .iter()
        .zip(found)
        .map(|(&(name, shape), t)| {
            let t = t.ok_or_else(|| problem(name, "missing from the loaded tensors".into()))?;
            let len: usize = shape.iter().product();
            if t.shape != shape {
                Err(problem(
                    name,
                    format!("shape {:?} does not match the model's {shape:?}", t.shape),
                ))
            } else if t.data.len() != len {
                Err(problem(
                    name,
                    format!("{} values for {len} entries", t.data.len()),
                ))
            } else {
                Ok(t)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, shape: &[usize], len: usize) -> NamedTensor {
        NamedTensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: vec![0.5; len],
        }
    }

    /// The complaint `match_tensors` makes about `tensors` for parameters
    /// `w` (2×3) and `b` (3), or `None` when they match.
    fn complaint(tensors: &[NamedTensor]) -> Option<(String, String)> {
        let params = [("w", &[2usize, 3][..]), ("b", &[3usize][..])];
        match match_tensors(params.into_iter(), tensors) {
            Ok(matched) => {
                let names: Vec<&str> = matched.iter().map(|t| t.name.as_str()).collect();
                assert_eq!(names, ["w", "b"], "matched in the model's order");
                None
            }
            Err(BackendError::Parameter { name, problem }) => Some((name, problem)),
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn tensors_match_in_any_order_and_every_mismatch_is_named() {
        let (w, b) = (tensor("w", &[2, 3], 6), tensor("b", &[3], 3));
        assert_eq!(complaint(&[b.clone(), w.clone()]), None);
        let cases = [
            (vec![w.clone()], "b", "missing from the loaded tensors"),
            (vec![w.clone(), b.clone(), w.clone()], "w", "given twice"),
            (
                vec![w.clone(), b.clone(), tensor("c", &[1], 1)],
                "c",
                "the model has no parameter",
            ),
            (
                vec![tensor("w", &[3, 2], 6), b.clone()],
                "w",
                "shape [3, 2] does not match",
            ),
            (
                vec![w.clone(), tensor("b", &[3], 4)],
                "b",
                "4 values for 3 entries",
            ),
        ];
        for (tensors, name, problem) in cases {
            let (got_name, got_problem) = complaint(&tensors).expect("a mismatch");
            assert_eq!(got_name, name);
            assert!(got_problem.starts_with(problem), "{got_problem}");
        }
    }
}
