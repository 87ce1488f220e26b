//! `EquivariantLinear` in block form.
//!
//! Between canonical layouts the equivariant map is, for each pair of input
//! summand i (mᵢ copies of size dᵢ) and output summand j (nⱼ copies of size
//! dⱼ), Σₖ Cₖ ⊗ Bₖ: tiny fixed bases Bₖ (dⱼ × dᵢ) from the group engine and
//! dense trainable channel mixings Cₖ (nⱼ × mᵢ). The full matrix W is never
//! formed. Each pair (a *term*) is applied in the cheaper order:
//!
//! - when dᵢ ≥ dⱼ, Bₖ first: a sparse loop over the few non-zeros of each Bₖ
//!   writes T, one row per (batch row, output component) and one column per
//!   (k, input copy); then one `gemm` mixes channels, Y += T · [C₁ … C_K]ᵀ;
//! - when dᵢ < dⱼ (e.g. scalar → V²), channels first: Uₖ = X · Cₖᵀ by `gemm`
//!   on the small input components, then Bₖ spreads Uₖ over the output's.
//!
//! so the `gemm`s run on min(dᵢ, dⱼ)·batch rows and a step costs about what a
//! dense layer of the same channel count costs. Then the invariant bias is
//! added and Y is scattered to the output's positions.
//!
//! Parameters: `n{id}.weight.{j}` (`[nⱼ, Σᵢ |Bᵢⱼ|·mᵢ]`, columns ordered by
//! input summand, then basis element, then input copy) and `n{id}.bias.{j}`
//! (`[nⱼ, |Bⱼ|]`, the coefficients on the invariant vectors of summand j),
//! for each output summand j that has any. Initialisation matches `Linear`:
//! each Bₖ is scaled to ‖Bₖ‖²_F = dⱼ (the row norm of an orthogonal matrix),
//! so with C ~ U(±1/√fan_in), fan_in = Σᵢ |Bᵢⱼ|·mᵢ, the output has the variance
//! a dense layer of that fan-in gives; an all-scalar layer is exactly `Linear`.
//!
//! That is the fused path, for host devices. The portable path, for devices
//! without host buffers, forms the dense weight instead — it is small next to
//! a batch of activations — with few dfdx operations: per output summand j one
//! matrix product [C_j | β_j]·Ê_j, where the constant Ê_j holds Σₖ Cₖ ⊗ Bₖ's
//! pattern (each coefficient's entries in the summand's rows, at the input
//! positions, and each bias coefficient's invariant vector in an extra input
//! column of ones); then the summands' rows are stacked, put in output order
//! by one gather, and applied with one product, [x | 1]·Wᵀ.

use super::super::kernels::gemm::{matmul, MatMut, MatRef};
use super::super::kernels::tape::{custom_op, host, KernelDevice, Mat};
use super::super::params::Param;
use super::super::BackendError;
use crate::group::{BasisSolver, Layout, Rep};
use dfdx::prelude::*;
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rayon::prelude::*;
use std::sync::Arc;

/// Batch rows handled per parallel task in the gather/scatter loops. Fixed, so
/// that results do not depend on the thread count.
const ROWS_PER_TASK: usize = 32;

/// Shape of one canonical summand.
#[derive(Debug, Clone, Copy)]
struct Shape {
    offset: usize,
    size: usize,
    copies: usize,
}

/// A basis element Bₖ as its non-zero entries (output component, input component, value).
type Sparse = Vec<(usize, usize, f32)>;

/// The contribution of input summand `input` to one output summand.
struct Term {
    input: usize,
    basis: Vec<Sparse>,
    /// First column of this term's block in T_j and C_j.
    column: usize,
}

/// The wiring of output summand j.
struct OutBlock {
    shape: Shape,
    terms: Vec<Term>,
    /// Σ |Bᵢⱼ|·mᵢ: columns of T_j and C_j.
    cols: usize,
    /// Orthonormal invariant vectors of the summand, each `shape.size` long.
    invariant: Vec<Vec<f32>>,
}

/// The parameter-free part of the layer, shared with its backward closures.
struct Structure {
    in_dim: usize,
    out_dim: usize,
    /// Canonical coordinate → position in the layer's input / output vector.
    in_perm: Vec<usize>,
    out_perm: Vec<usize>,
    inputs: Vec<Shape>,
    outputs: Vec<OutBlock>,
}

/// C_j and the bias coefficients of one output summand; either may be absent.
type SummandParams<D> = (Option<Param<D>>, Option<Param<D>>);

/// The constant tensors of the portable path, on the layer's device.
struct Portable<D: KernelDevice> {
    /// Per output summand, Ê_j: `[C_j | β_j]` (one row per copy) times Ê_j is
    /// the summand's rows of the dense weight, laid out (component, input
    /// column), the last input column being the bias's. `None` for a summand
    /// without coefficients.
    expand: Vec<Option<Mat<D, NoneTape>>>,
    /// A zero row stacked under the summands' rows, for the output positions
    /// of summands without coefficients; `None` when there are none.
    zero: Option<Mat<D, NoneTape>>,
    /// Each output position's row in that stack.
    order: Rows<D>,
}

