//! Graph networks over bodies (`Op::GraphNetwork`), as one fused custom op.
//!
//! Layout. A row holds the states of `n` bodies as two blocks, the way the
//! planner concatenates a positions port and a second port: first every
//! body's position (`n × dims`, row-major), then every body's other features
//! (`n × (features − dims)`, e.g. momenta). The output of body `i` has
//! `k = out_dim / bodies` values stored the same way: its first `min(dims, k)`
//! values in a first block, the rest in a second, so a time derivative of the
//! state comes out in the state's own layout. The number of bodies is read from
//! the row width at run time: parameters do not depend on it, and a model
//! trained on `n` bodies runs on any other number.
//!
//! One block on the fully connected graph: the message from body `j` to body
//! `i ≠ j` is `m_ij = φ_e(x_j − x_i, ‖x_j − x_i‖, h_i, h_j)`, messages are
//! summed over `j`, and body `i`'s output is `φ_n(h_i, Σ_j m_ij)`. `φ_e` is a
//! dense network `dims + 1 + 2h → hidden…` whose last layer (the message) is
//! linear; `φ_n` is `h + hidden.last → hidden… → k`; hidden layers use `act`.
//! Positions enter only as differences, so the output is invariant to a common
//! translation of all positions; the sum makes it equivariant to permutations
//! of the bodies. Parameters: `n{node}.edge{l}.weight` (`[out, inp]`) and
//! `.bias` for `φ_e`'s layers, `n{node}.node{l}.*` for `φ_n`'s, drawn as
//! PyTorch draws a `Linear`'s.

use super::super::kernels::activation::{bias_act, Derivatives};
use super::super::kernels::gemm::{add_column_sums, matmul, MatMut, MatRef};
use super::super::kernels::tape::{custom_op, host, GradSink, KernelDevice, Mat};
use super::super::params::Param;
use super::super::BackendError;
use crate::plan::Activation;
use dfdx::prelude::*;
use rand::rngs::StdRng;

/// A dense network whose hidden layers use one activation and whose last layer is affine.
struct Mlp<D: KernelDevice> {
    layers: Vec<(Param<D>, Param<D>)>,
    widths: Vec<usize>,
    act: Activation,
}

/// One layer of an [`Mlp`] as the backward pass needs it.
struct LayerTape<D: KernelDevice> {
    weight: Vec<f32>,
    handles: (Tensor<(usize,), f32, D>, Tensor<(usize,), f32, D>),
    input: Vec<f32>,
    /// σ′ at the layer's pre-activation; empty for the affine last layer.
    slope: Vec<f32>,
    inp: usize,
    out: usize,
}

impl<D: KernelDevice> Mlp<D> {
    fn new(
        device: &D,
        name: String,
        widths: Vec<usize>,
        act: Activation,
        rng: &mut StdRng,
    ) -> Result<Self, BackendError> {
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(l, w)| {
                let init = 1.0 / (w[0].max(1) as f32).sqrt();
                let weight = Param::new(
                    device,
                    format!("{name}{l}.weight"),
                    vec![w[1], w[0]],
                    init,
                    rng,
                )?;
                let bias = Param::new(device, format!("{name}{l}.bias"), vec![w[1]], init, rng)?;
                Ok((weight, bias))
            })
            .collect::<Result<_, BackendError>>()?;
        Ok(Mlp {
            layers,
            widths,
            act,
        })
    }

    /// The output for `rows` inputs, and the tape of each layer when `keep`.
    fn forward(&self, mut x: Vec<f32>, rows: usize, keep: bool) -> (Vec<f32>, Vec<LayerTape<D>>) {
        let mut tapes = Vec::new();
        let last = self.layers.len() - 1;
        for (l, (weight, bias)) in self.layers.iter().enumerate() {
            let (inp, out) = (self.widths[l], self.widths[l + 1]);
            let w = weight.values();
            let b = bias.values();
            let mut y = vec![0.0; rows * out];
            matmul(
                MatRef::new(&x, rows, inp),
                MatRef::new(&w, out, inp).t(),
                MatMut::new(&mut y, rows, out),
                false,
            );
            let mut slope = Vec::new();
            if l == last {
                for row in y.chunks_exact_mut(out) {
                    row.iter_mut().zip(&b).for_each(|(v, b)| *v += b);
                }
            } else {
                let first = keep.then(|| {
                    slope = vec![0.0; y.len()];
                    &mut slope[..]
                });
                bias_act(
                    self.act,
                    &mut y,
                    out,
                    Some(&b),
                    Derivatives {
                        first,
                        second: None,
                    },
                );
            }
            if keep {
                tapes.push(LayerTape {
                    weight: w,
                    handles: (weight.handle(), bias.handle()),
                    input: x,
                    slope,
                    inp,
                    out,
                });
            }
            x = y;
        }
        (x, tapes)
    }

    fn params(&self) -> impl Iterator<Item = &Param<D>> {
        self.layers.iter().flat_map(|(w, b)| [w, b])
    }

    fn params_mut(&mut self) -> impl Iterator<Item = &mut Param<D>> {
        self.layers.iter_mut().flat_map(|(w, b)| [w, b])
    }
}

