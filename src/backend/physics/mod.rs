//! Physics heads for `symmetry time`: networks whose output is the time
//! derivative of a state, built so that a learned energy is conserved.
//!
//! - [`Head::Hamiltonian`] (Greydanus et al. 2019) learns a scalar H(q, p) and
//!   predicts its symplectic gradient (∂H/∂p, −∂H/∂q); [`DynamicsNet::graph`]
//!   writes H as a sum of body and pair energies (Sanchez-Gonzalez et al.
//!   2019), which also conserves total linear momentum.
//! - [`Head::Lagrangian`] (Cranmer et al. 2020) learns a scalar L(q, q̇) and
//!   predicts (q̇, q̈) with q̈ = (∇_q̇∇_q̇ᵀL)⁻¹[∇_qL − (∇_q∇_q̇ᵀL)q̇].
//! - [`Head::Direct`] is the unconstrained baseline predicting the derivative.
//!
//! A loss on ∂H/∂x, or on a Hessian of L, needs second (third) derivatives of
//! the network, which a first-order tape cannot give. The heads therefore
//! compute forward and backward passes by hand: dense products go to the
//! backend's GEMM (`kernels::gemm`) and each activation with its derivatives is evaluated in one
//! elementwise pass. Every derivative is checked against finite differences in
//! the tests.
//!
//! ```
//! use symc::backend::physics::{DynamicsNet, Head, Init};
//! use symc::plan::Activation;
//! use symc::train::dynamics::fit;
//!
//! // A Hamiltonian network for one coordinate, trained on the field of H = (q² + p²)/2.
//! let mut net = DynamicsNet::new(Head::Hamiltonian, 1, &[16], Activation::Tanh, Init::Uniform, 0)?;
//! let x = [0.5, 0.0, 0.0, 0.5, -0.3, 0.2];
//! let y = [0.0, -0.5, 0.5, 0.0, 0.2, 0.3];
//! let mut grad = vec![0.0; net.parameters().len()];
//! let first = net.loss_and_grad(&x, &y, &mut grad)?.mse;
//! let last = fit(&mut net, &x, &y, 200, 1e-2)?;
//! assert!(last.mse < 0.1 * first);
//! # Ok::<(), symc::backend::physics::PhysicsError>(())
//! ```
//!
//! On a device whose buffers these host passes cannot reach (a GPU), the
//! Hamiltonian and direct heads are written as dfdx tensor operations instead
//! (`taped`), with ∂H/∂x as an explicit expression that the first-order tape
//! differentiates; its tests check it against the hand-derived passes.
//!
//! Inside a compiled model ([`crate::backend::Model`]) a graph made of one
//! `Hamiltonian`, `HamiltonianGraph` or `Lagrangian` node runs on these
//! heads. Its parameters are named `n{node}.weight.{l}` (`[out, in]`) and
//! `n{node}.bias.{l}` (`[out]`) for layer l = 0, 1, … of the head's MLP (the
//! last layer has one output); a graph network's two MLPs are
//! `n{node}.edge.…` and `n{node}.node.…`. Hamiltonian heads start from
//! PyTorch's uniform initialisation, Lagrangian heads from the LNN paper's
//! ([`Init::Lnn`]) unless the spec says `lagrangian(init = uniform)`, with the
//! node's damping added to their mass matrix.

mod act;
mod compiled;
mod hgn;
mod hnn;
mod linalg;
mod lnn;
mod mlp;
#[cfg(any(test, feature = "cuda"))]
pub(crate) mod taped;

pub(crate) use compiled::CompiledHead;
pub use hnn::Bracket;
pub use mlp::Init;

use crate::plan::{Activation, Op};
use hgn::GraphEnergy;
pub(crate) use mlp::{zeroed, Cache as MlpCache, Mlp, Scratch as MlpScratch};
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
    #[error("{0} is not a Hamiltonian, Hamiltonian graph or Lagrangian node")]
    NotAHead(String),
    #[error("a Poisson-bracket penalty needs a Hamiltonian head, not a {0:?} one")]
    BracketWithoutHamiltonian(Head),
}