pub(crate) struct EquivariantLinear<D: KernelDevice> {
    structure: Arc<Structure>,
    /// Per output summand: C_j (absent when no input summand reaches it) and the bias coefficients.
    params: Vec<SummandParams<D>>,
    portable: Portable<D>,
}

/// `parts` concatenated along `axis`; `None` when there are none.
pub(super) fn concat_along<D: KernelDevice, T: Tape<f32, D>, Ax: Copy>(
    parts: impl IntoIterator<Item = Mat<D, T>>,
    axis: Ax,
) -> Result<Option<Mat<D, T>>, D::Err>
where
    (Mat<D, T>, Mat<D, T>): TryConcatAlong<Ax, Output = Mat<D, T>, Error = D::Err>,
{
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else {
        return Ok(None);
    };
    parts
        .try_fold(first, |acc, part| (acc, part).try_concat_along(axis))
        .map(Some)
}

/// Rows taken from a matrix, in order.
pub(super) enum Rows<D: KernelDevice> {
    /// All of them, as they are.
    All,
    /// A gather. (Not a slice for a contiguous range: dfdx's host slice
    /// kernel writes its input's gradient rather than adding to it, which
    /// loses the gradient of any other reader of the same tensor.)
    Gather(Tensor<(usize,), usize, D>),
}

impl<D: KernelDevice> Rows<D> {
    /// Rows `order` of a matrix with `total` rows.
    pub(super) fn new(device: &D, order: Vec<usize>, total: usize) -> Result<Self, BackendError> {
        if order.len() == total && order.iter().enumerate().all(|(k, &i)| i == k) {
            return Ok(Rows::All);
        }
        let len = order.len();
        device
            .try_tensor_from_vec(order, (len,))
            .map(Rows::Gather)
            .map_err(BackendError::device)
    }

    /// These rows of `m`.
    pub(super) fn take<T: Tape<f32, D>>(&self, m: Mat<D, T>) -> Result<Mat<D, T>, D::Err> {
        match self {
            Rows::All => Ok(m),
            Rows::Gather(order) => m.try_gather(order.clone()),
        }
    }
}

/// `matrix` scaled to squared Frobenius norm `rows`, as its non-zeros in f32.
fn sparse(matrix: &DMatrix<f64>) -> Sparse {
    let scale = (matrix.nrows() as f64).sqrt() / matrix.norm();
    let mut out = Vec::new();
    for a in 0..matrix.ncols() {
        for e in 0..matrix.nrows() {
            let v = matrix[(e, a)] * scale;
            // Entries at the solver's rounding level are noise, not structure.
            if v.abs() > 1e-9 {
                out.push((e, a, v as f32));
            }
        }
    }
    out
}

fn shapes(layout: &Layout) -> Vec<Shape> {
    layout
        .summands
        .iter()
        .map(|s| Shape {
            offset: s.offset,
            size: s.size,
            copies: s.multiplicity,
        })
        .collect()
}

impl<D: KernelDevice> EquivariantLinear<D> {
    /// Builds the layer of node `node` from the group's block bases; `counts`
    /// are the graph's (basis, bias) parameter counts, which must agree.
    pub(crate) fn new(
        device: &D,
        node: usize,
        solver: &mut BasisSolver,
        (rep_in, rep_out): (&Rep, &Rep),
        counts: (usize, usize),
        rng: &mut StdRng,
    ) -> Result<Self, BackendError> {
        let group = solver.group().name().to_string();
        let group_error = |e: crate::group::GroupError| BackendError::Group {
            group: group.clone(),
            message: e.to_string(),
        };
        let weights = solver.blocks(rep_in, rep_out).map_err(group_error)?;
        let biases = solver.blocks(&Rep::Scalar, rep_out).map_err(group_error)?;
        for (what, expected, found) in [
            ("equivariant basis", counts.0, weights.dimension()),
            ("invariant bias", counts.1, biases.dimension()),
        ] {
            if expected != found {
                return Err(BackendError::ShapeMismatch {
                    what: format!("{what} of node {node}"),
                    expected,
                    found,
                });
            }
        }
        let inputs = shapes(&weights.input);
        let mut outputs = Vec::new();
        let mut params = Vec::new();
        for (j, shape) in shapes(&weights.output).into_iter().enumerate() {
            let mut terms = Vec::new();
            let mut cols = 0;
            for block in weights.blocks.iter().filter(|b| b.output == j) {
                let basis: Vec<Sparse> = block.basis.iter().map(sparse).collect();
                let column = cols;
                cols += basis.len() * inputs[block.input].copies;
                terms.push(Term {
                    input: block.input,
                    basis,
                    column,
                });
            }
            let invariant: Vec<Vec<f32>> = biases
                .blocks
                .iter()
                .filter(|b| b.output == j)
                .flat_map(|b| b.basis.iter())
                .map(|v| v.iter().map(|&x| x as f32).collect())
                .collect();
            let bound = 1.0 / (cols.max(1) as f32).sqrt();
            let mut param = |kind: &str, width: usize| {
                let name = format!("n{node}.{kind}.{j}");
                (width > 0)
                    .then(|| Param::new(device, name, vec![shape.copies, width], bound, rng))
                    .transpose()
            };
            params.push((param("weight", cols)?, param("bias", invariant.len())?));
            outputs.push(OutBlock {
                shape,
                terms,
                cols,
                invariant,
            });
        }
        let structure = Structure {
            in_dim: weights.input.perm.len(),
            out_dim: weights.output.perm.len(),
            in_perm: weights.input.perm,
            out_perm: weights.output.perm,
            inputs,
            outputs,
        };
        Ok(EquivariantLinear {
            portable: structure.portable(device)?,
            structure: Arc::new(structure),
            params,
        })
    }