/// Adds the parameter gradients of an [`Mlp`] into `grads` and returns the input's gradient.
fn mlp_backward<D: KernelDevice>(
    tapes: &[LayerTape<D>],
    mut grad: Vec<f32>,
    rows: usize,
    grads: &mut GradSink<'_, D>,
) -> Result<Vec<f32>, D::Err> {
    for t in tapes.iter().rev() {
        if !t.slope.is_empty() {
            grad.iter_mut().zip(&t.slope).for_each(|(g, s)| *g *= s);
        }
        let gm = MatRef::new(&grad, rows, t.out);
        matmul(
            gm.t(),
            MatRef::new(&t.input, rows, t.inp),
            MatMut::new(grads.slice(&t.handles.0)?, t.out, t.inp),
            true,
        );
        add_column_sums(&grad, t.out, grads.slice(&t.handles.1)?);
        let mut g_in = vec![0.0; rows * t.inp];
        let g_in_mat = MatMut::new(&mut g_in, rows, t.inp);
        matmul(gm, MatRef::new(&t.weight, t.out, t.inp), g_in_mat, false);
        grad = g_in;
    }
    Ok(grad)
}

/// A graph-network block (see the module documentation).
pub(crate) struct GraphNet<D: KernelDevice> {
    edge: Mlp<D>,
    node: Mlp<D>,
    dims: usize,
    features: usize,
    /// Outputs per body.
    out: usize,
    bodies: usize,
}

/// The shape of a block, as the IR describes it.
pub(crate) struct GraphShape<'a> {
    pub(crate) bodies: usize,
    pub(crate) dims: usize,
    pub(crate) features: usize,
    pub(crate) hidden: &'a [usize],
    pub(crate) act: Activation,
    /// Width of the whole output, all bodies together.
    pub(crate) out_dim: usize,
}

impl<D: KernelDevice> GraphNet<D> {
    pub(crate) fn new(
        device: &D,
        node: usize,
        shape: GraphShape<'_>,
        rng: &mut StdRng,
    ) -> Result<Self, BackendError> {
        let invalid = |why: &str| BackendError::InvalidGraph(format!("node {node}: {why}"));
        let (bodies, dims, features) = (shape.bodies, shape.dims, shape.features);
        if bodies == 0 || features < dims {
            return Err(invalid(
                "a graph network needs bodies with at least `dims` features",
            ));
        }
        if shape.out_dim % bodies != 0 {
            return Err(invalid(
                "the output is not a whole number of values per body",
            ));
        }
        let Some((&message, edge_hidden)) = shape.hidden.split_last() else {
            return Err(invalid("a graph network needs at least one hidden width"));
        };
        let h = features - dims;
        let out = shape.out_dim / bodies;
        let edge_widths = [dims + 1 + 2 * h]
            .into_iter()
            .chain(edge_hidden.iter().copied())
            .chain([message])
            .collect();
        let node_widths = [h + message]
            .into_iter()
            .chain(shape.hidden.iter().copied())
            .chain([out])
            .collect();
        let edge = Mlp::new(device, format!("n{node}.edge"), edge_widths, shape.act, rng)?;
        let node = Mlp::new(device, format!("n{node}.node"), node_widths, shape.act, rng)?;
        Ok(GraphNet {
            edge,
            node,
            dims,
            features,
            out,
            bodies,
        })
    }

