//! The Hamiltonian and direct heads as dfdx tensor operations, so that they
//! run on devices whose buffers the hand-derived host passes cannot reach
//! (GPUs); [`CompiledHead`](super::CompiledHead) stays the host's path, and
//! the tests check this head against it.
//!
//! dfdx has no double backward, yet a Hamiltonian head's loss is on ∂H/∂x.
//! [`TapedHead`] therefore writes ∂H/∂x itself as a tensor expression, the
//! chain of the hand-derived head: with zⱼ = aⱼ₋₁Wⱼᵀ + bⱼ, aⱼ = σ(zⱼ) and
//! e_{L−1} = w (the output weight), eⱼ₋₁ = (eⱼ ⊙ σ′(zⱼ))Wⱼ and ∂H/∂x = e₋₁,
//! where σ′(z) is itself composed of tensor operations. The first-order tape
//! records every one of them, so one `backward()` of the loss on the
//! symplectic gradient gives the parameter gradients, through σ′ as well as
//! through the values. The chain runs from the output down rather than
//! forward from the input: H is a scalar, so this costs one product with
//! each weight whatever the size of the state.
//!
//! Parameters, their names, initialisation and loss terms come from the same
//! [`HeadGraph`] as the compiled head's, so both start from identical weights
//! and either loads the other's. AdamW runs on the host copy of the weights,
//! which is sent to the device after each step. The Lagrangian head (a
//! Hessian and batched solves) is not written as tensor operations.

use super::compiled::HeadGraph;
use super::{Head, Objective};
use crate::backend::adam::AdamW;
use crate::backend::kernels::tape::Mat;
use crate::backend::{BackendError, Batch, LossBreakdown, NamedTensor};
use crate::plan::{Activation, ModelGraph};
use dfdx::prelude::*;
use std::ops::Range;

/// A scalar tensor carrying the tape `T`.
type Scalar<D, T> = Tensor<(), f32, D, T>;

/// A head's objective as a tensor, and its terms as numbers.
type TapedObjective<D, T> = (Scalar<D, T>, Objective);

/// σ(z) and σ′(z).
type ValueAndSlope<D, T> = (Mat<D, T>, Mat<D, T>);

/// A head graph whose passes are dfdx operations on device `D`.
pub(crate) struct TapedHead<D: Device<f32>> {
    /// The graph read, with the master copy of the parameters.
    graph: HeadGraph,
    device: D,
    /// Each layer's weight (`[out, in]`) and bias, on the device.
    weights: Vec<Tensor<(usize, usize), f32, D>>,
    biases: Vec<Tensor<(usize,), f32, D>>,
    /// Where each layer's weight and bias lie in the parameter vector.
    layout: Vec<(Range<usize>, Range<usize>)>,
    act: Activation,
    field: Field<D>,
    grad: Vec<f32>,
}

/// How the field follows from the network.
enum Field<D: Device<f32>> {
    /// ∇H·`symplectic` = (∂H/∂p, −∂H/∂q), with each Poisson-bracket penalty
    /// as its weight and Gᵀ, so that a row of states times Gᵀ is each Gx.
    Hamiltonian {
        symplectic: Mat<D, NoneTape>,
        brackets: Vec<(f32, Mat<D, NoneTape>)>,
    },
    /// The network's output.
    Direct,
}

impl<D: Device<f32>> TapedHead<D> {
    /// The head of `graph` on `device` when the graph is an input followed by
    /// one Hamiltonian node (as for [`super::CompiledHead`]); `None` for any
    /// other graph, and an error for a Lagrangian node.
    pub(crate) fn from_graph(
        graph: &ModelGraph,
        device: D,
        seed: u64,
    ) -> Result<Option<Self>, BackendError> {
        HeadGraph::read(graph, seed)?
            .map(|graph| Self::new(graph, device))
            .transpose()
    }