    pub(crate) fn in_width(&self) -> usize {
        self.structure.in_dim
    }

    pub(crate) fn out_width(&self) -> usize {
        self.structure.out_dim
    }

    pub(crate) fn params(&self) -> impl Iterator<Item = &Param<D>> {
        self.params.iter().flat_map(|(w, b)| w.iter().chain(b))
    }

    pub(crate) fn params_mut(&mut self) -> impl Iterator<Item = &mut Param<D>> {
        self.params
            .iter_mut()
            .flat_map(|(w, b)| w.iter_mut().chain(b))
    }

    pub(crate) fn forward<T: Tape<f32, D>>(&self, x: Mat<D, T>) -> Result<Mat<D, T>, BackendError> {
        if D::HOST {
            self.forward_fused(x)
        } else {
            self.forward_ops(x).map_err(BackendError::device)
        }
    }

    /// The layer as dfdx operations (see the module documentation).
    pub(super) fn forward_ops<T: Tape<f32, D>>(&self, x: Mat<D, T>) -> Result<Mat<D, T>, D::Err> {
        let (rows, width) = (x.shape().0, self.structure.in_dim + 1);
        let ops = &self.portable;
        let mut blocks = Vec::with_capacity(self.params.len() + 1);
        for ((expand, (weight, beta)), block) in
            (ops.expand.iter().zip(&self.params)).zip(&self.structure.outputs)
        {
            let (n, d) = (block.shape.copies, block.shape.size);
            let coefficients = (weight.iter().chain(beta))
                .map(|p| (p.handle().retaped::<T>()).try_reshape_like(&(n, p.len() / n)))
                .collect::<Result<Vec<_>, _>>()?;
            let (Some(expand), Some(coefficients)) =
                (expand, concat_along(coefficients, Axis::<1>)?)
            else {
                continue;
            };
            blocks.push(
                coefficients
                    .try_matmul(expand.clone())?
                    .try_reshape_like(&(n * d, width))?,
            );
        }
        // The zero row carries an empty tape: nothing flows back into it but zeros.
        blocks.extend(ops.zero.as_ref().map(|z| z.retaped::<T>()));
        let Some(weight) = concat_along(blocks, Axis::<0>)? else {
            // No output summands: an empty output.
            let (x, tape) = x.split_tape();
            return Ok(x.device().try_zeros_like(&(rows, 0))?.put_tape(tape));
        };
        let weight = ops.order.take(weight)?.try_permute::<_, Axes2<1, 0>>()?;
        let ones = x.device().try_ones_like(&(rows, 1))?;
        (x, ones).try_concat_along(Axis::<1>)?.try_matmul(weight)
    }

