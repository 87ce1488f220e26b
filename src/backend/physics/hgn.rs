//! The Hamiltonian graph network: an energy over bodies,
//! H(q, p) = Σᵢ φₙ(pᵢ) + Σ_{i≠j} φₑ(qⱼ − qᵢ, ‖qⱼ − qᵢ‖),
//! with one node MLP φₙ and one edge MLP φₑ shared by all bodies and pairs.
//!
//! ∂H/∂x is written as tensor expressions on top of the dense head's input
//! gradient ([`hnn::input_gradient`]): the B·n nodes and the B·n(n−1) ordered
//! pairs of a batch of B states are rows of the two MLPs' inputs, and their
//! gradients are scattered onto the state. With uₖ = ∂φₑ/∂r + ∂φₑ/∂ρ · r/ρ the
//! gradient of pair k = (i, j) through its relative position r = qⱼ − qᵢ and
//! its distance ρ = ‖r‖, ∂H/∂qⱼ gains uₖ and ∂H/∂qᵢ loses it. The parameter
//! gradient of a loss on the field gathers the loss gradient back onto the
//! rows (the transpose of that scatter) and runs the dense head's
//! second-order backward pass ([`hnn::backward`]) on each MLP.
//!
//! Positions enter only as differences, so H is invariant to translations of
//! all bodies and every pair's gradient enters the forces with both signs:
//! Σᵢ ṗᵢ = −Σᵢ ∂H/∂qᵢ = 0, and the learned field conserves total linear
//! momentum exactly. Relabelling the bodies permutes the rows of the sums, so
//! the field is permutation-equivariant. No parameter depends on the number
//! of bodies, so an energy trained on n bodies runs on n + 1: a head built
//! for n + 1 bodies takes the same parameters.

use super::hnn;
use super::mlp::{Init, Mlp};
use crate::plan::Activation;

/// The node and edge MLPs of a graph energy over `bodies` bodies in `dims`
/// dimensions, with their parameters in one vector: the edge MLP's, then the
/// node MLP's.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GraphEnergy {
    pub(crate) bodies: usize,
    pub(crate) dims: usize,
    edge: Vec<usize>,
    node: Vec<usize>,
    act: Activation,
    pub(crate) params: Vec<f32>,
}

/// Buffers reused across steps.
#[derive(Debug, Default)]
pub(crate) struct Work {
    /// One row (r, ρ) per ordered pair.
    edge_x: Vec<f32>,
    /// One row pᵢ per body.
    node_x: Vec<f32>,
    edge: hnn::Work,
    node: hnn::Work,
    /// ∂H/∂x of the states, then the loss gradient with respect to it.
    grad_h: Vec<f32>,
}

impl Work {
    /// ∂H/∂x from the last [`GraphEnergy::input_gradient`].
    pub(crate) fn gradient(&self) -> &[f32] {
        &self.grad_h
    }

    /// Where [`GraphEnergy::backward`] reads the loss gradient with respect
    /// to ∂H/∂x.
    pub(crate) fn gradient_mut(&mut self) -> &mut [f32] {
        &mut self.grad_h
    }
}

impl GraphEnergy {
    /// Both MLPs with the hidden widths `hidden` and a scalar output; the
    /// edge MLP reads (r, ρ), the node MLP a momentum. Weights start from
    /// PyTorch's uniform initialisation, each MLP from its own stream.
    pub(crate) fn new(
        bodies: usize,
        dims: usize,
        hidden: &[usize],
        act: Activation,
        seed: u64,
    ) -> Self {
        let sizes = |inp: usize| -> Vec<usize> {
            std::iter::once(inp)
                .chain(hidden.iter().copied())
                .chain([1])
                .collect()
        };
        let (edge, node) = (sizes(dims + 1), sizes(dims));
        let mut params = Mlp::new(edge.clone(), act, Init::Uniform, seed).params;
        params.extend(Mlp::new(node.clone(), act, Init::Uniform, seed ^ 0x9e37_79b9).params);
        GraphEnergy {
            bodies,
            dims,
            edge,
            node,
            act,
            params,
        }
    }

    /// Components of a state: every position, then every momentum.
    pub(crate) fn state_dim(&self) -> usize {
        2 * self.bodies * self.dims
    }