    fn new(graph: HeadGraph, device: D) -> Result<Self, BackendError> {
        let net = &graph.net;
        let d = net.state_dim();
        let matrix = |values: Vec<f32>, rows: usize, cols: usize| {
            device
                .try_tensor_from_vec(values, (rows, cols))
                .map_err(BackendError::device)
        };
        let field = match net.head() {
            Head::Hamiltonian => {
                let n = net.coordinates;
                let mut symplectic = vec![0.0; d * d];
                for i in 0..n {
                    symplectic[(n + i) * d + i] = 1.0;
                    symplectic[i * d + n + i] = -1.0;
                }
                let brackets = net
                    .brackets
                    .iter()
                    .map(|b| {
                        let transposed = (0..d * d).map(|k| b.generator[(k % d) * d + k / d]);
                        Ok((b.weight as f32, matrix(transposed.collect(), d, d)?))
                    })
                    .collect::<Result<_, BackendError>>()?;
                Field::Hamiltonian {
                    symplectic: matrix(symplectic, d, d)?,
                    brackets,
                }
            }
            Head::Direct => Field::Direct,
            Head::Lagrangian => {
                return Err(BackendError::Unsupported {
                    op: "Lagrangian head as tensor operations".into(),
                })
            }
        };
        let mlp = net.dense().ok_or_else(|| BackendError::HostOnly {
            what: "a Hamiltonian graph network".into(),
        })?;
        let layout = (0..mlp.layers())
            .map(|l| {
                let (w, b) = mlp.offsets(l);
                (w..b, b..b + mlp.sizes[l + 1])
            })
            .collect();
        let act = mlp.act;
        let layers = 0..mlp.layers();
        let weights = layers
            .clone()
            .map(|l| matrix(mlp.weight(l).to_vec(), mlp.sizes[l + 1], mlp.sizes[l]))
            .collect::<Result<_, _>>()?;
        let biases = layers
            .map(|l| {
                device
                    .try_tensor_from_vec(mlp.bias(l).to_vec(), (mlp.sizes[l + 1],))
                    .map_err(BackendError::device)
            })
            .collect::<Result<_, _>>()?;
        Ok(TapedHead {
            grad: vec![0.0; graph.parameter_count()],
            graph,
            device,
            weights,
            biases,
            layout,
            act,
            field,
        })
    }

    pub(crate) fn parameter_count(&self) -> usize {
        self.graph.parameter_count()
    }