    /// The fused kernel: one custom op on the tape.
    pub(super) fn forward_fused<T: Tape<f32, D>>(
        &self,
        x: Mat<D, T>,
    ) -> Result<Mat<D, T>, BackendError> {
        let rows = x.shape().0;
        let layer = Arc::clone(&self.structure);
        let xs = host(&x);
        let gathered: Vec<Vec<f32>> = (0..layer.inputs.len())
            .map(|i| layer.gather(&xs, rows, i))
            .collect();
        let mut y = vec![0.0; rows * layer.out_dim];
        // Per output summand: C_j and the T of each basis-first term (empty otherwise).
        let mut saved = Vec::with_capacity(layer.outputs.len());
        for (block, (weight, beta)) in layer.outputs.iter().zip(&self.params) {
            let (d, n) = (block.shape.size, block.shape.copies);
            let mut yt = vec![0.0; rows * d * n];
            let weight = weight.as_ref().map(Param::values).unwrap_or_default();
            let mut ts = Vec::with_capacity(block.terms.len());
            for term in &block.terms {
                let s = layer.inputs[term.input];
                let width = term.basis.len() * s.copies;
                let c = MatRef::strided(&weight[term.column..], n, width, block.cols);
                if layer.basis_first(block, term) {
                    let t = layer.basis_forward(block, term, &gathered[term.input], rows);
                    matmul(
                        MatRef::new(&t, rows * d, width),
                        c.t(),
                        MatMut::new(&mut yt, rows * d, n),
                        true,
                    );
                    ts.push(t);
                } else {
                    let mut u = vec![0.0; rows * s.size * n];
                    for (k, basis) in term.basis.iter().enumerate() {
                        let ck = MatRef::strided(
                            &weight[term.column + k * s.copies..],
                            n,
                            s.copies,
                            block.cols,
                        );
                        let x = MatRef::new(&gathered[term.input], rows * s.size, s.copies);
                        matmul(x, ck.t(), MatMut::new(&mut u, rows * s.size, n), false);
                        // Y[(r, e), :] += B[e, a]·U[(r, a), :]
                        spread(basis, &u, &mut yt, (s.size, d, n), false);
                    }
                    ts.push(Vec::new());
                }
            }
            if let Some(beta) = beta {
                let bias = block.bias(&beta.values());
                for row in yt.chunks_exact_mut(d * n) {
                    row.iter_mut().zip(&bias).for_each(|(y, b)| *y += b);
                }
            }
            layer.scatter(&yt, block.shape, &mut y);
            saved.push((weight, ts));
        }
        let handles: Vec<_> = self
            .params
            .iter()
            .map(|(w, b)| (w.as_ref().map(Param::handle), b.as_ref().map(Param::handle)))
            .collect();
        let out_dim = layer.out_dim;
        custom_op(x, y, out_dim, move |grad_out, grads, input| {
            let mut dgathered: Vec<Vec<f32>> = layer
                .inputs
                .iter()
                .map(|s| vec![0.0; rows * s.size * s.copies])
                .collect();
            for ((block, (weight, ts)), (weight_handle, beta)) in
                layer.outputs.iter().zip(&saved).zip(&handles)
            {
                let (d, n) = (block.shape.size, block.shape.copies);
                let dyt = layer.gather_output(&grad_out, rows, block.shape);
                if let Some(beta) = beta {
                    block.add_bias_grad(&dyt, grads.slice(beta)?);
                }
                let Some(weight_handle) = weight_handle else {
                    continue;
                };
                let dy = MatRef::new(&dyt, rows * d, n);
                for (term, t) in block.terms.iter().zip(ts) {
                    let s = layer.inputs[term.input];
                    let width = term.basis.len() * s.copies;
                    let c = MatRef::strided(&weight[term.column..], n, width, block.cols);
                    let dweight = grads.slice(weight_handle)?;
                    if layer.basis_first(block, term) {
                        let dc = MatMut::strided(&mut dweight[term.column..], n, width, block.cols);
                        matmul(dy.t(), MatRef::new(t, rows * d, width), dc, true);
                        let mut dt = vec![0.0; rows * d * width];
                        matmul(dy, c, MatMut::new(&mut dt, rows * d, width), false);
                        layer.basis_backward(block, term, &dt, &mut dgathered[term.input]);
                    } else {
                        let x = MatRef::new(&gathered[term.input], rows * s.size, s.copies);
                        let mut du = vec![0.0; rows * s.size * n];
                        for (k, basis) in term.basis.iter().enumerate() {
                            let column = term.column + k * s.copies;
                            // dU[(r, a), :] = Σₑ B[e, a]·dY[(r, e), :]
                            spread(basis, &dyt, &mut du, (s.size, d, n), true);
                            let dc =
                                MatMut::strided(&mut dweight[column..], n, s.copies, block.cols);
                            matmul(MatRef::new(&du, rows * s.size, n).t(), x, dc, true);
                            let ck = MatRef::strided(&weight[column..], n, s.copies, block.cols);
                            let dx =
                                MatMut::new(&mut dgathered[term.input], rows * s.size, s.copies);
                            matmul(MatRef::new(&du, rows * s.size, n), ck, dx, true);
                            du.fill(0.0);
                        }
                    }
                }
            }
            layer.scatter_input_grad(&dgathered, grads.slice(input)?);
            Ok(())
        })
    }
}

/// For each batch row r: `dst[(r, e), :] += B[e, a]·src[(r, a), :]` over the
/// non-zeros of B, or with `transpose` `dst[(r, a), :] += B[e, a]·src[(r, e), :]`;
/// `dims` = (input components, output components, row length).
fn spread(
    basis: &Sparse,
    src: &[f32],
    dst: &mut [f32],
    (d_in, d_out, n): (usize, usize, usize),
    transpose: bool,
) {
    let (src_rows, dst_rows) = if transpose {
        (d_out, d_in)
    } else {
        (d_in, d_out)
    };
    dst.par_chunks_mut(dst_rows * n * ROWS_PER_TASK)
        .zip(src.par_chunks(src_rows * n * ROWS_PER_TASK))
        .for_each(|(dst, src)| {
            for (dst, src) in dst
                .chunks_exact_mut(dst_rows * n)
                .zip(src.chunks_exact(src_rows * n))
            {
                for &(e, a, v) in basis {
                    let (from, to) = if transpose { (e, a) } else { (a, e) };
                    let src = &src[from * n..(from + 1) * n];
                    dst[to * n..(to + 1) * n]
                        .iter_mut()
                        .zip(src)
                        .for_each(|(d, s)| *d += v * s);
                }
            }
        });
}

impl OutBlock {
    /// The bias in Y_j's (component, copy) layout: bias[e, c] = Σₖ β[c, k]·vₖ[e].
    fn bias(&self, beta: &[f32]) -> Vec<f32> {
        let (d, n) = (self.shape.size, self.shape.copies);
        let mut bias = vec![0.0; d * n];
        for (c, coefficients) in beta.chunks_exact(self.invariant.len()).enumerate() {
            for (v, beta) in self.invariant.iter().zip(coefficients) {
                for e in 0..d {
                    bias[e * n + c] += beta * v[e];
                }
            }
        }
        bias
    }

