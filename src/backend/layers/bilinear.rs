//! The equivariant bilinear layer `h ↦ h + B(h, h)`.
//!
//! A stack of equivariant linear maps and gates can be blind to its input: for
//! O(n) on vectors there is no linear invariant, so every gate is a constant.
//! Products of channels are what reach the invariants (x·y, ‖x‖²). The wiring
//! comes from [`BilinearPlan`]; per batch row the forward pass
//!
//! 1. mixes the mₛ copies of each summand s into kₛ bilinear channels,
//!    Uₛ = Xₛ·Mₛᵀ with Xₛ laid out (row, component) × copy — one `gemm`, and
//!    equivariant because mixing copies commutes with the group action;
//! 2. for each term (l, r → o) with basis maps A, contracts every channel of
//!    the larger factor f with the maps first, T = U_f·A′ with A′ the maps
//!    laid out d_f × (d_s·|A|·dₒ) — one `gemm` — so that
//! 3. each channel pair p = (a of the smaller factor s, b of f) costs d_s
//!    vectorised row updates: zₚ = Σᵢ u_s,a,i T_b,i. Contracting the larger
//!    factor by a matrix product, instead of mapping the outer products
//!    u ⊗ u of every pair, keeps most of the work in well-shaped `gemm`s;
//! 4. mixes the |A|·|pairs| features into the copies of o, Yₒ += F·Wᵀ — one
//!    `gemm` — and adds Y to the input.
//!
//! Parameters: `n{id}.mix.{s}` (`[kₛ, mₛ]`) for each summand a term reads and
//! `n{id}.bilinear.{t}` (`[mₒ, |A|·|pairs|]`, columns ordered by basis map,
//! then pair) for each term t. The basis maps are scaled to ‖A‖²_F = dₒ as in
//! the equivariant linear layer and W starts at a tenth of a dense layer's
//! scale, so that a block starts close to its linear part.
//!
//! That is the fused path, for host devices. The portable path, for devices
//! without host buffers, takes the same steps as dfdx operations on batched
//! layouts with the batch row inside: Xₛ is gathered from the transposed input
//! as (copy, component·row) so that step 1 is Uₛ = Mₛ·Xₛ; per term, a gather
//! of U_f's channels b of all pairs at once and one product with A′ give
//! (pair, row) × (component of s, map row); a gather of U_s's channels a, a
//! broadcast product and a sum over the components of s give step 3's z for
//! every pair; one permutation to ((map, pair), (component, row)) and one
//! product with W give Yₒ. The outputs are stacked, put in position order by
//! a gather and added to the input.

use super::super::kernels::gemm::{matmul_into as matmul, MatRef};
use super::super::kernels::tape::{custom_op, host, KernelDevice, Mat};
use super::super::params::Param;
use super::super::BackendError;
use super::equivariant::{concat_along, Rows};
use crate::group::{BasisSolver, Rep};
use crate::plan::BilinearPlan;
use dfdx::prelude::*;
use rayon::prelude::*;
use std::sync::Arc;

/// Initial scale of the product mixings relative to a dense layer of their fan-in.
const INITIAL_SCALE: f32 = 0.1;

/// Shape of one canonical summand and its bilinear channels.
#[derive(Debug, Clone, Copy)]
struct Summand {
    offset: usize,
    size: usize,
    copies: usize,
    channels: usize,
}

/// One family of products of two summands' channels, into `output`.
struct Term {
    /// The factor contracted with the basis by a matrix product (the larger
    /// one) and the factor paired with the result channel by channel.
    first: usize,
    second: usize,
    output: usize,
    /// The basis maps as A′, row-major `size_first × (size_second·maps·size_out)`:
    /// entry (j, (i, map row w)) multiplies first-component j by second-component i.
    basis: Vec<f32>,
    maps: usize,
    /// Channel pairs (a of `second`, b of `first`), in the plan's pair order.
    pairs: Vec<(usize, usize)>,
}

impl Term {
    /// Columns of F and W: one per (basis map, pair).
    fn features(&self) -> usize {
        self.maps * self.pairs.len()
    }