    pub(crate) fn out_width(&self) -> usize {
        self.bodies * self.out
    }

    pub(crate) fn params(&self) -> impl Iterator<Item = &Param<D>> {
        self.edge.params().chain(self.node.params())
    }

    pub(crate) fn params_mut(&mut self) -> impl Iterator<Item = &mut Param<D>> {
        self.edge.params_mut().chain(self.node.params_mut())
    }

    pub(crate) fn forward<T: Tape<f32, D>>(&self, x: Mat<D, T>) -> Result<Mat<D, T>, BackendError> {
        let (rows, width) = *x.shape();
        if width % self.features != 0 || width == 0 {
            return Err(BackendError::ShapeMismatch {
                what: "input width of a graph network (a whole number of bodies)".into(),
                expected: self.bodies * self.features,
                found: width,
            });
        }
        let n = width / self.features;
        let layout = Layout {
            n,
            dims: self.dims,
            h: self.features - self.dims,
        };
        let xs = host(&x);
        let keep = T::OWNS_TAPE;
        let (edge_in, distances) = layout.edges(&xs, rows);
        let edge_rows = rows * n * (n - 1);
        let (messages, edge_tape) = self.edge.forward(edge_in, edge_rows, keep);
        let message = *self.edge.widths.last().unwrap_or(&0);
        let node_in = layout.nodes(&xs, &messages, rows, message);
        let (y, node_tape) = self.node.forward(node_in, rows * n, keep);
        let k = self.out;
        let out = Blocks {
            n,
            split: self.dims.min(k),
            width: k,
        };
        let result = out.pack(&y, rows);
        custom_op(x, result, n * k, move |grad_out, grads, input| {
            let g_y = out.unpack(&grad_out, rows);
            let g_node_in = mlp_backward(&node_tape, g_y, rows * n, grads)?;
            let g_edge_in = {
                let mut g_m = Vec::with_capacity(edge_rows * message);
                for g in g_node_in.chunks_exact(layout.h + message) {
                    for _ in 1..n {
                        g_m.extend_from_slice(&g[layout.h..]);
                    }
                }
                mlp_backward(&edge_tape, g_m, edge_rows, grads)?
            };
            let g_x = grads.slice(input)?;
            layout.add_gradient(&g_node_in, &g_edge_in, &distances, &xs, message, g_x);
            Ok(())
        })
    }
}

/// Where body features sit in a row, and how edge and node inputs are built from them.
#[derive(Clone, Copy)]
struct Layout {
    n: usize,
    dims: usize,
    /// Non-position features per body.
    h: usize,
}

impl Layout {
    fn pos(self, row: &[f32], i: usize) -> &[f32] {
        &row[i * self.dims..(i + 1) * self.dims]
    }

    fn feat(self, row: &[f32], i: usize) -> &[f32] {
        let start = self.n * self.dims + i * self.h;
        &row[start..start + self.h]
    }