    /// Lengths of the parameter tensors, in [`Self::named_parameters`] order.
    pub(crate) fn tensor_lengths(&self) -> impl Iterator<Item = usize> + '_ {
        self.graph.tensor_lengths()
    }

    /// The predicted time derivative at `rows` states.
    pub(crate) fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>, BackendError> {
        self.graph.check_rows(x, rows)?;
        let x = self.states(x, rows)?;
        Ok(self.predict(x).map_err(BackendError::device)?.as_vec())
    }

    pub(crate) fn evaluate(&self, batch: &Batch<'_>) -> Result<LossBreakdown, BackendError> {
        let (_, objective) = self.objective::<NoneTape>(batch)?;
        Ok(self.graph.breakdown(&objective))
    }

    /// One AdamW step; the losses returned are those before it. A non-finite
    /// loss or gradient is an error and leaves the parameters unchanged.
    pub(crate) fn train_step(
        &mut self,
        batch: &Batch<'_>,
        lr: f64,
        adam: &mut AdamW,
    ) -> Result<LossBreakdown, BackendError> {
        let objective = self.loss_and_grad(batch)?;
        let breakdown = self.graph.step(&objective, &mut self.grad, lr, adam)?;
        self.upload();
        Ok(breakdown)
    }

    pub(crate) fn named_parameters(&self) -> Vec<NamedTensor> {
        self.graph.named_parameters()
    }

    /// Replaces all parameters; `tensors` must name each exactly once with its
    /// shape. On error nothing is changed.
    pub(crate) fn load_parameters(&mut self, tensors: &[NamedTensor]) -> Result<(), BackendError> {
        self.graph.load_parameters(tensors)?;
        self.upload();
        Ok(())
    }

    /// The head's objective at `batch`, leaving its gradient with respect to
    /// the parameters in `self.grad` (laid out like the parameters).
    fn loss_and_grad(&mut self, batch: &Batch<'_>) -> Result<Objective, BackendError> {
        let (total, objective) = self.objective::<OwnedTape<f32, D>>(batch)?;
        let mut grads = total.try_backward().map_err(BackendError::device)?;
        let layers = self.weights.iter().zip(&self.biases).zip(&self.layout);
        for ((w, b), (at_w, at_b)) in layers {
            // A parameter the loss does not reach (H's constant) has no gradient yet.
            grads.try_alloc_for(w).map_err(BackendError::device)?;
            grads.try_alloc_for(b).map_err(BackendError::device)?;
            grads.get(w).copy_into(&mut self.grad[at_w.clone()]);
            grads.get(b).copy_into(&mut self.grad[at_b.clone()]);
        }
        Ok(objective)
    }

    /// Sends the master copy of the parameters to the device.
    fn upload(&mut self) {
        let params = self.graph.net.parameters();
        let layers = self.weights.iter_mut().zip(&mut self.biases);
        for ((w, b), (at_w, at_b)) in layers.zip(&self.layout) {
            w.copy_from(&params[at_w.clone()]);
            b.copy_from(&params[at_b.clone()]);
        }
    }

    /// `rows` states as a tensor.
    fn states(&self, values: &[f32], rows: usize) -> Result<Mat<D, NoneTape>, BackendError> {
        self.device
            .try_tensor_from_vec(values.to_vec(), (rows, self.graph.net.state_dim()))
            .map_err(BackendError::device)
    }

    /// The head's objective at `batch` as a tensor carrying the tape `T`,
    /// and its terms as numbers.
    fn objective<T: Tape<f32, D>>(
        &self,
        batch: &Batch<'_>,
    ) -> Result<TapedObjective<D, T>, BackendError> {
        self.graph.check_rows(batch.x, batch.rows)?;
        let found = batch.y.len();
        if found != batch.x.len() {
            return Err(BackendError::ShapeMismatch {
                what: "target values".into(),
                expected: batch.x.len(),
                found,
            });
        }
        let x = self.states(batch.x, batch.rows)?;
        let y = self.states(batch.y, batch.rows)?;
        self.terms(x, y).map_err(BackendError::device)
    }

    /// The objective at the states `x` against the targets `y`.
    fn terms<T: Tape<f32, D>>(
        &self,
        x: Mat<D, NoneTape>,
        y: Mat<D, NoneTape>,
    ) -> Result<TapedObjective<D, T>, D::Err> {
        let (field, penalties) = match &self.field {
            Field::Hamiltonian {
                symplectic,
                brackets,
            } => {
                let grad_h = self.input_gradient(x.retaped::<T>())?;
                // (∇H·Gx)² averaged over the states, for each generator G. The
                // penalties read aliases of ∇H; its own tape, holding the whole
                // network, goes on with the field and so always reaches the loss.
                let penalties = brackets
                    .iter()
                    .map(|(weight, gt)| {
                        let flow = x.clone().try_matmul(gt.clone())?;
                        grad_h
                            .retaped::<T>()
                            .try_mul(flow)?
                            .try_sum::<(usize,), Axis<1>>()?
                            .try_square()?
                            .try_mean::<(), _>()?
                            .try_mul(*weight)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (grad_h.try_matmul(symplectic.clone())?, penalties)
            }
            Field::Direct => (self.output(x.retaped::<T>())?, Vec::new()),
        };
        let mse = field.try_sub(y)?.try_square()?.try_mean::<(), _>()?;
        let objective = Objective {
            mse: scalar(&mse),
            brackets: penalties.iter().map(scalar).collect(),
        };
        let total = penalties.into_iter().try_fold(mse, |t, p| t.try_add(p))?;
        Ok((total, objective))
    }

    /// The predicted field at the states `x`.
    fn predict<T: Tape<f32, D>>(&self, x: Mat<D, T>) -> Result<Mat<D, T>, D::Err> {
        match &self.field {
            Field::Hamiltonian { symplectic, .. } => {
                self.input_gradient(x)?.try_matmul(symplectic.clone())
            }
            Field::Direct => self.output(x),
        }
    }

    /// ∂H/∂x at the states `x`, for a network with a scalar output and at
    /// least one hidden layer.
    fn input_gradient<T: Tape<f32, D>>(&self, x: Mat<D, T>) -> Result<Mat<D, T>, D::Err> {
        let rows = x.shape().0;
        let top = self.weights.len() - 1;
        let mut slopes = Vec::with_capacity(top);
        let mut a = x;
        for l in 0..top {
            let (value, slope) = value_and_slope(self.act, self.affine(a, l)?)?;
            slopes.push(slope);
            a = value;
        }
        // ∂H/∂a of the top hidden layer is the output weight, in every row; a
        // product with a column of ones spreads it, on its own tape so that
        // the weight's gradient is recorded.
        let ones = self.device.try_ones_like(&(rows, 1))?.retaped::<T>();
        let mut e = ones.try_matmul(self.weights[top].clone())?;
        for (l, slope) in slopes.into_iter().enumerate().rev() {
            e = e.try_mul(slope)?.try_matmul(self.weights[l].clone())?;
        }
        Ok(e)
    }

    /// The network's output at `x`.
    fn output<T: Tape<f32, D>>(&self, x: Mat<D, T>) -> Result<Mat<D, T>, D::Err> {
        let top = self.weights.len() - 1;
        let mut a = x;
        for l in 0..top {
            a = activate(self.act, self.affine(a, l)?)?;
        }
        self.affine(a, top)
    }

    /// a·Wₗᵀ + bₗ.
    fn affine<T: Tape<f32, D>>(&self, a: Mat<D, T>, l: usize) -> Result<Mat<D, T>, D::Err> {
        let shape = (a.shape().0, self.biases[l].shape().0);
        let bias = self.biases[l]
            .clone()
            .try_broadcast_like::<_, Axis<0>>(&shape)?;
        a.try_matmul(self.weights[l].clone().try_permute::<_, Axes2<1, 0>>()?)?
            .try_add(bias)
    }
}

/// The value of a scalar tensor.
fn scalar<D: Device<f32>, T>(t: &Scalar<D, T>) -> f64 {
    let mut v = [0.0];
    t.copy_into(&mut v);
    f64::from(v[0])
}

/// σ(z).
fn activate<D: Device<f32>, T: Tape<f32, D>>(
    act: Activation,
    z: Mat<D, T>,
) -> Result<Mat<D, T>, D::Err> {
    match act {
        Activation::Tanh => z.try_tanh(),
        Activation::Sigmoid => z.try_sigmoid(),
        Activation::Relu => z.try_relu(),
        // relu(z) + ln(1 + e^−|z|), writing −|z| as z − 2 relu(z): no overflow
        // for large z, and the derivative at 0 is ½ (dfdx's |z|′ is 0 there).
        Activation::Softplus => {
            let r = z.retaped::<T>().try_relu()?;
            let tail = z
                .try_sub(r.retaped::<T>().try_mul(2.0)?)?
                .try_exp()?
                .try_add(1.0)?
                .try_ln()?;
            r.try_add(tail)
        }
        Activation::Swish => {
            let s = z.retaped::<T>().try_sigmoid()?;
            z.try_mul(s)
        }
    }
}

/// σ(z) and σ′(z). The tape of `z` (and so everything before it) travels
/// with σ′, which the input gradient always uses; σ(z) starts a tape of its
/// own, which is dropped with it at the top layer.
fn value_and_slope<D: Device<f32>, T: Tape<f32, D>>(
    act: Activation,
    z: Mat<D, T>,
) -> Result<ValueAndSlope<D, T>, D::Err> {
    match act {
        // σ′ = 1 − σ²
        Activation::Tanh => {
            let a = z.try_tanh()?;
            let value = a.retaped::<T>();
            Ok((value, a.try_square()?.try_negate()?.try_add(1.0)?))
        }
        // σ′ = σ(1 − σ)
        Activation::Sigmoid => {
            let a = z.try_sigmoid()?;
            let value = a.retaped::<T>();
            let slope = a.retaped::<T>().try_negate()?.try_add(1.0)?.try_mul(a)?;
            Ok((value, slope))
        }
        // σ′ is the logistic function.
        Activation::Softplus => Ok((activate(act, z.retaped::<T>())?, z.try_sigmoid()?)),
        // σ = z·s with s logistic, σ′ = s(1 + z(1 − s))
        Activation::Swish => {
            let s = z.retaped::<T>().try_sigmoid()?;
            let value = z.retaped::<T>().try_mul(s.retaped::<T>())?;
            let slope = s
                .retaped::<T>()
                .try_negate()?
                .try_add(1.0)?
                .try_mul(z)?
                .try_add(1.0)?
                .try_mul(s)?;
            Ok((value, slope))
        }
        // σ′ is a step, whose derivative vanishes: it carries z's tape but
        // records nothing on it.
        Activation::Relu => {
            let value = z.retaped::<T>().try_relu()?;
            let (z, tape) = z.split_tape();
            let device = z.device().clone();
            let step = z
                .try_gt(0.0)?
                .try_choose(device.try_ones_like(&z)?, device.try_zeros_like(&z)?)?;
            Ok((value, step.put_tape(tape)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::compiled::head_tensors;
    use super::super::tests::{assert_close, richardson, values};
    use super::super::{Bracket, DynamicsNet, Init};
    use super::*;
    use crate::backend::Model;

    const ACTS: [Activation; 5] = [
        Activation::Tanh,
        Activation::Softplus,
        Activation::Sigmoid,
        Activation::Swish,
        Activation::Relu,
    ];

    /// A head of two coordinates over hidden widths [7, 6] with an `mse`
    /// term and, for a Hamiltonian head, a Poisson bracket of the rotation
    /// turning q and p together.
    fn head_graph(head: Head, act: Activation) -> HeadGraph {
        let brackets = match head {
            Head::Hamiltonian => vec![Bracket {
                weight: 0.5,
                generator: [
                    [0.0, -1.0, 0.0, 0.0],
                    [1.0, 0.0, 0.0, 0.0],
                    [0.0, 0.0, 0.0, -1.0],
                    [0.0, 0.0, 1.0, 0.0],
                ]
                .concat(),
            }],
            _ => Vec::new(),
        };
        let terms = match brackets.len() {
            0 => vec![("mse", 0..0)],
            n => vec![("mse", 0..0), ("poisson_bracket", 0..n)],
        };
        let net = DynamicsNet::new(head, 2, &[7, 6], act, Init::Uniform, 5)
            .and_then(|net| net.with_brackets(brackets))
            .unwrap();
        HeadGraph {
            table: head_tensors(1, &net),
            net,
            mse_weight: 1.0,
            terms,
        }
    }

    fn taped(head: Head, act: Activation) -> TapedHead<Cpu> {
        TapedHead::new(head_graph(head, act), Cpu::default()).unwrap()
    }

    fn wide(v: &[f32]) -> Vec<f64> {
        v.iter().map(|v| f64::from(*v)).collect()
    }

    fn objective(head: &TapedHead<Cpu>, batch: &Batch<'_>) -> f64 {
        head.objective::<NoneTape>(batch).unwrap().1.total()
    }

    #[test]
    fn field_losses_and_every_gradient_agree_with_the_hand_derived_head() {
        let (x, y) = (values(4 * 9, 2), values(4 * 9, 3));
        let batch = Batch {
            x: &x,
            y: &y,
            rows: 9,
        };
        for head in [Head::Hamiltonian, Head::Direct] {
            for act in ACTS {
                let what = format!("{head:?}/{act:?}");
                let mut taped = taped(head, act);
                let mut host = head_graph(head, act).net;
                let field = host.field(&x).unwrap();
                assert_close(&taped.forward(&x, 9).unwrap(), &wide(&field), 1e-4, &what);

                let mut grad = vec![0.0; host.parameters().len()];
                let want = host.loss_and_grad(&x, &y, &mut grad).unwrap();
                let got = taped.loss_and_grad(&batch).unwrap();
                assert_eq!(got.brackets.len(), want.brackets.len());
                let terms = |o: &Objective| [o.mse].into_iter().chain(o.brackets.clone());
                for (g, w) in terms(&got).zip(terms(&want)) {
                    assert!((g - w).abs() <= 1e-4 * w.abs(), "{what} loss: {g} vs {w}");
                }
                let mlp = host.dense().unwrap();
                for l in 0..mlp.layers() {
                    let (w, b) = mlp.offsets(l);
                    for range in [w..b, b..b + mlp.sizes[l + 1]] {
                        let what = format!("{what} gradient of layer {l} {range:?}");
                        assert_close(&taped.grad[range.clone()], &wide(&grad[range]), 1e-4, &what);
                    }
                }
            }
        }
    }

    #[test]
    fn input_gradient_matches_central_differences_of_h() {
        let x = values(4 * 5, 1);
        // Relu's H has kinks a difference may straddle; it is checked against
        // the hand-derived head above.
        for act in &ACTS[..4] {
            let head = taped(Head::Hamiltonian, *act);
            let states = head.states(&x, 5).unwrap();
            let grad_h = head.input_gradient(states).unwrap().as_vec();
            let h_at = |state: &[f32]| f64::from(head.graph.net.scalar(state).unwrap().unwrap()[0]);
            let fd: Vec<f64> = x
                .chunks_exact(4)
                .flat_map(|state| {
                    (0..4).map(move |i| {
                        let moved = |h: f64| {
                            let mut s = state.to_vec();
                            s[i] += h as f32;
                            s
                        };
                        richardson(|h| (h_at(&moved(h)) - h_at(&moved(-h))) / (2.0 * h), 1e-2)
                    })
                })
                .collect();
            assert_close(&grad_h, &fd, 2e-3, &format!("∂H/∂x, {act:?}"));
        }
    }

    #[test]
    fn parameter_gradient_matches_central_differences_of_the_loss() {
        let (x, y) = (values(4 * 9, 6), values(4 * 9, 7));
        let batch = Batch {
            x: &x,
            y: &y,
            rows: 9,
        };
        for (head, act) in [
            (Head::Hamiltonian, Activation::Tanh),
            (Head::Hamiltonian, Activation::Softplus),
            (Head::Direct, Activation::Softplus),
        ] {
            let mut taped = taped(head, act);
            taped.loss_and_grad(&batch).unwrap();
            let grad = taped.grad.clone();
            let fd: Vec<f64> = (0..grad.len())
                .map(|i| {
                    let p = taped.graph.net.parameters()[i];
                    let mut at = |v: f32| {
                        taped.graph.net.parameters_mut()[i] = v;
                        taped.upload();
                        objective(&taped, &batch)
                    };
                    let d = richardson(|h| (at(p + h as f32) - at(p - h as f32)) / (2.0 * h), 1e-2);
                    at(p);
                    d
                })
                .collect();
            assert_close(&grad, &fd, 3e-3, &format!("{head:?}/{act:?} gradient"));
        }
    }

    const SPEC: &str = "model head {
      data     builtin.mass_spring(trajectories = 2, points = 5, noise = 0.0, seed = 0)
      state    q: R^1, p: R^1
      symmetry time => hamiltonian
      net      mlp(hidden = [12, 10], act = softplus)
      train    (steps = 5, lr = 1e-2, seed = 0)
    }";

    fn compiled(text: &str) -> ModelGraph {
        let compiled = crate::compile(text, "head.sym", std::path::Path::new(".")).unwrap();
        compiled.graphs.into_iter().next().unwrap()
    }

    #[test]
    fn from_a_graph_it_starts_trains_and_loads_like_the_compiled_head() {
        let graph = compiled(SPEC);
        let mut model = Model::new(&graph, 3).unwrap();
        let mut taped = TapedHead::from_graph(&graph, Cpu::default(), 3)
            .unwrap()
            .unwrap();
        assert_eq!(taped.named_parameters(), model.named_parameters());
        assert_eq!(taped.parameter_count(), model.parameter_count());
        let mut adam = AdamW::new(taped.tensor_lengths(), graph.train.weight_decay, None);
        let (x, y) = (values(2 * 8, 8), values(2 * 8, 9));
        let batch = Batch {
            x: &x,
            y: &y,
            rows: 8,
        };
        for _ in 0..5 {
            let want = model.train_step(&batch, 1e-2).unwrap();
            let got = taped.train_step(&batch, 1e-2, &mut adam).unwrap();
            assert_eq!(got.terms[0].0, want.terms[0].0);
            assert!((got.total - want.total).abs() <= 1e-4 * want.total);
        }
        let after = model.evaluate(&batch).unwrap().total;
        assert!((taped.evaluate(&batch).unwrap().total - after).abs() <= 1e-4 * after);
        for (t, m) in taped
            .named_parameters()
            .iter()
            .zip(model.named_parameters())
        {
            assert_close(&t.data, &wide(&m.data), 1e-4, &t.name);
        }

        // A run's weights load into either head.
        let mut fresh = TapedHead::from_graph(&graph, Cpu::default(), 4)
            .unwrap()
            .unwrap();
        fresh.load_parameters(&model.named_parameters()).unwrap();
        let field = model.forward(&x, 8).unwrap();
        assert_close(
            &fresh.forward(&x, 8).unwrap(),
            &wide(&field),
            1e-5,
            "loaded field",
        );
        let mut host = Model::new(&graph, 4).unwrap();
        host.load_parameters(&taped.named_parameters()).unwrap();
        assert_eq!(host.named_parameters(), taped.named_parameters());
        assert!(fresh
            .load_parameters(&model.named_parameters()[1..])
            .is_err());
    }

    #[test]
    fn bad_shapes_and_a_lagrangian_head_are_errors() {
        let head = taped(Head::Hamiltonian, Activation::Tanh);
        let x = values(4 * 3, 1);
        fn shape<T>(r: Result<T, BackendError>) -> bool {
            matches!(r, Err(BackendError::ShapeMismatch { .. }))
        }
        assert!(shape(head.forward(&x[1..], 3)));
        assert!(shape(head.forward(&x, 0)));
        let batch = |y| Batch { x: &x, y, rows: 3 };
        assert!(shape(head.evaluate(&batch(&x[..8]))));
        assert!(head.evaluate(&batch(&x)).is_ok());
        let graph = compiled(&SPEC.replace("hamiltonian", "lagrangian"));
        assert!(matches!(
            TapedHead::from_graph(&graph, Cpu::default(), 0),
            Err(BackendError::Unsupported { .. })
        ));
    }
}