    /// The edge and node MLPs by name, each with the offset of its
    /// parameters in [`Self::params`].
    pub(crate) fn networks(&self) -> [(&'static str, usize, Mlp<&[f32]>); 2] {
        let split: usize = self.edge.windows(2).map(|w| w[1] * (w[0] + 1)).sum();
        let (edge, node) = self.params.split_at(split);
        let mlp = |sizes: &[usize], params| Mlp {
            sizes: sizes.to_vec(),
            act: self.act,
            params,
        };
        [
            ("edge", 0, mlp(&self.edge, edge)),
            ("node", split, mlp(&self.node, node)),
        ]
    }

    /// Ordered pairs of bodies in one state: n(n − 1).
    fn pair_count(&self) -> usize {
        self.bodies * (self.bodies - 1)
    }

    /// The bodies (i, j), i ≠ j, of pair `k` of a state: pairs are ordered by
    /// i, then by j, skipping j = i.
    fn pair(&self, k: usize) -> (usize, usize) {
        let (i, r) = (k / (self.bodies - 1), k % (self.bodies - 1));
        (i, if r < i { r } else { r + 1 })
    }

    /// Fills the edge rows (r, ρ) and node rows pᵢ of `rows` states.
    fn rows(&self, x: &[f32], rows: usize, work: &mut Work) {
        let (n, d) = (self.bodies, self.dims);
        work.edge_x.clear();
        work.node_x.clear();
        for state in x.chunks_exact(self.state_dim()).take(rows) {
            let (q, p) = state.split_at(n * d);
            for (i, j) in (0..self.pair_count()).map(|k| self.pair(k)) {
                let start = work.edge_x.len();
                work.edge_x
                    .extend((0..d).map(|c| q[j * d + c] - q[i * d + c]));
                let rho = work.edge_x[start..]
                    .iter()
                    .map(|r| r * r)
                    .sum::<f32>()
                    .sqrt();
                work.edge_x.push(rho);
            }
            work.node_x.extend_from_slice(p);
        }
    }

    /// H at each of `rows` states.
    pub(crate) fn energy(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut work = Work::default();
        self.rows(x, rows, &mut work);
        let [(_, _, edge), (_, _, node)] = self.networks();
        let (n, pairs) = (self.bodies, self.pair_count());
        let per_pair = match pairs {
            0 => Vec::new(),
            _ => edge.eval(&work.edge_x, rows * pairs),
        };
        let per_node = node.eval(&work.node_x, rows * n);
        (0..rows)
            .map(|b| {
                let edges: f32 = per_pair[b * pairs..(b + 1) * pairs].iter().sum();
                edges + per_node[b * n..(b + 1) * n].iter().sum::<f32>()
            })
            .collect()
    }

    /// ∂H/∂x at `rows` states (`rows × state_dim()`), left in `work`.
    pub(crate) fn input_gradient(&self, x: &[f32], rows: usize, work: &mut Work) {
        let (n, d) = (self.bodies, self.dims);
        let width = self.state_dim();
        self.rows(x, rows, work);
        let [(_, _, edge), (_, _, node)] = self.networks();
        hnn::input_gradient(&node, &work.node_x, rows * n, &mut work.node);
        let grad_h = &mut work.grad_h;
        grad_h.clear();
        grad_h.resize(rows * width, 0.0);
        for (g, dp) in grad_h
            .chunks_exact_mut(width)
            .zip(work.node.gradient().chunks_exact(n * d))
        {
            g[n * d..].copy_from_slice(dp);
        }
        let pairs = self.pair_count();
        if pairs == 0 {
            return;
        }
        hnn::input_gradient(&edge, &work.edge_x, rows * pairs, &mut work.edge);
        let per_edge = work
            .edge_x
            .chunks_exact(d + 1)
            .zip(work.edge.gradient().chunks_exact(d + 1));
        let mut u = vec![0.0f32; d];
        for (k, (e, ge)) in per_edge.enumerate() {
            let (b, (i, j)) = (k / pairs, self.pair(k % pairs));
            let along = ge[d] * inverse(e[d]);
            u.iter_mut()
                .zip(&ge[..d])
                .zip(&e[..d])
                .for_each(|((u, g), r)| *u = g + along * r);
            let g = &mut grad_h[b * width..b * width + n * d];
            for c in 0..d {
                g[j * d + c] += u[c];
                g[i * d + c] -= u[c];
            }
        }
    }

    /// Back-propagates the loss gradient with respect to ∂H/∂x, held in
    /// `work` (see [`Work::gradient_mut`]), to the parameters, accumulating
    /// into `grad` (laid out like [`Self::params`]); `work` must hold the
    /// [`Self::input_gradient`] pass of the same states.
    pub(crate) fn backward(&self, rows: usize, grad: &mut [f32], work: &mut Work) {
        let (n, d) = (self.bodies, self.dims);
        let width = self.state_dim();
        let [(_, _, edge), (_, at, node)] = self.networks();
        let (grad_edge, grad_node) = grad.split_at_mut(at);
        let upstream = &work.grad_h;
        // Node rows: ∂H/∂pᵢ is the node MLP's input gradient itself.
        let gx = work.node.gradient_mut();
        for (g, up) in gx.chunks_exact_mut(n * d).zip(upstream.chunks_exact(width)) {
            g.copy_from_slice(&up[n * d..]);
        }
        hnn::backward(&node, &work.node_x, rows * n, grad_node, &mut work.node);
        let pairs = self.pair_count();
        if pairs == 0 {
            return;
        }
        // Edge rows: the transpose of the scatter, through r and through ρ.
        let gx = work.edge.gradient_mut();
        for (k, (g, e)) in gx
            .chunks_exact_mut(d + 1)
            .zip(work.edge_x.chunks_exact(d + 1))
            .enumerate()
        {
            let (b, (i, j)) = (k / pairs, self.pair(k % pairs));
            let up = &upstream[b * width..];
            let mut along = 0.0;
            for c in 0..d {
                g[c] = up[j * d + c] - up[i * d + c];
                along += g[c] * e[c];
            }
            g[d] = along * inverse(e[d]);
        }
        hnn::backward(&edge, &work.edge_x, rows * pairs, grad_edge, &mut work.edge);
    }
}

/// 1/ρ, or 0 for coincident bodies: the distance has no derivative there, and
/// zero is the subgradient that keeps the forces finite.
fn inverse(rho: f32) -> f32 {
    if rho > 0.0 {
        1.0 / rho
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_close, loss, param_fd, values};
    use super::super::{DynamicsNet, Head, PhysicsError};
    use crate::plan::Activation;

    const ACTS: [Activation; 2] = [Activation::Softplus, Activation::Tanh];

    fn net(bodies: usize, act: Activation) -> DynamicsNet {
        DynamicsNet::graph(bodies, 2, &[9, 7], act, 4).unwrap()
    }

    fn energy(net: &DynamicsNet, state: &[f32]) -> f64 {
        f64::from(net.scalar(state).unwrap().unwrap()[0])
    }

    /// The largest |a − b| relative to the largest |b|.
    fn relative(a: &[f32], b: &[f32]) -> f32 {
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(b)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        diff / scale
    }

    #[test]
    fn field_is_the_symplectic_gradient_of_h() {
        for act in ACTS {
            let net = net(3, act);
            let x = values(12 * 4, 1);
            let field = net.field(&x).unwrap();
            let h = 1e-2;
            for (r, state) in x.chunks_exact(12).enumerate() {
                let fd: Vec<f64> = (0..12)
                    .map(|k| {
                        // (q̇, ṗ) = (∂H/∂p, −∂H/∂q): component k of the field is
                        // the derivative along its partner coordinate.
                        let (partner, sign) = if k < 6 { (k + 6, 1.0) } else { (k - 6, -1.0) };
                        let (mut up, mut down) = (state.to_vec(), state.to_vec());
                        up[partner] += h;
                        down[partner] -= h;
                        sign * (energy(&net, &up) - energy(&net, &down)) / (2.0 * f64::from(h))
                    })
                    .collect();
                assert_close(&field[12 * r..12 * r + 12], &fd, 2e-3, &format!("{act:?}"));
            }
        }
    }

    #[test]
    fn loss_gradient_matches_finite_differences() {
        for act in ACTS {
            let mut net = net(3, act);
            let (x, y) = (values(12 * 5, 2), values(12 * 5, 3));
            let mut grad = vec![0.0; net.parameters().len()];
            net.loss_and_grad(&x, &y, &mut grad).unwrap();
            let fd = param_fd(&mut net, 1e-2, |n| loss(n, &x, &y));
            assert_close(&grad, &fd, 3e-3, &format!("{act:?} gradient"));
        }
    }

    #[test]
    fn field_is_translation_invariant_and_permutation_equivariant() {
        let net = net(4, Activation::Softplus);
        let x = values(16 * 6, 5);
        let field = net.field(&x).unwrap();
        for seed in 0..5 {
            let shift = values(2, 10 + seed);
            let shifted: Vec<f32> = x
                .iter()
                .enumerate()
                .map(|(k, v)| if k % 16 < 8 { v + shift[k % 2] } else { *v })
                .collect();
            let moved = net.field(&shifted).unwrap();
            assert!(relative(&moved, &field) < 1e-5, "shift {shift:?}");

            // A permutation of the bodies from the seed: rotate, then swap two.
            let mut order: Vec<usize> = (0..4).map(|i| (i + seed as usize) % 4).collect();
            order.swap(0, 2);
            let relabel = |v: &[f32]| -> Vec<f32> {
                let mut out = Vec::with_capacity(v.len());
                for state in v.chunks_exact(16) {
                    for block in [0, 8] {
                        for &i in &order {
                            out.extend_from_slice(&state[block + 2 * i..block + 2 * i + 2]);
                        }
                    }
                }
                out
            };
            let permuted = net.field(&relabel(&x)).unwrap();
            assert!(relative(&permuted, &relabel(&field)) < 1e-5, "{order:?}");
        }
    }

    #[test]
    fn forces_sum_to_zero_even_for_coincident_bodies() {
        let net = net(5, Activation::Tanh);
        let mut x = values(20 * 8, 6);
        // Bodies 0 and 1 of the first state at the same place.
        x[2] = x[0];
        x[3] = x[1];
        let field = net.field(&x).unwrap();
        for state in field.chunks_exact(20) {
            let forces = &state[10..];
            let scale = forces.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(forces.iter().all(|f| f.is_finite()));
            for c in 0..2 {
                let total: f32 = forces.iter().skip(c).step_by(2).sum();
                assert!(total.abs() <= 1e-6 * scale, "Σṗ = {total} (scale {scale})");
            }
        }
    }

    #[test]
    fn no_bodies_and_no_hidden_layer_are_errors() {
        assert_eq!(
            DynamicsNet::graph(0, 2, &[4], Activation::Tanh, 0).unwrap_err(),
            PhysicsError::NoCoordinates
        );
        assert_eq!(
            DynamicsNet::graph(3, 2, &[], Activation::Tanh, 0).unwrap_err(),
            PhysicsError::NoHiddenLayer(Head::Hamiltonian)
        );
        let one = DynamicsNet::graph(1, 2, &[4], Activation::Tanh, 0).unwrap();
        assert_eq!(
            one.field(&[0.0; 3]).unwrap_err(),
            PhysicsError::Shape {
                expected: 4,
                found: 3
            }
        );
    }

    #[test]
    fn a_net_for_three_bodies_runs_on_four_with_the_same_energies() {
        // H over n bodies is Σᵢ φₙ(pᵢ) + Σ_{i≠j} φₑ: each pair's two-body energy
        // holds both edge terms and both node terms, so
        // H₄ = Σ_{i<j} H₂(i, j) − 2 Σᵢ H₁(i) with the same parameters.
        let nets: Vec<DynamicsNet> = (1..=4).map(|n| net(n, Activation::Softplus)).collect();
        assert!(nets.iter().all(|n| n.parameters() == nets[2].parameters()));
        let x = values(16, 7);
        let body = |i: usize| -> [f32; 4] { [x[2 * i], x[2 * i + 1], x[8 + 2 * i], x[9 + 2 * i]] };
        let mut want = 0.0;
        for i in 0..4 {
            want -= 2.0 * energy(&nets[0], &body(i));
            for j in i + 1..4 {
                let (a, b) = (body(i), body(j));
                want += energy(&nets[1], &[a[0], a[1], b[0], b[1], a[2], a[3], b[2], b[3]]);
            }
        }
        let four = energy(&nets[3], &x);
        assert!(
            (four - want).abs() < 1e-5 * four.abs().max(1.0),
            "{four} vs {want}"
        );
    }
}