    /// The ordered pairs `(i, j)`, `j ≠ i`, in edge-row order.
    fn pairs(self) -> impl Iterator<Item = (usize, usize)> {
        let n = self.n;
        (0..n).flat_map(move |i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
    }

    /// Edge inputs `(x_j − x_i, ‖x_j − x_i‖, h_i, h_j)` of every row, and the distances.
    fn edges(self, xs: &[f32], rows: usize) -> (Vec<f32>, Vec<f32>) {
        let width = self.n * (self.dims + self.h);
        let mut edges = Vec::with_capacity(rows * self.n * self.n * (self.dims + 1 + 2 * self.h));
        let mut distances = Vec::with_capacity(rows * self.n * self.n);
        for row in xs.chunks_exact(width) {
            for (i, j) in self.pairs() {
                let start = edges.len();
                edges.extend(
                    self.pos(row, j)
                        .iter()
                        .zip(self.pos(row, i))
                        .map(|(a, b)| a - b),
                );
                let d = edges[start..].iter().map(|v| v * v).sum::<f32>().sqrt();
                distances.push(d);
                edges.push(d);
                edges.extend_from_slice(self.feat(row, i));
                edges.extend_from_slice(self.feat(row, j));
            }
        }
        (edges, distances)
    }

    /// Node inputs `(h_i, Σ_j m_ij)`, one row per body.
    fn nodes(self, xs: &[f32], messages: &[f32], rows: usize, message: usize) -> Vec<f32> {
        let width = self.n * (self.dims + self.h);
        let mut nodes = Vec::with_capacity(rows * self.n * (self.h + message));
        let per_body = (self.n - 1) * message;
        let mut incoming = messages.chunks(per_body.max(1));
        for row in xs.chunks_exact(width).take(rows) {
            for i in 0..self.n {
                nodes.extend_from_slice(self.feat(row, i));
                let start = nodes.len();
                nodes.resize(start + message, 0.0);
                if per_body > 0 {
                    for m in incoming.next().unwrap_or(&[]).chunks_exact(message) {
                        nodes[start..].iter_mut().zip(m).for_each(|(a, v)| *a += v);
                    }
                }
            }
        }
        nodes
    }

    /// Adds the input gradient, given the gradients of the node and edge inputs.
    fn add_gradient(
        self,
        g_nodes: &[f32],
        g_edges: &[f32],
        distances: &[f32],
        xs: &[f32],
        message: usize,
        g_x: &mut [f32],
    ) {
        let (n, dims, h) = (self.n, self.dims, self.h);
        let width = n * (dims + h);
        let edge_width = dims + 1 + 2 * h;
        let pairs = n * (n - 1);
        for (b, (row, g_row)) in xs
            .chunks_exact(width)
            .zip(g_x.chunks_exact_mut(width))
            .enumerate()
        {
            let feat = |i: usize| n * dims + i * h;
            for i in 0..n {
                let g = &g_nodes[(b * n + i) * (h + message)..][..h];
                g_row[feat(i)..feat(i) + h]
                    .iter_mut()
                    .zip(g)
                    .for_each(|(a, v)| *a += v);
            }
            for (e, (i, j)) in self.pairs().enumerate() {
                let g = &g_edges[(b * pairs + e) * edge_width..][..edge_width];
                let d = distances[b * pairs + e];
                // ∂‖r‖/∂r = r/‖r‖; zero at coinciding bodies, where the norm has no gradient.
                let radial = if d > 0.0 { g[dims] / d } else { 0.0 };
                for c in 0..dims {
                    let r = row[j * dims + c] - row[i * dims + c];
                    let gr = g[c] + radial * r;
                    g_row[j * dims + c] += gr;
                    g_row[i * dims + c] -= gr;
                }
                let (gi, gj) = g[dims + 1..].split_at(h);
                g_row[feat(i)..feat(i) + h]
                    .iter_mut()
                    .zip(gi)
                    .for_each(|(a, v)| *a += v);
                g_row[feat(j)..feat(j) + h]
                    .iter_mut()
                    .zip(gj)
                    .for_each(|(a, v)| *a += v);
            }
        }
    }
}

/// Per-body values (one row of `width` per body) stored as two blocks per
/// sample: every body's first `split` values, then every body's rest.
#[derive(Clone, Copy)]
struct Blocks {
    n: usize,
    split: usize,
    width: usize,
}

impl Blocks {
    /// The index in a sample's packed row of body `i`'s value `c`.
    fn index(self, i: usize, c: usize) -> usize {
        if c < self.split {
            i * self.split + c
        } else {
            self.n * self.split + i * (self.width - self.split) + c - self.split
        }
    }

    fn pack(self, per_body: &[f32], rows: usize) -> Vec<f32> {
        let size = self.n * self.width;
        let mut out = vec![0.0; rows * size];
        for (dst, src) in out.chunks_exact_mut(size).zip(per_body.chunks_exact(size)) {
            for (k, v) in src.iter().enumerate() {
                dst[self.index(k / self.width, k % self.width)] = *v;
            }
        }
        out
    }