impl From<PhysicsError> for crate::backend::BackendError {
    fn from(e: PhysicsError) -> Self {
        use crate::backend::BackendError;
        match e {
            PhysicsError::SingularMass { .. } => BackendError::Singular {
                what: e.to_string(),
            },
            PhysicsError::Shape { expected, found } => BackendError::ShapeMismatch {
                what: "state values".into(),
                expected,
                found,
            },
            PhysicsError::RowMismatch { x, y } => BackendError::ShapeMismatch {
                what: "target rows".into(),
                expected: x,
                found: y,
            },
            _ => BackendError::InvalidGraph(e.to_string()),
        }
    }
}

/// Values of the terms of a head's training objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// Mean squared error of the field (over states and components).
    pub mse: f64,
    /// Each Poisson-bracket penalty, weighted, in the order they were given.
    pub brackets: Vec<f64>,
}

impl Objective {
    pub fn total(&self) -> f64 {
        self.mse + self.brackets.iter().sum::<f64>()
    }
}

/// A network predicting the time derivative of a state of `coordinates`
/// positions and as many momenta (or velocities), with its parameters.
#[derive(Debug)]
pub struct DynamicsNet {
    head: Head,
    coordinates: usize,
    energy: Energy,
    damping: f64,
    brackets: Vec<Bracket>,
    work: hnn::Work,
    lnn_work: lnn::Work,
    graph_work: hgn::Work,
    halves: hnn::Halves,
}

