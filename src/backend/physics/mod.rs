//! Physics heads for `symmetry time`: networks whose output is the time
//! derivative of a state, built so that a learned energy is conserved.
//!
//! - [`Head::Hamiltonian`] (Greydanus et al. 2019) learns a scalar H(q, p) and
//!   predicts its symplectic gradient (∂H/∂p, −∂H/∂q).
//! - [`Head::Lagrangian`] (Cranmer et al. 2020) learns a scalar L(q, q̇) and
//!   predicts (q̇, q̈) with q̈ = (∇_q̇∇_q̇ᵀL)⁻¹[∇_qL − (∇_q∇_q̇ᵀL)q̇].
//! - [`Head::Direct`] is the unconstrained baseline predicting the derivative.
//!
//! A loss on ∂H/∂x, or on a Hessian of L, needs second (third) derivatives of
//! the network, which a first-order tape cannot give. The heads therefore
//! compute forward and backward passes by hand: dense products go to the
//! `gemm` crate and each activation with its derivatives is evaluated in one
//! elementwise pass. Every derivative is checked against finite differences in
//! the tests.
//!
//! ```
//! use symc::backend::physics::{Adam, DynamicsNet, Head, Init};
//! use symc::plan::Activation;
//!
//! // A Hamiltonian network for one coordinate, trained on the field of H = (q² + p²)/2.
//! let mut net = DynamicsNet::new(Head::Hamiltonian, 1, &[16], Activation::Tanh, Init::Uniform, 0)?;
//! let x = [0.5, 0.0, 0.0, 0.5, -0.3, 0.2];
//! let y = [0.0, -0.5, 0.5, 0.0, 0.2, 0.3];
//! let mut adam = Adam::new(net.parameters().len(), 1e-2);
//! let mut grad = vec![0.0; net.parameters().len()];
//! let first = net.loss_and_grad(&x, &y, &mut grad)?;
//! for _ in 0..200 {
//!     grad.fill(0.0);
//!     net.loss_and_grad(&x, &y, &mut grad)?;
//!     adam.step(net.parameters_mut(), &grad);
//! }
//! assert!(net.loss_and_grad(&x, &y, &mut grad)? < 0.1 * first);
//! # Ok::<(), symc::backend::physics::PhysicsError>(())
//! ```

mod act;
mod hnn;
mod linalg;
mod lnn;
mod mlp;

pub use mlp::Init;

use crate::plan::{Activation, Op};
use mlp::Mlp;
use serde::{Deserialize, Serialize};

/// Which vector field a [`DynamicsNet`] predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// Symplectic gradient of a learned H(q, p).
    Hamiltonian,
    /// Euler–Lagrange dynamics of a learned L(q, q̇).
    Lagrangian,
    /// The derivative itself (no structure).
    Direct,
}

/// Why a physics head could not be built or evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PhysicsError {
    #[error("a {0:?} head needs at least one hidden layer")]
    NoHiddenLayer(Head),
    #[error("a dynamics head needs at least one coordinate")]
    NoCoordinates,
    #[error("expected a multiple of {expected} values, found {found}")]
    Shape { expected: usize, found: usize },
    #[error("inputs describe {x} states but targets {y}")]
    RowMismatch { x: usize, y: usize },
    #[error("the learned mass matrix ∂²L/∂q̇² is singular at state {state} (pivot {pivot:e} in row {row}); add damping")]
    SingularMass {
        state: usize,
        row: usize,
        pivot: f64,
    },
    #[error("{0} is not a Hamiltonian or Lagrangian node")]
    NotAHead(String),
}

/// A network predicting the time derivative of a state of `coordinates`
/// positions and as many momenta (or velocities), with its parameters.
#[derive(Debug)]
pub struct DynamicsNet {
    head: Head,
    coordinates: usize,
    mlp: Mlp,
    damping: f64,
    work: hnn::Work,
    lnn_work: lnn::Work,
}

impl DynamicsNet {
    /// A head over an MLP with the given hidden widths. Hamiltonian and
    /// Lagrangian heads have one scalar output, the direct head one per state
    /// component.
    pub fn new(
        head: Head,
        coordinates: usize,
        hidden: &[usize],
        act: Activation,
        init: Init,
        seed: u64,
    ) -> Result<Self, PhysicsError> {
        if coordinates == 0 {
            return Err(PhysicsError::NoCoordinates);
        }
        if hidden.is_empty() && head != Head::Direct {
            return Err(PhysicsError::NoHiddenLayer(head));
        }
        let d = 2 * coordinates;
        let out = if head == Head::Direct { d } else { 1 };
        let sizes = std::iter::once(d)
            .chain(hidden.iter().copied())
            .chain([out])
            .collect();
        let mlp = Mlp::new(sizes, act, init, seed);
        Ok(DynamicsNet {
            head,
            coordinates,
            mlp,
            damping: 0.0,
            work: hnn::Work::default(),
            lnn_work: lnn::Work::default(),
        })
    }

    /// The head a `Hamiltonian` or `Lagrangian` node of the IR describes.
    pub fn from_op(op: &Op, init: Init, seed: u64) -> Result<Self, PhysicsError> {
        match op {
            Op::Hamiltonian {
                coordinates,
                hidden,
                act,
            } => Self::new(Head::Hamiltonian, *coordinates, hidden, *act, init, seed),
            Op::Lagrangian {
                coordinates,
                hidden,
                act,
            } => Self::new(Head::Lagrangian, *coordinates, hidden, *act, init, seed),
            other => Err(PhysicsError::NotAHead(format!("{other:?}"))),
        }
    }