    /// dβ[c, k] += Σ_rows Σₑ dY[row, e, c]·vₖ[e].
    fn add_bias_grad(&self, dyt: &[f32], dbeta: &mut [f32]) {
        let (d, n) = (self.shape.size, self.shape.copies);
        let mut sums = vec![0.0; d * n];
        for row in dyt.chunks_exact(d * n) {
            sums.iter_mut().zip(row).for_each(|(s, g)| *s += g);
        }
        for (c, db) in dbeta.chunks_exact_mut(self.invariant.len()).enumerate() {
            for (v, db) in self.invariant.iter().zip(db) {
                *db += (0..d).map(|e| sums[e * n + c] * v[e]).sum::<f32>();
            }
        }
    }
}

impl Structure {
    /// The constant tensors of the portable path.
    fn portable<D: KernelDevice>(&self, device: &D) -> Result<Portable<D>, BackendError> {
        let width = self.in_dim + 1;
        let tensor = |data: Vec<f32>, shape: (usize, usize)| {
            device
                .try_tensor_from_vec(data, shape)
                .map_err(BackendError::device)
        };
        let mut expand = Vec::with_capacity(self.outputs.len());
        // Row of each canonical output coordinate in the stack of the summands' rows.
        let mut stacked = vec![None; self.out_dim];
        let mut rows = 0;
        for block in &self.outputs {
            let (n, d) = (block.shape.copies, block.shape.size);
            let coefficients = block.cols + block.invariant.len();
            if coefficients == 0 {
                expand.push(None);
                continue;
            }
            let mut e = vec![0.0; coefficients * d * width];
            for term in &block.terms {
                let s = self.inputs[term.input];
                for (k, basis) in term.basis.iter().enumerate() {
                    for c in 0..s.copies {
                        let row = (term.column + k * s.copies + c) * d;
                        for &(out, a, v) in basis {
                            let column = self.in_perm[s.offset + c * s.size + a];
                            e[(row + out) * width + column] = v;
                        }
                    }
                }
            }
            for (k, v) in block.invariant.iter().enumerate() {
                let row = (block.cols + k) * d;
                for (out, &v) in v.iter().enumerate() {
                    e[(row + out) * width + self.in_dim] = v;
                }
            }
            expand.push(Some(tensor(e, (coefficients, d * width))?));
            let offset = block.shape.offset;
            for (q, slot) in stacked[offset..offset + n * d].iter_mut().enumerate() {
                *slot = Some(rows + q);
            }
            rows += n * d;
        }
        let zero = if stacked.iter().any(Option::is_none) {
            Some(tensor(vec![0.0; width], (1, width))?)
        } else {
            None
        };
        let mut order = vec![0; self.out_dim];
        for (q, row) in stacked.into_iter().enumerate() {
            order[self.out_perm[q]] = row.unwrap_or(rows);
        }
        let order = Rows::new(device, order, rows + usize::from(zero.is_some()))?;
        Ok(Portable {
            expand,
            zero,
            order,
        })
    }

    /// Input summand i of every row, transposed to (row, component, copy) so
    /// the basis loops run over contiguous copies.
    fn gather(&self, x: &[f32], rows: usize, i: usize) -> Vec<f32> {
        let s = self.inputs[i];
        let per_row = s.size * s.copies;
        let mut out = vec![0.0; rows * per_row];
        out.par_chunks_mut(per_row * ROWS_PER_TASK)
            .zip(x.par_chunks(self.in_dim * ROWS_PER_TASK))
            .for_each(|(out, x)| {
                for (out, x) in out
                    .chunks_exact_mut(per_row)
                    .zip(x.chunks_exact(self.in_dim))
                {
                    for c in 0..s.copies {
                        for a in 0..s.size {
                            out[a * s.copies + c] = x[self.in_perm[s.offset + c * s.size + a]];
                        }
                    }
                }
            });
        out
    }

    /// Whether `term` applies its basis before mixing channels (input
    /// components at least as many as output components).
    fn basis_first(&self, block: &OutBlock, term: &Term) -> bool {
        self.inputs[term.input].size >= block.shape.size
    }

    /// T for one term: rows (batch row, output component e), columns (k, copy).
    fn basis_forward(
        &self,
        block: &OutBlock,
        term: &Term,
        gathered: &[f32],
        rows: usize,
    ) -> Vec<f32> {
        let s = self.inputs[term.input];
        let (d, width, per_row) = (
            block.shape.size,
            term.basis.len() * s.copies,
            s.size * s.copies,
        );
        let mut t = vec![0.0; rows * d * width];
        t.par_chunks_mut(d * width * ROWS_PER_TASK)
            .zip(gathered.par_chunks(per_row * ROWS_PER_TASK))
            .for_each(|(t, x)| {
                for (t, x) in t.chunks_exact_mut(d * width).zip(x.chunks_exact(per_row)) {
                    for (k, basis) in term.basis.iter().enumerate() {
                        for &(e, a, v) in basis {
                            let dst =
                                &mut t[e * width + k * s.copies..e * width + (k + 1) * s.copies];
                            let src = &x[a * s.copies..(a + 1) * s.copies];
                            dst.iter_mut().zip(src).for_each(|(t, x)| *t += v * x);
                        }
                    }
                }
            });
        t
    }

