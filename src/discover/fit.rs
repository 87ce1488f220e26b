//! What every discovery method produces, and the optimiser they share.

use nalgebra::DMatrix;

/// One point of a method's loss history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossPoint {
    /// The step, from 1.
    pub step: usize,
    /// The method's loss on the training data.
    pub train: f64,
    /// The same loss on the validation data, with the generators held fixed.
    pub val: f64,
}

/// The generators a method learned and how its loss went.
#[derive(Debug, Clone)]
pub struct Fit {
    /// The learned generators, each of unit Frobenius norm.
    pub generators: Vec<DMatrix<f64>>,
    /// The loss at every step.
    pub history: Vec<LossPoint>,
}

/// Adam in f64 over one flat parameter vector, with β = (0.9, 0.999), ε = 1e-8.
pub(crate) struct Adam {
    step: i32,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Adam {
    pub(crate) fn new(len: usize) -> Adam {
        Adam {
            step: 0,
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }

    pub(crate) fn update(&mut self, theta: &mut [f64], grad: &[f64], lr: f64) {
        self.step += 1;
        let (c1, c2) = (1.0 - 0.9f64.powi(self.step), 1.0 - 0.999f64.powi(self.step));
        for (((t, g), m), v) in theta.iter_mut().zip(grad).zip(&mut self.m).zip(&mut self.v) {
            *m = 0.9 * *m + 0.1 * g;
            *v = 0.999 * *v + 0.001 * g * g;
            *t -= lr * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
        }
    }
}