    /// Adds `damping`·I to the learned mass matrix before it is solved
    /// (Lagrangian head only), trading exactness for robustness when the
    /// matrix is close to singular.
    pub fn with_damping(mut self, damping: f64) -> Self {
        self.damping = damping;
        self
    }

    pub fn head(&self) -> Head {
        self.head
    }

    /// Size of a state: positions and momenta (or velocities).
    pub fn state_dim(&self) -> usize {
        2 * self.coordinates
    }

    /// All trainable parameters, as one vector.
    pub fn parameters(&self) -> &[f32] {
        &self.mlp.params
    }

    pub fn parameters_mut(&mut self) -> &mut [f32] {
        &mut self.mlp.params
    }

    fn rows(&self, x: &[f32]) -> Result<usize, PhysicsError> {
        let d = self.state_dim();
        if x.len() % d != 0 {
            return Err(PhysicsError::Shape {
                expected: d,
                found: x.len(),
            });
        }
        Ok(x.len() / d)
    }

    /// The predicted time derivative at each state of `x` (row-major,
    /// `state_dim()` values per state).
    pub fn field(&self, x: &[f32]) -> Result<Vec<f32>, PhysicsError> {
        let rows = self.rows(x)?;
        let mut out = vec![0.0; x.len()];
        match self.head {
            Head::Direct => self
                .mlp
                .output(x, rows, &cache(&self.mlp, x, rows), &mut out),
            Head::Hamiltonian => {
                let mut work = hnn::Work::default();
                hnn::input_gradient(&self.mlp, x, rows, &mut work);
                hnn::symplectic(work.gradient(), self.coordinates, &mut out);
            }
            Head::Lagrangian => {
                lnn::field(&self.mlp, self.coordinates, x, rows, self.damping, &mut out)?
            }
        }
        Ok(out)
    }

    /// The learned scalar (H or L) at each state; `None` for the direct head.
    pub fn scalar(&self, x: &[f32]) -> Result<Option<Vec<f32>>, PhysicsError> {
        let rows = self.rows(x)?;
        Ok((self.head != Head::Direct).then(|| self.mlp.eval(x, rows)))
    }

    /// Mean squared error of the predicted field against `y` (mean over states
    /// and components); adds its gradient with respect to [`Self::parameters`]
    /// to `grad`.
    pub fn loss_and_grad(
        &mut self,
        x: &[f32],
        y: &[f32],
        grad: &mut [f32],
    ) -> Result<f32, PhysicsError> {
        let rows = self.rows(x)?;
        let y_rows = self.rows(y)?;
        if rows != y_rows {
            return Err(PhysicsError::RowMismatch { x: rows, y: y_rows });
        }
        if grad.len() != self.mlp.params.len() {
            return Err(PhysicsError::Shape {
                expected: self.mlp.params.len(),
                found: grad.len(),
            });
        }
        Ok(match self.head {
            Head::Hamiltonian => hnn::loss_and_grad(
                &self.mlp,
                self.coordinates,
                x,
                y,
                rows,
                grad,
                &mut self.work,
            ),
            Head::Direct => direct_loss_and_grad(&self.mlp, x, y, rows, grad, &mut self.work),
            Head::Lagrangian => {
                let n = self.coordinates;
                lnn::loss_and_grad(
                    &self.mlp,
                    n,
                    x,
                    y,
                    rows,
                    self.damping,
                    grad,
                    &mut self.lnn_work,
                )?
            }
        })
    }
}

fn cache(mlp: &Mlp, x: &[f32], rows: usize) -> mlp::Cache {
    let mut cache = mlp::Cache::default();
    mlp.forward_hidden(x, rows, &mut cache);
    cache
}

/// Plain regression of the field: ordinary backpropagation.
fn direct_loss_and_grad(
    mlp: &Mlp,
    x: &[f32],
    y: &[f32],
    rows: usize,
    grad: &mut [f32],
    work: &mut hnn::Work,
) -> f32 {
    mlp.forward_hidden(x, rows, &mut work.cache);
    let mut dy = vec![0.0; y.len()];
    mlp.output(x, rows, &work.cache, &mut dy);
    let scale = 2.0 / y.len() as f32;
    let mut loss = 0.0f64;
    for (d, y) in dy.iter_mut().zip(y) {
        let r = *d - y;
        loss += f64::from(r * r);
        *d = scale * r;
    }
    mlp.backward_value(
        x,
        rows,
        &work.cache,
        mlp.layers() - 1,
        &dy,
        None,
        &mut work.scratch,
        grad,
    );
    (loss / y.len() as f64) as f32
}

/// Adam (Kingma & Ba) over a flat parameter vector.
#[derive(Debug, Clone)]
pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    steps: i32,
}

impl Adam {
    /// Adam with PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8).
    pub fn new(parameters: usize, lr: f32) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: vec![0.0; parameters],
            v: vec![0.0; parameters],
            steps: 0,
        }
    }

    /// One update of `params` along `grad`.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        self.steps += 1;
        let c1 = 1.0 - self.beta1.powi(self.steps);
        let c2 = 1.0 - self.beta2.powi(self.steps);
        let (b1, b2, eps, lr) = (self.beta1, self.beta2, self.eps, self.lr);
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grad)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests;