    fn unpack(self, packed: &[f32], rows: usize) -> Vec<f32> {
        let size = self.n * self.width;
        let mut out = vec![0.0; rows * size];
        for (dst, src) in out.chunks_exact_mut(size).zip(packed.chunks_exact(size)) {
            for (k, v) in dst.iter_mut().enumerate() {
                *v = src[self.index(k / self.width, k % self.width)];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, check_gradients, random_matrix};
    use super::super::Layer;
    use super::*;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    const DIMS: usize = 2;
    const FEATURES: usize = 4;

    /// A block for three bodies in the plane with two more features each,
    /// predicting four values per body.
    fn block() -> GraphNet<Cpu> {
        let shape = GraphShape {
            bodies: 3,
            dims: DIMS,
            features: FEATURES,
            hidden: &[6, 5],
            act: Activation::Swish,
            out_dim: 12,
        };
        GraphNet::new(&Cpu::default(), 2, shape, &mut StdRng::seed_from_u64(1)).unwrap()
    }

    fn run(net: &GraphNet<Cpu>, x: &[f32], rows: usize) -> Vec<f32> {
        let x = Cpu::default().tensor_from_vec(x.to_vec(), (rows, x.len() / rows));
        host(&net.forward(x).unwrap())
    }

    /// Rows with body `i`'s data moved to body `perm[i]`, in the two-block
    /// layout split after `split` of `width` values per body.
    fn permute(x: &[f32], perm: &[usize], split: usize, width: usize) -> Vec<f32> {
        let n = perm.len();
        let blocks = Blocks { n, split, width };
        let mut out = vec![0.0; x.len()];
        for (src, dst) in x
            .chunks_exact(n * width)
            .zip(out.chunks_exact_mut(n * width))
        {
            for (i, &p) in perm.iter().enumerate() {
                for c in 0..width {
                    dst[blocks.index(p, c)] = src[blocks.index(i, c)];
                }
            }
        }
        out
    }

    #[test]
    fn translating_all_bodies_changes_nothing() {
        let mut rng = StdRng::seed_from_u64(4);
        let net = block();
        for n in [3, 4] {
            let rows = 5;
            let x = random_matrix(rows, n * FEATURES, rng.gen());
            let shift: [f32; DIMS] = [rng.gen_range(-3.0..3.0), rng.gen_range(-3.0..3.0)];
            let mut moved = x.clone();
            for row in moved.chunks_exact_mut(n * FEATURES) {
                for (k, v) in row[..n * DIMS].iter_mut().enumerate() {
                    *v += shift[k % DIMS];
                }
            }
            assert_close(&run(&net, &moved, rows), &run(&net, &x, rows), 1e-5);
        }
    }

    #[test]
    fn permuting_bodies_permutes_outputs() {
        let mut rng = StdRng::seed_from_u64(5);
        let net = block();
        for n in [3, 5] {
            let x = random_matrix(4, n * FEATURES, rng.gen());
            let y = run(&net, &x, 4);
            let mut perm: Vec<usize> = (0..n).collect();
            perm.shuffle(&mut rng);
            let permuted = run(&net, &permute(&x, &perm, DIMS, FEATURES), 4);
            assert_close(&permuted, &permute(&y, &perm, DIMS, 4), 1e-5);
        }
    }

    #[test]
    fn more_bodies_give_more_outputs_with_the_same_parameters() {
        let net = block();
        let count: usize = net.params().map(Param::len).sum();
        // φ_e: 7 → 6 → 5; φ_n: 2 + 5 → 6 → 5 → 4.
        assert_eq!(
            count,
            (7 * 6 + 6) + (6 * 5 + 5) + (7 * 6 + 6) + (6 * 5 + 5) + (5 * 4 + 4)
        );
        assert_eq!(
            run(&net, &random_matrix(2, 4 * FEATURES, 3), 2).len(),
            2 * 4 * 4
        );
        let x = Cpu::default().tensor_from_vec(random_matrix(1, 7, 3), (1, 7));
        assert!(net.forward(x).is_err());
    }

    #[test]
    fn bodies_see_each_other_only_through_messages() {
        // With one body there are no messages: moving its position changes nothing.
        let net = block();
        let x = random_matrix(1, FEATURES, 8);
        let mut moved = x.clone();
        moved[0] += 1.5;
        assert_close(&run(&net, &moved, 1), &run(&net, &x, 1), 1e-6);
        let pair = random_matrix(1, 2 * FEATURES, 9);
        let mut apart = pair.clone();
        apart[0] += 1.5;
        let (a, b) = (run(&net, &pair, 1), run(&net, &apart, 1));
        assert!(a.iter().zip(&b).any(|(a, b)| (a - b).abs() > 1e-4));
    }

    #[test]
    fn gradients_match_finite_differences() {
        check_gradients(&mut Layer::Graph(block()), 2, 3 * FEATURES);
    }
}