    /// dX̃[r, a, c] += Σₖ Σₑ Bₖ[e, a]·dT[r, e, (k, c)] for one basis-first term.
    fn basis_backward(&self, block: &OutBlock, term: &Term, dt: &[f32], dgathered: &mut [f32]) {
        let s = self.inputs[term.input];
        let (d, width, per_row) = (
            block.shape.size,
            term.basis.len() * s.copies,
            s.size * s.copies,
        );
        dgathered
            .par_chunks_mut(per_row * ROWS_PER_TASK)
            .zip(dt.par_chunks(d * width * ROWS_PER_TASK))
            .for_each(|(dx, dt)| {
                for (dx, dt) in dx.chunks_exact_mut(per_row).zip(dt.chunks_exact(d * width)) {
                    for (k, basis) in term.basis.iter().enumerate() {
                        for &(e, a, v) in basis {
                            let src = &dt[e * width + k * s.copies..e * width + (k + 1) * s.copies];
                            let dst = &mut dx[a * s.copies..(a + 1) * s.copies];
                            dst.iter_mut().zip(src).for_each(|(d, g)| *d += v * g);
                        }
                    }
                }
            });
    }

    /// Adds Y_j (rows (batch row, component), columns copies) into the output vector.
    fn scatter(&self, yt: &[f32], s: Shape, y: &mut [f32]) {
        let per_row = s.size * s.copies;
        y.par_chunks_mut(self.out_dim * ROWS_PER_TASK)
            .zip(yt.par_chunks(per_row * ROWS_PER_TASK))
            .for_each(|(y, yt)| {
                for (y, yt) in y
                    .chunks_exact_mut(self.out_dim)
                    .zip(yt.chunks_exact(per_row))
                {
                    for c in 0..s.copies {
                        for e in 0..s.size {
                            y[self.out_perm[s.offset + c * s.size + e]] += yt[e * s.copies + c];
                        }
                    }
                }
            });
    }

    /// Output summand `s` of the gradient, in Y_j's (row, component, copy) layout.
    fn gather_output(&self, g: &[f32], rows: usize, s: Shape) -> Vec<f32> {
        let per_row = s.size * s.copies;
        let mut out = vec![0.0; rows * per_row];
        for (out, g) in out
            .chunks_exact_mut(per_row)
            .zip(g.chunks_exact(self.out_dim))
        {
            for c in 0..s.copies {
                for e in 0..s.size {
                    out[e * s.copies + c] = g[self.out_perm[s.offset + c * s.size + e]];
                }
            }
        }
        out
    }

    /// Adds the gathered input gradients back at the input's positions.
    fn scatter_input_grad(&self, dgathered: &[Vec<f32>], dx: &mut [f32]) {
        for (s, dg) in self.inputs.iter().zip(dgathered) {
            let per_row = s.size * s.copies;
            for (dx, dg) in dx
                .chunks_exact_mut(self.in_dim)
                .zip(dg.chunks_exact(per_row))
            {
                for c in 0..s.copies {
                    for a in 0..s.size {
                        dx[self.in_perm[s.offset + c * s.size + a]] += dg[a * s.copies + c];
                    }
                }
            }
        }
    }
}

/// Checks shared by the tests of the layers' portable paths.
#[cfg(test)]
pub(super) mod portable_checks {
    use super::super::super::kernels::tape::{host, Mat};
    use super::super::testing::random_matrix;
    use dfdx::prelude::*;

    pub(crate) type Traced = Mat<Cpu, OwnedTape<f32, Cpu>>;
    /// A parameter's tensor, which its gradient is keyed by.
    pub(crate) type Handle = Tensor<(usize,), f32, Cpu>;