/// The network behind a head.
#[derive(Debug)]
enum Energy {
    /// One MLP over the whole state: H, L or the field itself.
    Dense(Mlp),
    /// H as a sum of node and edge energies over bodies (Hamiltonian head).
    Graph(GraphEnergy),
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
        Ok(Self::with_energy(head, coordinates, Energy::Dense(mlp)))
    }

    /// A Hamiltonian graph network over `bodies` bodies in `dims` dimensions:
    /// H(q, p) = Σᵢ φₙ(pᵢ) + Σ_{i≠j} φₑ(qⱼ − qᵢ, ‖qⱼ − qᵢ‖), with node and
    /// edge MLPs of the given hidden widths shared by all bodies and pairs.
    /// A state is every position (`bodies × dims`, row-major), then every
    /// momentum. The field is invariant to translations of all positions,
    /// equivariant to permutations of the bodies and conserves total linear
    /// momentum exactly; the parameters do not depend on `bodies`, so the
    /// same seed draws the same ones for any number of bodies.
    ///
    /// ```
    /// use symc::backend::physics::DynamicsNet;
    /// use symc::plan::Activation;
    ///
    /// let net = DynamicsNet::graph(3, 2, &[16], Activation::Softplus, 0)?;
    /// let x = [0.0, 0.0, 1.0, 0.2, -0.4, 0.9, 0.1, 0.3, -0.2, 0.0, 0.5, 0.5];
    /// let field = net.field(&x)?;
    /// // The forces ṗ on the three bodies sum to zero.
    /// for c in 0..2 {
    ///     let total: f32 = (0..3).map(|i| field[6 + 2 * i + c]).sum();
    ///     assert!(total.abs() < 1e-5);
    /// }
    /// let four = DynamicsNet::graph(4, 2, &[16], Activation::Softplus, 0)?;
    /// assert_eq!(four.parameters(), net.parameters());
    /// # Ok::<(), symc::backend::physics::PhysicsError>(())
    /// ```
    pub fn graph(
        bodies: usize,
        dims: usize,
        hidden: &[usize],
        act: Activation,
        seed: u64,
    ) -> Result<Self, PhysicsError> {
        if bodies * dims == 0 {
            return Err(PhysicsError::NoCoordinates);
        }
        if hidden.is_empty() {
            return Err(PhysicsError::NoHiddenLayer(Head::Hamiltonian));
        }
        let energy = GraphEnergy::new(bodies, dims, hidden, act, seed);
        Ok(Self::with_energy(
            Head::Hamiltonian,
            bodies * dims,
            Energy::Graph(energy),
        ))
    }

    fn with_energy(head: Head, coordinates: usize, energy: Energy) -> Self {
        DynamicsNet {
            head,
            coordinates,
            energy,
            damping: 0.0,
            brackets: Vec::new(),
            work: hnn::Work::default(),
            lnn_work: lnn::Work::default(),
            graph_work: hgn::Work::default(),
            halves: hnn::Halves::default(),
        }
    }

    /// The head a `Hamiltonian`, `HamiltonianGraph` or `Lagrangian` node of
    /// the IR describes. Hamiltonian heads start from PyTorch's uniform
    /// initialisation; a Lagrangian head takes its start and damping from the node.
    pub fn from_op(op: &Op, seed: u64) -> Result<Self, PhysicsError> {
        match op {
            Op::Hamiltonian {
                coordinates,
                hidden,
                act,
            } => Self::new(
                Head::Hamiltonian,
                *coordinates,
                hidden,
                *act,
                Init::Uniform,
                seed,
            ),
            Op::Lagrangian {
                coordinates,
                hidden,
                act,
                damping,
                init,
            } => Ok(
                Self::new(Head::Lagrangian, *coordinates, hidden, *act, *init, seed)?
                    .with_damping(*damping),
            ),
            Op::HamiltonianGraph {
                bodies,
                dims,
                hidden,
                act,
            } => Self::graph(*bodies, *dims, hidden, *act, seed),
            other => Err(PhysicsError::NotAHead(format!("{other:?}"))),
        }
    }

    /// Adds `damping`·I to the learned mass matrix before it is solved
    /// (Lagrangian head only): the head's L becomes L + damping·½‖q̇‖², still a
    /// Lagrangian, whose mass matrix stays away from singular where the
    /// network's own is small.
    pub fn with_damping(mut self, damping: f64) -> Self {
        self.damping = damping;
        self
    }

    /// Adds Poisson-bracket penalties to the training objective (Hamiltonian
    /// head only); each generator must be `state_dim() × state_dim()`.
    pub fn with_brackets(mut self, brackets: Vec<Bracket>) -> Result<Self, PhysicsError> {
        if !brackets.is_empty() && self.head != Head::Hamiltonian {
            return Err(PhysicsError::BracketWithoutHamiltonian(self.head));
        }
        let d = self.state_dim();
        if let Some(b) = brackets.iter().find(|b| b.generator.len() != d * d) {
            return Err(PhysicsError::Shape {
                expected: d * d,
                found: b.generator.len(),
            });
        }
        self.brackets = brackets;
        Ok(self)
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
        match &self.energy {
            Energy::Dense(mlp) => &mlp.params,
            Energy::Graph(graph) => &graph.params,
        }
    }

    pub fn parameters_mut(&mut self) -> &mut [f32] {
        match &mut self.energy {
            Energy::Dense(mlp) => &mut mlp.params,
            Energy::Graph(graph) => &mut graph.params,
        }
    }

    /// The one MLP of a head over the whole state; `None` for a graph network.
    #[cfg(any(test, feature = "cuda"))]
    pub(crate) fn dense(&self) -> Option<&Mlp> {
        match &self.energy {
            Energy::Dense(mlp) => Some(mlp),
            Energy::Graph(_) => None,
        }
    }

    /// Every MLP of the head with its name (empty for the one MLP of a dense
    /// head) and the offset of its parameters in [`Self::parameters`].
    pub(crate) fn networks(&self) -> Vec<(&'static str, usize, Mlp<&[f32]>)> {
        match &self.energy {
            Energy::Dense(mlp) => vec![(
                "",
                0,
                Mlp {
                    sizes: mlp.sizes.clone(),
                    act: mlp.act,
                    params: &mlp.params[..],
                },
            )],
            Energy::Graph(graph) => graph.networks().into(),
        }
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
        let n = self.coordinates;
        match (&self.energy, self.head) {
            (Energy::Graph(graph), _) => {
                let mut work = hgn::Work::default();
                graph.input_gradient(x, rows, &mut work);
                hnn::symplectic(work.gradient(), n, &mut out);
            }
            (Energy::Dense(mlp), Head::Direct) => {
                mlp.output(x, rows, &cache(mlp, x, rows), &mut out)
            }
            (Energy::Dense(mlp), Head::Hamiltonian) => {
                let mut work = hnn::Work::default();
                hnn::input_gradient(mlp, x, rows, &mut work);
                hnn::symplectic(work.gradient(), n, &mut out);
            }
            (Energy::Dense(mlp), Head::Lagrangian) => {
                lnn::field(mlp, n, x, rows, self.damping, &mut out)?
            }
        }
        Ok(out)
    }

    /// The learned scalar (H or L) at each state; `None` for the direct head.
    pub fn scalar(&self, x: &[f32]) -> Result<Option<Vec<f32>>, PhysicsError> {
        let rows = self.rows(x)?;
        Ok(match &self.energy {
            Energy::Graph(graph) => Some(graph.energy(x, rows)),
            Energy::Dense(mlp) => (self.head != Head::Direct).then(|| mlp.eval(x, rows)),
        })
    }

    /// The training objective at `x` against targets `y`: the mean squared
    /// error of the predicted field (mean over states and components) plus any
    /// Poisson-bracket penalties. Adds its gradient with respect to
    /// [`Self::parameters`] to `grad`.
    pub fn loss_and_grad(
        &mut self,
        x: &[f32],
        y: &[f32],
        grad: &mut [f32],
    ) -> Result<Objective, PhysicsError> {
        let rows = self.rows(x)?;
        let y_rows = self.rows(y)?;
        if rows != y_rows {
            return Err(PhysicsError::RowMismatch { x: rows, y: y_rows });
        }
        let count = self.parameters().len();
        if grad.len() != count {
            return Err(PhysicsError::Shape {
                expected: count,
                found: grad.len(),
            });
        }
        let n = self.coordinates;
        let mse = match (&self.energy, self.head) {
            (Energy::Graph(graph), _) => {
                let work = &mut self.graph_work;
                graph.input_gradient(x, rows, work);
                let terms =
                    hnn::objective_gradient(work.gradient_mut(), n, x, y, rows, &self.brackets);
                graph.backward(rows, grad, work);
                return Ok(terms);
            }
            (Energy::Dense(mlp), Head::Hamiltonian) => {
                return Ok(hnn::loss_and_grad_split(
                    mlp,
                    n,
                    x,
                    y,
                    rows,
                    &self.brackets,
                    grad,
                    &mut self.halves,
                ))
            }
            (Energy::Dense(mlp), Head::Direct) => {
                direct_loss_and_grad(mlp, x, y, rows, grad, &mut self.work)
            }
            (Energy::Dense(mlp), Head::Lagrangian) => {
                lnn::loss_and_grad(mlp, n, x, y, rows, self.damping, grad, &mut self.lnn_work)?
            }
        };
        Ok(Objective {
            mse: f64::from(mse),
            brackets: Vec::new(),
        })
    }

    /// The training objective at `x` against `y`, without gradients.
    pub fn objective(&self, x: &[f32], y: &[f32]) -> Result<Objective, PhysicsError> {
        let rows = self.rows(x)?;
        let y_rows = self.rows(y)?;
        if rows != y_rows {
            return Err(PhysicsError::RowMismatch { x: rows, y: y_rows });
        }
        let field = self.field(x)?;
        let mse = field
            .iter()
            .zip(y)
            .map(|(f, y)| f64::from(f - y).powi(2))
            .sum::<f64>()
            / field.len() as f64;
        // ∇H = −J·field, since the field is J∇H and J² = −I.
        let n = self.coordinates;
        let mut grad_h = field;
        for g in grad_h.chunks_exact_mut(2 * n) {
            let (q, p) = g.split_at_mut(n);
            for (q, p) in q.iter_mut().zip(p) {
                (*q, *p) = (-*p, *q);
            }
        }
        Ok(Objective {
            mse,
            brackets: hnn::brackets(&self.brackets, &grad_h, x, rows),
        })
    }
}

fn cache(mlp: &Mlp, x: &[f32], rows: usize) -> mlp::Cache {
    let mut cache = mlp::Cache::default();
    mlp.forward_hidden(x, rows, &mut cache, mlp::Keep::Values);
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
    let scale = 2.0 / y.len() as f32;
    let mut residual = Vec::new();
    let sse = mlp.squared_error(
        (x, y, rows),
        scale,
        &mut work.cache,
        &mut work.scratch,
        &mut residual,
        grad,
    );
    (sse / y.len() as f64) as f32
}

#[cfg(test)]
mod tests;