    /// Writes pair `p`'s values z (indexed by map row: map k, output component
    /// e) into one batch row of F, laid out (component, map, pair).
    fn scatter(&self, z: &[f32], pairs: usize, p: usize, f: &mut [f32]) {
        let out = z.len() / self.maps;
        for (k, z) in z.chunks_exact(out).enumerate() {
            for (e, &z) in z.iter().enumerate() {
                f[(e * self.maps + k) * pairs + p] = z;
            }
        }
    }

    /// The inverse of [`Term::scatter`]: pair `p`'s values from a row of F.
    fn gather(&self, f: &[f32], pairs: usize, p: usize, z: &mut [f32]) {
        let out = z.len() / self.maps;
        for (k, z) in z.chunks_exact_mut(out).enumerate() {
            for (e, z) in z.iter_mut().enumerate() {
                *z = f[(e * self.maps + k) * pairs + p];
            }
        }
    }
}

/// The parameter-free part of the layer, shared with its backward closure.
struct Structure {
    dim: usize,
    /// Canonical coordinate → position in the layer's vector.
    perm: Vec<usize>,
    summands: Vec<Summand>,
    terms: Vec<Term>,
}

/// The constant tensors of one term on the portable path.
struct TermOps<D: KernelDevice> {
    /// A′ as a `size_first × (size_second·maps·size_out)` matrix.
    basis: Mat<D, NoneTape>,
    /// The channel of `first`, and that of `second`, of each pair.
    first: Tensor<(usize,), usize, D>,
    second: Tensor<(usize,), usize, D>,
}

/// The constant tensors of the portable path, on the layer's device.
struct Portable<D: KernelDevice> {
    /// Per summand with channels, its rows of the transposed input, ordered (copy, component).
    inputs: Vec<Option<Rows<D>>>,
    terms: Vec<TermOps<D>>,
    /// Each position's row in the stack of the outputs, written (copy,
    /// component) per summand that a term writes, then a zero row when some
    /// summand gets none.
    order: Rows<D>,
    zero: bool,
}

pub(crate) struct Bilinear<D: KernelDevice> {
    structure: Arc<Structure>,
    /// Per summand Mₛ, absent for summands no term reads.
    mixers: Vec<Option<Param<D>>>,
    /// Per term W_t.
    weights: Vec<Param<D>>,
    portable: Portable<D>,
}

/// What the forward pass keeps for the backward pass.
struct Saved {
    /// Per summand: Xₛ, and Uₛ channel-major (per row, channels × components;
    /// empty for summands without channels).
    x: Vec<Vec<f32>>,
    ut: Vec<Vec<f32>>,
    /// Per term: T and F.
    contracted: Vec<Vec<f32>>,
    features: Vec<Vec<f32>>,
    mixers: Vec<Vec<f32>>,
    weights: Vec<Vec<f32>>,
}