    /// Asserts max |a − b| ≤ 1e-5·max |b|: relative to the scale of `b`, as
    /// an entry that nearly cancels keeps the rounding of its largest terms.
    fn assert_close_to_scale(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 1e-3, "{what} vanishes");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-5 * scale, "{what}[{i}]: {x} vs {y}");
        }
    }

    /// Asserts that `ops` and `fused` give the same values on random inputs
    /// (`rows` × `cols`), and the same gradients of Σ y² with respect to the
    /// input and each of `params`, to 1e-5 relative to each one's scale.
    pub(crate) fn assert_paths_agree(
        params: &[Handle],
        (rows, cols): (usize, usize),
        fused: impl Fn(Traced) -> Traced,
        ops: impl Fn(Traced) -> Traced,
    ) {
        let x = Cpu::default().tensor_from_vec(random_matrix(rows, cols, 11), (rows, cols));
        let run = |f: &dyn Fn(Traced) -> Traced| {
            let y = f(x.leaky_trace());
            let values = host(&y);
            let grads = y.square().sum().backward();
            let gradients: Vec<Vec<f32>> = std::iter::once(grads.get(&x).as_vec())
                .chain(params.iter().map(|p| grads.get(p).as_vec()))
                .collect();
            (values, gradients)
        };
        let (values, gradients) = run(&fused);
        let (ops_values, ops_gradients) = run(&ops);
        assert_close_to_scale(&ops_values, &values, "output");
        for (k, (a, b)) in ops_gradients.iter().zip(&gradients).enumerate() {
            assert_close_to_scale(a, b, &format!("gradient {k}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        assert_close, assert_equivariant, build_layer, check_gradients, random_matrix,
    };
    use super::super::Layer;
    use super::portable_checks::{assert_paths_agree, Handle};
    use super::*;
    use crate::group::Group;
    use crate::plan::{gate_count, uniform_rep, Op};

    fn op(group: &Group, rep_in: &Rep, rep_out: &Rep) -> Op {
        let mut solver = BasisSolver::new(group);
        Op::EquivariantLinear {
            group: group.name().into(),
            rep_in: rep_in.clone(),
            rep_out: rep_out.clone(),
            basis: solver.blocks(rep_in, rep_out).unwrap().dimension(),
            bias: solver.blocks(&Rep::Scalar, rep_out).unwrap().dimension(),
        }
    }

    /// Non-canonical orders on both sides, so the permutations are exercised.
    fn reps() -> (Rep, Rep) {
        let rep_in = Rep::Sum(vec![Rep::V, Rep::Scalar, Rep::V.pow(2), Rep::Scalar]);
        let rep_out = Rep::Sum(vec![Rep::V.pow(2), Rep::Scalar.times(2), Rep::V, Rep::V]);
        (rep_in, rep_out)
    }

    #[test]
    fn equivariant_for_random_group_elements() {
        for group in [
            Group::builtin("O", &[3]).unwrap(),
            Group::builtin("SO", &[3]).unwrap(),
        ] {
            let (rep_in, rep_out) = reps();
            let layer = build_layer(&group, op(&group, &rep_in, &rep_out), rep_in.size(3), 3);
            assert_equivariant(&layer, &group, |g| (rep_in.rho(g), rep_out.rho(g)));
        }
    }

    #[test]
    fn equivariant_over_the_lorentz_group() {
        let group = Group::builtin("Lorentz", &[]).unwrap();
        let rep_in = Rep::Sum(vec![Rep::V.times(2), Rep::Scalar]);
        let rep_out = Rep::Sum(vec![Rep::Scalar.times(3), Rep::V, Rep::V.pow(2)]);
        let layer = build_layer(&group, op(&group, &rep_in, &rep_out), rep_in.size(4), 5);
        assert_equivariant(&layer, &group, |g| (rep_in.rho(g), rep_out.rho(g)));
    }

    #[test]
    fn weights_span_every_equivariant_map() {
        // The map from weight parameters to the dense matrix W must be injective
        // and its image must have the dimension of the equivariant space.
        let group = Group::builtin("O", &[3]).unwrap();
        let (rep_in, rep_out) = reps();
        let (n_in, n_out) = (rep_in.size(3), rep_out.size(3));
        let mut layer = build_layer(&group, op(&group, &rep_in, &rep_out), n_in, 3);
        let dev = Cpu::default();
        let identity = dev.tensor_from_vec(
            (0..n_in * n_in)
                .map(|k| if k % (n_in + 1) == 0 { 1.0 } else { 0.0 })
                .collect(),
            (n_in, n_in),
        );
        let Layer::Equivariant(l) = &mut layer else {
            unreachable!()
        };
        for p in l.params_mut() {
            p.set(&vec![0.0; p.len()]);
        }
        let mut columns = Vec::new();
        for k in 0..l.params().count() {
            let (name, len) = l
                .params()
                .nth(k)
                .map(|p| (p.name().to_string(), p.len()))
                .unwrap();
            if !name.contains(".weight.") {
                continue;
            }
            for i in 0..len {
                let mut unit = vec![0.0; len];
                unit[i] = 1.0;
                l.params_mut().nth(k).unwrap().set(&unit);
                // Rows of the output for unit inputs are the columns of W.
                columns.push(host(&l.forward(identity.clone()).unwrap()));
            }
            l.params_mut().nth(k).unwrap().set(&vec![0.0; len]);
        }
        let matrix = DMatrix::from_fn(n_in * n_out, columns.len(), |r, c| columns[c][r] as f64);
        let dimension = crate::group::equivariant_basis(&group, &rep_in, &rep_out)
            .unwrap()
            .len();
        assert_eq!(columns.len(), dimension);
        assert_eq!(matrix.rank(1e-4), dimension);
    }

    #[test]
    fn values_and_input_gradients_match_the_dense_layer_in_dfdx() {
        // Probe the dense W and b of the layer, then run x·Wᵀ + b with dfdx's ops.
        let group = Group::builtin("O", &[3]).unwrap();
        let (rep_in, rep_out) = reps();
        let (n_in, n_out) = (rep_in.size(3), rep_out.size(3));
        let layer = build_layer(&group, op(&group, &rep_in, &rep_out), n_in, 6);
        let dev = Cpu::default();
        let bias = host(
            &layer
                .forward(dev.tensor_from_vec(vec![0.0; n_in], (1, n_in)))
                .unwrap(),
        );
        let identity: Vec<f32> = (0..n_in * n_in)
            .map(|k| if k % (n_in + 1) == 0 { 1.0 } else { 0.0 })
            .collect();
        let probed = host(
            &layer
                .forward(dev.tensor_from_vec(identity, (n_in, n_in)))
                .unwrap(),
        );
        let wt: Vec<f32> = probed
            .iter()
            .enumerate()
            .map(|(k, v)| v - bias[k % n_out])
            .collect();
        let wt = dev.tensor_from_vec(wt, (n_in, n_out));
        let bias = dev.tensor_from_vec(bias, (n_out,));
        let x = dev.tensor_from_vec(random_matrix(4, n_in, 31), (4, n_in));
        let weights = dev.tensor_from_vec(random_matrix(4, n_out, 32), (4, n_out));
        let ours = layer.forward(x.leaky_trace()).unwrap();
        let theirs = x.leaky_trace().matmul(wt) + bias.broadcast_like::<_, Axis<0>>(&(4, n_out));
        assert_close(&host(&ours), &host(&theirs), 1e-5);
        let g_ours = (ours * weights.clone()).sum().backward();
        let g_theirs = (theirs * weights).sum().backward();
        assert_close(&g_ours.get(&x).as_vec(), &g_theirs.get(&x).as_vec(), 1e-5);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let group = Group::builtin("O", &[3]).unwrap();
        let (rep_in, rep_out) = reps();
        let mut layer = build_layer(&group, op(&group, &rep_in, &rep_out), rep_in.size(3), 4);
        check_gradients(&mut layer, 3, rep_in.size(3));
    }

    /// The layer of `op` and its parameter handles.
    fn parts(layer: &Layer<Cpu>) -> (&EquivariantLinear<Cpu>, Vec<Handle>) {
        let Layer::Equivariant(l) = layer else {
            unreachable!()
        };
        (l, l.params().map(Param::handle).collect())
    }

    /// Layer reps over `group`: non-canonical orders, the EMLP planner's
    /// (input → hidden with gates, hidden → hidden, hidden → output), and an
    /// output summand no input reaches and no bias has.
    fn cases(group: &Group, orthogonal: bool) -> Vec<(Rep, Rep)> {
        let n = group.n();
        let hidden = uniform_rep(24 * n, n, orthogonal);
        let gated = Rep::Sum(vec![hidden.clone(), Rep::Scalar.times(gate_count(&hidden))]);
        let mut cases = vec![
            (Rep::V.times(2), gated.clone()),
            (hidden.clone(), gated),
            (hidden, Rep::Scalar),
            (
                Rep::Sum(vec![Rep::Scalar, Rep::V.pow(2)]),
                Rep::Sum(vec![Rep::V, Rep::Scalar]),
            ),
        ];
        if orthogonal {
            cases.push(reps());
        }
        cases
    }

    #[test]
    fn portable_path_matches_the_fused_kernel() {
        for (group, orthogonal) in [
            (Group::builtin("O", &[2]).unwrap(), true),
            (Group::builtin("SO", &[2]).unwrap(), true),
            (Group::builtin("O", &[3]).unwrap(), true),
            (Group::builtin("Lorentz", &[]).unwrap(), false),
        ] {
            for (rep_in, rep_out) in cases(&group, orthogonal) {
                let width = rep_in.size(group.n());
                let layer = build_layer(&group, op(&group, &rep_in, &rep_out), width, 8);
                let (l, params) = parts(&layer);
                assert_paths_agree(
                    &params,
                    (5, width),
                    |x| l.forward_fused(x).unwrap(),
                    |x| l.forward_ops(x).unwrap(),
                );
            }
        }
    }

    #[test]
    fn portable_path_is_equivariant_for_random_group_elements() {
        for group in [
            Group::builtin("O", &[3]).unwrap(),
            Group::builtin("SO", &[2]).unwrap(),
        ] {
            for (rep_in, rep_out) in cases(&group, true) {
                let width = rep_in.size(group.n());
                let layer = build_layer(&group, op(&group, &rep_in, &rep_out), width, 9);
                let (l, _) = parts(&layer);
                super::super::testing::assert_equivariant_map(
                    |x| l.forward_ops(x).unwrap(),
                    &group,
                    |g| (rep_in.rho(g), rep_out.rho(g)),
                );
            }
        }
    }

    #[test]
    fn a_wrong_basis_count_is_an_error() {
        let group = Group::builtin("O", &[3]).unwrap();
        let (rep_in, rep_out) = reps();
        let Op::EquivariantLinear { basis, bias, .. } = op(&group, &rep_in, &rep_out) else {
            unreachable!()
        };
        let mut solver = BasisSolver::new(&group);
        let mut rng = rand::SeedableRng::seed_from_u64(0);
        let dev = Cpu::default();
        let result = EquivariantLinear::new(
            &dev,
            1,
            &mut solver,
            (&rep_in, &rep_out),
            (basis + 1, bias),
            &mut rng,
        );
        assert!(
            matches!(result, Err(BackendError::ShapeMismatch { expected, found, .. }) if expected == basis + 1 && found == basis)
        );
    }
}