impl<D: KernelDevice> Bilinear<D> {
    /// Builds the layer of node `node` on `rep` with at most `channels`
    /// bilinear channels per summand. Its parameter count is
    /// [`BilinearPlan::parameters`], the planner's, which the network checks
    /// against the graph.
    pub(crate) fn new(
        device: &D,
        node: usize,
        solver: &mut BasisSolver,
        (rep, channels): (&Rep, usize),
        rng: &mut rand::rngs::StdRng,
    ) -> Result<Self, BackendError> {
        let plan = BilinearPlan::new(solver, rep, channels).map_err(|e| BackendError::Group {
            group: solver.group().name().into(),
            message: e.to_string(),
        })?;
        let summands: Vec<Summand> = (plan.layout.summands.iter())
            .zip(&plan.channels)
            .map(|(s, &channels)| Summand {
                offset: s.offset,
                size: s.size,
                copies: s.multiplicity,
                channels,
            })
            .collect();
        let terms: Vec<Term> = (plan.terms.iter())
            .map(|t| {
                let (sl, sr) = (summands[t.left], summands[t.right]);
                let out = summands[t.output].size;
                // The plan's maps index their columns (left i, right j) as i·d_r + j.
                let swap = sl.size > sr.size;
                let (first, second) = if swap { (sl, sr) } else { (sr, sl) };
                let row_width = t.basis.len() * out * second.size;
                let mut basis = vec![0.0; first.size * row_width];
                for (k, b) in t.basis.iter().enumerate() {
                    let b = b * ((out as f64).sqrt() / b.norm());
                    for e in 0..out {
                        for (i, j) in (0..sl.size).flat_map(|i| (0..sr.size).map(move |j| (i, j))) {
                            let (f, s) = if swap { (i, j) } else { (j, i) };
                            basis[f * row_width + s * t.basis.len() * out + k * out + e] =
                                b[(e, i * sr.size + j)] as f32;
                        }
                    }
                }
                let pairs = (0..sl.channels)
                    .flat_map(|a| (0..sr.channels).map(move |b| (a, b)))
                    .filter(|&(a, b)| t.left != t.right || a <= b)
                    .map(|(a, b)| if swap { (b, a) } else { (a, b) })
                    .collect::<Vec<_>>();
                debug_assert_eq!(pairs.len(), t.pairs);
                let (first, second) = if swap {
                    (t.left, t.right)
                } else {
                    (t.right, t.left)
                };
                Term {
                    first,
                    second,
                    output: t.output,
                    basis,
                    maps: t.basis.len(),
                    pairs,
                }
            })
            .collect();
        let mixers = (summands.iter().enumerate())
            .map(|(s, shape)| {
                let init = 1.0 / (shape.copies as f32).sqrt();
                let name = format!("n{node}.mix.{s}");
                (shape.channels > 0)
                    .then(|| {
                        Param::new(device, name, vec![shape.channels, shape.copies], init, rng)
                    })
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        let mut fan_in = vec![0; summands.len()];
        for t in &terms {
            fan_in[t.output] += t.features();
        }
        let weights = (terms.iter().enumerate())
            .map(|(i, t)| {
                let init = INITIAL_SCALE / (fan_in[t.output] as f32).sqrt();
                let shape = vec![summands[t.output].copies, t.features()];
                Param::new(device, format!("n{node}.bilinear.{i}"), shape, init, rng)
            })
            .collect::<Result<_, _>>()?;
        let structure = Structure {
            dim: plan.layout.perm.len(),
            perm: plan.layout.perm,
            summands,
            terms,
        };
        Ok(Bilinear {
            portable: structure.portable(device)?,
            structure: Arc::new(structure),
            mixers,
            weights,
        })
    }

    pub(crate) fn width(&self) -> usize {
        self.structure.dim
    }

    pub(crate) fn params(&self) -> impl Iterator<Item = &Param<D>> {
        self.mixers.iter().flatten().chain(&self.weights)
    }

    pub(crate) fn params_mut(&mut self) -> impl Iterator<Item = &mut Param<D>> {
        self.mixers.iter_mut().flatten().chain(&mut self.weights)
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
        let (layer, ops) = (&self.structure, &self.portable);
        let rows = x.shape().0;
        // Every read of `x` and of the channels goes by id; their tapes rejoin at the residual.
        let (x, mut tape) = x.split_tape();
        let mut channels = Vec::with_capacity(layer.summands.len());
        for ((s, mixer), input) in (layer.summands.iter().zip(&self.mixers)).zip(&ops.inputs) {
            let (Some(mixer), Some(input)) = (mixer, input) else {
                channels.push(None);
                continue;
            };
            let xs = input
                .take(x.retaped::<T>().try_permute::<_, Axes2<1, 0>>()?)?
                .try_reshape_like(&(s.copies, s.size * rows))?;
            let (u, u_tape) = (mixer.handle().retaped::<T>())
                .try_reshape_like(&(s.channels, s.copies))?
                .try_matmul(xs)?
                .try_reshape_like(&(s.channels, s.size, rows))?
                .try_permute::<_, Axes3<0, 2, 1>>()?
                .split_tape();
            tape = tape.merge(u_tape);
            channels.push(Some(u));
        }
        let mut outputs: Vec<Option<Mat<D, T>>> = layer.summands.iter().map(|_| None).collect();
        for ((t, weight), term) in (layer.terms.iter().zip(&self.weights)).zip(&ops.terms) {
            let (first, second, out) = (
                layer.summands[t.first],
                layer.summands[t.second],
                layer.summands[t.output],
            );
            let (pairs, width) = (t.pairs.len(), t.maps * out.size);
            let (Some(uf), Some(us)) = (&channels[t.first], &channels[t.second]) else {
                continue;
            };
            // (pair, row) × (component of `second`, map row): T of each pair's channel b.
            let contracted = (uf.retaped::<T>().try_gather(term.first.clone())?)
                .try_reshape_like(&(pairs * rows, first.size))?
                .try_matmul(term.basis.clone())?
                .try_reshape_like(&(pairs, rows, second.size, width))?;
            let us = (us.retaped::<T>().try_gather(term.second.clone())?)
                .try_broadcast_like::<_, Axis<3>>(&(pairs, rows, second.size, width))?;
            let features = (contracted.try_mul(us)?)
                .try_sum::<(usize, usize, usize), Axis<2>>()?
                .try_reshape_like(&(pairs, rows, t.maps, out.size))?
                .try_permute::<_, Axes4<2, 0, 3, 1>>()?
                .try_reshape_like(&(t.features(), out.size * rows))?;
            let y = (weight.handle().retaped::<T>())
                .try_reshape_like(&(out.copies, t.features()))?
                .try_matmul(features)?;
            outputs[t.output] = Some(match outputs[t.output].take() {
                Some(acc) => acc.try_add(y)?,
                None => y,
            });
        }
        let mut blocks = Vec::with_capacity(outputs.len() + 1);
        for (y, s) in outputs.into_iter().zip(&layer.summands) {
            if let Some(y) = y {
                blocks.push(y.try_reshape_like(&(s.copies * s.size, rows))?);
            }
        }
        if ops.zero {
            blocks.push(x.device().try_zeros_like(&(1, rows))?.retaped::<T>());
        }
        let x = x.put_tape(tape);
        match concat_along(blocks, Axis::<0>)? {
            Some(products) => x.try_add(ops.order.take(products)?.try_permute::<_, Axes2<1, 0>>()?),
            // Without terms the layer is the identity.
            None => Ok(x),
        }
    }

    /// The fused kernel: one custom op on the tape.
    pub(super) fn forward_fused<T: Tape<f32, D>>(
        &self,
        x: Mat<D, T>,
    ) -> Result<Mat<D, T>, BackendError> {
        let rows = x.shape().0;
        let layer = Arc::clone(&self.structure);
        let xs = host(&x);
        let mut saved = Saved {
            x: Vec::new(),
            ut: Vec::new(),
            contracted: Vec::new(),
            features: Vec::new(),
            mixers: self
                .mixers
                .iter()
                .map(|m| m.as_ref().map(Param::values).unwrap_or_default())
                .collect(),
            weights: self.weights.iter().map(Param::values).collect(),
        };
        for (s, mixer) in layer.summands.iter().zip(&saved.mixers) {
            let (x, mut u) = (
                layer.gather(&xs, rows, s),
                vec![0.0; rows * s.size * s.channels],
            );
            if s.channels > 0 {
                matmul(
                    MatRef::new(&x, rows * s.size, s.copies),
                    MatRef::new(mixer, s.channels, s.copies).t(),
                    &mut u,
                    false,
                );
            }
            saved.x.push(x);
            saved
                .ut
                .push(transpose_blocks(&u, rows, s.size, s.channels));
        }
        let mut y: Vec<Vec<f32>> = (layer.summands.iter())
            .map(|s| vec![0.0; rows * s.size * s.copies])
            .collect();
        for (t, weight) in layer.terms.iter().zip(&saved.weights) {
            let (contracted, features) = layer.term_forward(t, &saved.ut, rows);
            let out = layer.summands[t.output];
            matmul(
                MatRef::new(&features, rows * out.size, t.features()),
                MatRef::new(weight, out.copies, t.features()).t(),
                &mut y[t.output],
                true,
            );
            saved.contracted.push(contracted);
            saved.features.push(features);
        }
        let mut out = xs;
        for (s, y) in layer.summands.iter().zip(&y) {
            layer.scatter_add(y, rows, s, &mut out);
        }
        let handles: Vec<_> = self.params().map(Param::handle).collect();
        custom_op(x, out, layer.dim, move |grad_out, grads, input| {
            let dy: Vec<Vec<f32>> = (layer.summands.iter())
                .map(|s| layer.gather(&grad_out, rows, s))
                .collect();
            let mut dut: Vec<Vec<f32>> = saved.ut.iter().map(|u| vec![0.0; u.len()]).collect();
            let (mixer_handles, weight_handles) =
                handles.split_at(handles.len() - layer.terms.len());
            for (i, t) in layer.terms.iter().enumerate() {
                let out = layer.summands[t.output];
                let dy = MatRef::new(&dy[t.output], rows * out.size, out.copies);
                let features = MatRef::new(&saved.features[i], rows * out.size, t.features());
                matmul(dy.t(), features, grads.slice(&weight_handles[i])?, true);
                let mut df = vec![0.0; rows * out.size * t.features()];
                let weight = MatRef::new(&saved.weights[i], out.copies, t.features());
                matmul(dy, weight, &mut df, false);
                layer.term_backward(t, &df, &saved.contracted[i], &saved.ut, &mut dut);
            }
            let dx = grads.slice(input)?;
            dx.iter_mut().zip(grad_out).for_each(|(d, g)| *d += g);
            let active = layer
                .summands
                .iter()
                .enumerate()
                .filter(|(_, s)| s.channels > 0);
            for ((s, shape), handle) in active.zip(mixer_handles) {
                let du = transpose_blocks(&dut[s], rows, shape.channels, shape.size);
                let du = MatRef::new(&du, rows * shape.size, shape.channels);
                let x = MatRef::new(&saved.x[s], rows * shape.size, shape.copies);
                matmul(du.t(), x, grads.slice(handle)?, true);
                let mut dxs = vec![0.0; rows * shape.size * shape.copies];
                let mixer = MatRef::new(&saved.mixers[s], shape.channels, shape.copies);
                matmul(du, mixer, &mut dxs, false);
                layer.scatter_add(&dxs, rows, shape, grads.slice(input)?);
            }
            Ok(())
        })
    }
}

impl Structure {
    /// The constant tensors of the portable path.
    fn portable<D: KernelDevice>(&self, device: &D) -> Result<Portable<D>, BackendError> {
        let index = |v: Vec<usize>| {
            let len = v.len();
            device
                .try_tensor_from_vec(v, (len,))
                .map_err(BackendError::device)
        };
        let inputs = (self.summands.iter())
            .map(|s| {
                let rows = self.perm[s.offset..s.offset + s.copies * s.size].to_vec();
                (s.channels > 0)
                    .then(|| Rows::new(device, rows, self.dim))
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        let terms = (self.terms.iter())
            .map(|t| {
                let first = self.summands[t.first].size;
                let basis = device
                    .try_tensor_from_vec(t.basis.clone(), (first, t.basis.len() / first))
                    .map_err(BackendError::device)?;
                Ok(TermOps {
                    basis,
                    first: index(t.pairs.iter().map(|&(_, b)| b).collect())?,
                    second: index(t.pairs.iter().map(|&(a, _)| a).collect())?,
                })
            })
            .collect::<Result<_, BackendError>>()?;
        // Row of each canonical coordinate in the stack of the written summands.
        let mut stacked = vec![None; self.dim];
        let mut rows = 0;
        for (i, s) in self.summands.iter().enumerate() {
            if self.terms.iter().any(|t| t.output == i) {
                let block = s.offset..s.offset + s.copies * s.size;
                for (q, slot) in stacked[block].iter_mut().enumerate() {
                    *slot = Some(rows + q);
                }
                rows += s.copies * s.size;
            }
        }
        let zero = stacked.iter().any(Option::is_none);
        let mut order = vec![0; self.dim];
        for (q, row) in stacked.into_iter().enumerate() {
            order[self.perm[q]] = row.unwrap_or(rows);
        }
        Ok(Portable {
            inputs,
            terms,
            order: Rows::new(device, order, rows + usize::from(zero))?,
            zero,
        })
    }

    /// Summand `s` of every row as Xₛ: rows (batch row, component), columns copies.
    fn gather(&self, x: &[f32], rows: usize, s: &Summand) -> Vec<f32> {
        let mut out = vec![0.0; rows * s.size * s.copies];
        for (out, x) in out
            .chunks_exact_mut(s.size * s.copies)
            .zip(x.chunks_exact(self.dim))
        {
            for c in 0..s.copies {
                for a in 0..s.size {
                    out[a * s.copies + c] = x[self.perm[s.offset + c * s.size + a]];
                }
            }
        }
        out
    }

    /// Adds Xₛ-laid-out values `v` into the layer's vectors `out`.
    fn scatter_add(&self, v: &[f32], rows: usize, s: &Summand, out: &mut [f32]) {
        for (out, v) in
            (out.chunks_exact_mut(self.dim).take(rows)).zip(v.chunks_exact(s.size * s.copies))
        {
            for c in 0..s.copies {
                for a in 0..s.size {
                    out[self.perm[s.offset + c * s.size + a]] += v[a * s.copies + c];
                }
            }
        }
    }

    /// T (rows (batch row, channel of `first`), columns (component of
    /// `second`, map row)) and F (rows (batch row, output component), columns
    /// (basis map, pair)) of term `t`, from the channel-major channels `ut`.
    fn term_forward(&self, t: &Term, ut: &[Vec<f32>], rows: usize) -> (Vec<f32>, Vec<f32>) {
        let (first, second, out) = (
            self.summands[t.first],
            self.summands[t.second],
            self.summands[t.output],
        );
        let width = t.maps * out.size;
        let row_width = width * second.size;
        let mut contracted = vec![0.0; rows * first.channels * row_width];
        matmul(
            MatRef::new(&ut[t.first], rows * first.channels, first.size),
            MatRef::new(&t.basis, first.size, row_width),
            &mut contracted,
            false,
        );
        let (np, fw, sw) = (
            t.pairs.len(),
            out.size * t.features(),
            second.size * second.channels,
        );
        let mut f = vec![0.0; rows * fw];
        f.par_chunks_mut(fw).enumerate().for_each(|(row, f)| {
            let us = &ut[t.second][row * sw..][..sw];
            let tr = &contracted[row * first.channels * row_width..][..first.channels * row_width];
            let mut z = vec![0.0; width];
            for (p, &(a, b)) in t.pairs.iter().enumerate() {
                let ua = &us[a * second.size..][..second.size];
                z.fill(0.0);
                for (&u, ti) in ua
                    .iter()
                    .zip(tr[b * row_width..][..row_width].chunks_exact(width))
                {
                    axpy(u, ti, &mut z);
                }
                t.scatter(&z, np, p, f);
            }
        });
        (contracted, f)
    }

    /// Adds term `t`'s share of dU (channel-major, like `ut`) given dF.
    fn term_backward(
        &self,
        t: &Term,
        df: &[f32],
        contracted: &[f32],
        ut: &[Vec<f32>],
        dut: &mut [Vec<f32>],
    ) {
        let (first, second, out) = (
            self.summands[t.first],
            self.summands[t.second],
            self.summands[t.output],
        );
        let width = t.maps * out.size;
        let row_width = width * second.size;
        let (np, fw, sw) = (
            t.pairs.len(),
            out.size * t.features(),
            second.size * second.channels,
        );
        let tw = first.channels * row_width;
        let rows = df.len() / fw;
        let mut dcontracted = vec![0.0; contracted.len()];
        let mut dsecond = vec![0.0; rows * sw];
        (dcontracted.par_chunks_mut(tw))
            .zip(dsecond.par_chunks_mut(sw))
            .enumerate()
            .for_each(|(row, (dt, ds))| {
                let (df, us) = (&df[row * fw..][..fw], &ut[t.second][row * sw..][..sw]);
                let tr = &contracted[row * tw..][..tw];
                let mut dz = vec![0.0; width];
                for (p, &(a, b)) in t.pairs.iter().enumerate() {
                    t.gather(df, np, p, &mut dz);
                    let ua = &us[a * second.size..][..second.size];
                    let dua = &mut ds[a * second.size..][..second.size];
                    let tb = tr[b * row_width..][..row_width].chunks_exact(width);
                    let dtb = dt[b * row_width..][..row_width].chunks_exact_mut(width);
                    for (((ti, dti), &u), du) in tb.zip(dtb).zip(ua).zip(dua) {
                        *du += dot(&dz, ti);
                        axpy(u, &dz, dti);
                    }
                }
            });
        add_into(&mut dut[t.second], &dsecond);
        matmul(
            MatRef::new(&dcontracted, rows * first.channels, row_width),
            MatRef::new(&t.basis, first.size, row_width).t(),
            &mut dut[t.first],
            true,
        );
    }
}

/// Eight partial sums, so that the compiler may keep them in one vector
/// register: a single running f32 sum has to add in order.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = (ac.remainder().iter())
        .zip(bc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in ac.zip(bc) {
        for ((l, a), b) in lanes.iter_mut().zip(a).zip(b) {
            *l += a * b;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `y += a·x`.
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
}

fn add_into(acc: &mut [f32], v: &[f32]) {
    acc.iter_mut().zip(v).for_each(|(a, v)| *a += v);
}

/// Transposes each of the `rows` consecutive `a × b` row-major blocks of `v`.
fn transpose_blocks(v: &[f32], rows: usize, a: usize, b: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for (out, v) in out
        .chunks_exact_mut(a * b)
        .zip(v.chunks_exact(a * b))
        .take(rows)
    {
        for i in 0..a {
            for j in 0..b {
                out[j * a + i] = v[i * b + j];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::equivariant::portable_checks::{assert_paths_agree, Handle};
    use super::super::testing::*;
    use super::super::Layer;
    use super::*;
    use crate::group::Group;
    use crate::plan::{uniform_rep, Op, BILINEAR_CHANNELS};
    use dfdx::tensor::Cpu;
    use rand::SeedableRng;

    fn op(group: &Group, rep: &Rep) -> Op {
        Op::Bilinear {
            group: group.name().into(),
            rep: rep.clone(),
            channels: BILINEAR_CHANNELS,
        }
    }

    /// The layer on `rep`, with the parameter count its plan implies.
    fn layer(group: &Group, rep: &Rep, seed: u64) -> Layer<Cpu> {
        let mut solver = BasisSolver::new(group);
        let params = BilinearPlan::new(&mut solver, rep, BILINEAR_CHANNELS)
            .unwrap()
            .parameters();
        let layer = build_layer(group, op(group, rep), rep.size(group.n()), seed);
        assert_eq!(
            layer.params().iter().map(|p| p.len()).sum::<usize>(),
            params
        );
        layer
    }

    #[test]
    fn bilinear_is_equivariant_for_random_group_elements() {
        let cases = [
            // O(5) on an EMLP hidden rep with gates, 2V-fed.
            (
                Group::builtin("O", &[5]).unwrap(),
                Rep::Sum(vec![uniform_rep(90, 5, true), Rep::Scalar.times(4)]),
            ),
            // SO(3) with V² outputs: V⊗V → V² includes the cross product's ε.
            (
                Group::builtin("SO", &[3]).unwrap(),
                Rep::Sum(vec![Rep::V.times(3), Rep::Scalar.times(2), Rep::V.pow(2)]),
            ),
            (
                Group::builtin("Lorentz", &[]).unwrap(),
                uniform_rep(60, 4, false),
            ),
        ];
        for (group, rep) in cases {
            let layer = layer(&group, &rep, 3);
            assert_equivariant(&layer, &group, |g| (rep.rho(g), rep.rho(g)));
        }
    }

    /// Reps over O(2), SO(2), SO(3) and O(5): EMLP hidden reps with gates,
    /// and written orders with V² (V⊗V → V² includes SO(3)'s cross product).
    fn cases() -> Vec<(Group, Rep)> {
        let planned = |n: usize, channels: usize, gates: usize| {
            Rep::Sum(vec![
                uniform_rep(channels, n, true),
                Rep::Scalar.times(gates),
            ])
        };
        vec![
            (Group::builtin("O", &[2]).unwrap(), planned(2, 40, 6)),
            (Group::builtin("SO", &[2]).unwrap(), planned(2, 30, 4)),
            (
                Group::builtin("SO", &[3]).unwrap(),
                Rep::Sum(vec![Rep::V.times(3), Rep::Scalar.times(2), Rep::V.pow(2)]),
            ),
            (Group::builtin("O", &[5]).unwrap(), planned(5, 90, 4)),
        ]
    }

    /// The layer with its product mixings at full scale, so that the products
    /// weigh in the comparison, and its parameter handles.
    fn scaled(group: &Group, rep: &Rep) -> (Layer<Cpu>, Vec<Handle>) {
        let mut layer = layer(group, rep, 4);
        for p in layer.params_mut() {
            let v: Vec<f32> = p.values().iter().map(|v| v * 10.0).collect();
            p.set(&v);
        }
        let handles = layer.params().iter().map(|p| p.handle()).collect();
        (layer, handles)
    }

    fn unwrap(layer: &Layer<Cpu>) -> &Bilinear<Cpu> {
        let Layer::Bilinear(l) = layer else {
            unreachable!()
        };
        l
    }

    #[test]
    fn portable_path_matches_the_fused_kernel() {
        for (group, rep) in cases() {
            let (layer, params) = scaled(&group, &rep);
            let l = unwrap(&layer);
            assert_paths_agree(
                &params,
                (3, l.width()),
                |x| l.forward_fused(x).unwrap(),
                |x| l.forward_ops(x).unwrap(),
            );
        }
    }

    #[test]
    fn portable_path_is_equivariant_for_random_group_elements() {
        for (group, rep) in cases() {
            let (layer, _) = scaled(&group, &rep);
            super::super::testing::assert_equivariant_map(
                |x| unwrap(&layer).forward_ops(x).unwrap(),
                &group,
                |g| (rep.rho(g), rep.rho(g)),
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let group = Group::builtin("SO", &[3]).unwrap();
        let rep = Rep::Sum(vec![Rep::V.times(2), Rep::Scalar.times(3), Rep::V.pow(2)]);
        let mut layer = layer(&group, &rep, 5);
        // Start the product mixings at full scale so their share of the gradient is visible.
        for p in layer.params_mut() {
            let v: Vec<f32> = p.values().iter().map(|v| v * 10.0).collect();
            p.set(&v);
        }
        check_gradients(&mut layer, 3, rep.size(3));
    }

    #[test]
    fn a_gated_block_with_products_sees_its_input() {
        // O(5), 2V → scalar: without products every gate is a constant and the
        // output does not depend on x; with them it does, and stays invariant.
        let group = Group::builtin("O", &[5]).unwrap();
        let (input, hidden) = (Rep::V.times(2), uniform_rep(40, 5, true));
        let gates = crate::plan::gate_count(&hidden);
        let gated = Rep::Sum(vec![hidden.clone(), Rep::Scalar.times(gates)]);
        let mut solver = BasisSolver::new(&group);
        let mut linear = |rep_in: &Rep, rep_out: &Rep| Op::EquivariantLinear {
            group: group.name().into(),
            rep_in: rep_in.clone(),
            rep_out: rep_out.clone(),
            basis: solver.blocks(rep_in, rep_out).unwrap().dimension(),
            bias: solver.blocks(&Rep::Scalar, rep_out).unwrap().dimension(),
        };
        let stack = [
            (linear(&input, &gated), input.size(5)),
            (op(&group, &gated), gated.size(5)),
            (
                Op::Gated {
                    group: group.name().into(),
                    rep: hidden.clone(),
                    gates,
                },
                gated.size(5),
            ),
            (linear(&hidden, &Rep::Scalar), hidden.size(5)),
        ];
        let layers: Vec<Layer<Cpu>> = (stack.into_iter().enumerate())
            .map(|(i, (op, width))| build_layer(&group, op, width, i as u64))
            .collect();
        let dev = Cpu::default();
        let run = |x: Vec<f32>| -> Vec<f32> {
            let x = dev.tensor_from_vec(x, (4, 10));
            let y = layers.iter().try_fold(x, |x, l| l.forward(x)).unwrap();
            host(&y)
        };
        let x = random_matrix(4, 10, 7);
        let y = run(x.clone());
        let spread = y.iter().map(|v| (v - y[0]).abs()).fold(0.0, f32::max);
        assert!(
            spread > 1e-3 * (1.0 + y[0].abs()),
            "outputs {y:?} do not depend on x"
        );
        let g = group.sample(&mut rand::rngs::StdRng::seed_from_u64(9));
        let rho = input.rho(&g);
        let gx: Vec<f32> = (x.chunks(10))
            .flat_map(|r| {
                let v = nalgebra::DVector::from_iterator(10, r.iter().map(|&v| v as f64));
                (&rho * v).iter().map(|&v| v as f32).collect::<Vec<_>>()
            })
            .collect();
        assert_close(&run(gx), &y, 1e-5);
    }
}
