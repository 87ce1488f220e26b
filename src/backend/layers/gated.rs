//! Equivariant nonlinearities: EMLP's gated nonlinearity and a norm
//! nonlinearity.
//!
//! Both apply swish to scalar channels, which is equivariant because the group
//! does not move them, and scale each copy of a non-scalar summand as a whole
//! by an invariant factor:
//! - gated: σ(gate) with the copy's own gate scalar, an extra input channel
//!   (gate g, at input position `rep.size() + g`, belongs to the g-th
//!   non-scalar copy in canonical order — any fixed assignment is equivariant,
//!   as gates are invariant);
//! - norm: σ(‖x‖), the logistic function of the copy's Euclidean norm, which
//!   is invariant when the group acts orthogonally (compact groups given by
//!   orthogonal generators, e.g. O(n), SO(n), permutations).
//!
//! On a host device the layer is one fused operation. Elsewhere it runs on
//! *runs*: maximal stretches of positions that hold only scalars, or whole
//! copies of one size in a row whose gates are in a row too. A run is a slice
//! of the input, reshaped to (row, copy, component) and scaled by a factor
//! broadcast over the components; the runs are concatenated back in position
//! order. The EMLP planner's reps are a handful of runs, so this needs no
//! constant matrices and few operations.

use super::super::kernels::activation::derivatives;
use super::super::kernels::tape::{custom_op, host, KernelDevice, Mat};
use super::super::BackendError;
use super::equivariant::concat_along;
use crate::group::Rep;
use crate::plan::Activation;
use dfdx::prelude::*;
use rayon::prelude::*;
use std::sync::Arc;

/// Batch rows per parallel task; fixed so results do not depend on the thread count.
const ROWS_PER_TASK: usize = 32;

/// How non-scalar copies are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// By σ of the copy's own gate channel.
    Channel,
    /// By σ of the copy's norm.
    Norm,
}

/// A stretch of consecutive positions the portable path treats as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Scalar channels at `start..start + len`.
    Scalars { start: usize, len: usize },
    /// `copies` non-scalar copies of `size` positions each from `start`,
    /// gated (for `Gate::Channel`) by the channels at `gate..gate + copies`.
    Copies {
        start: usize,
        size: usize,
        copies: usize,
        gate: usize,
    },
}

impl Run {
    fn start(&self) -> usize {
        match *self {
            Run::Scalars { start, .. } | Run::Copies { start, .. } => start,
        }
    }

    fn end(&self) -> usize {
        match *self {
            Run::Scalars { start, len } => start + len,
            Run::Copies {
                start,
                size,
                copies,
                ..
            } => start + size * copies,
        }
    }

    /// `self` extended by `next` when they form one run.
    fn merge(&self, next: &Run) -> Option<Run> {
        if next.start() != self.end() {
            return None;
        }
        match (*self, *next) {
            (Run::Scalars { start, len }, Run::Scalars { len: more, .. }) => Some(Run::Scalars {
                start,
                len: len + more,
            }),
            (
                Run::Copies {
                    start,
                    size,
                    copies,
                    gate,
                },
                Run::Copies {
                    size: next_size,
                    copies: more,
                    gate: next_gate,
                    ..
                },
            ) if size == next_size && gate + copies == next_gate => Some(Run::Copies {
                start,
                size,
                copies: copies + more,
                gate,
            }),
            _ => None,
        }
    }
}

/// The runs covering positions `0..out_dim`, or `None` when some copy's
/// positions are not consecutive (as in `V*(V+scalar)`, which the planner
/// does not emit): a slice cannot take such a copy.
fn runs(scalars: &[usize], copies: &[(Vec<usize>, usize)]) -> Option<Vec<Run>> {
    let mut pieces: Vec<Run> = scalars
        .iter()
        .map(|&start| Run::Scalars { start, len: 1 })
        .collect();
    for (positions, gate) in copies {
        let start = *positions.first()?;
        if positions.iter().enumerate().any(|(e, &p)| p != start + e) {
            return None;
        }
        pieces.push(Run::Copies {
            start,
            size: positions.len(),
            copies: 1,
            gate: *gate,
        });
    }
    pieces.sort_by_key(Run::start);
    let mut runs: Vec<Run> = Vec::new();
    for piece in pieces {
        match runs.last().and_then(|last| last.merge(&piece)) {
            Some(merged) => *runs.last_mut()? = merged,
            None => runs.push(piece),
        }
    }
    Some(runs)
}

struct Structure {
    gate: Gate,
    in_dim: usize,
    out_dim: usize,
    /// Positions of scalar channels.
    scalars: Vec<usize>,
    /// Per non-scalar copy: its positions, and its gate's input position (for `Gate::Channel`).
    copies: Vec<(Vec<usize>, usize)>,
    /// The portable path's runs; `None` where it cannot run (see [`runs`]).
    runs: Option<Vec<Run>>,
    /// The rep, for the error a layer without runs gives.
    rep: String,
}

pub(crate) struct Gated {
    structure: Arc<Structure>,
}

fn logistic(x: f32) -> (f32, f32) {
    let (s, ds, _) = derivatives(Activation::Sigmoid, x);
    (s, ds)
}

impl Gated {
    /// The nonlinearity over `rep` (with `gates` extra input channels for `Gate::Channel`).
    pub(crate) fn new(gate: Gate, rep: &Rep, n: usize, gates: usize) -> Result<Self, BackendError> {
        let layout = rep.layout(n);
        let out_dim = layout.perm.len();
        let mut scalars = Vec::new();
        let mut copies = Vec::new();
        for s in &layout.summands {
            for c in 0..s.multiplicity {
                let positions: Vec<usize> = (0..s.size)
                    .map(|e| layout.perm[s.offset + c * s.size + e])
                    .collect();
                if s.rep == Rep::Scalar {
                    scalars.extend(positions);
                } else {
                    let gate_position = out_dim + copies.len();
                    copies.push((positions, gate_position));
                }
            }
        }
        let expected = if gate == Gate::Channel {
            copies.len()
        } else {
            0
        };
        if gates != expected {
            return Err(BackendError::ShapeMismatch {
                what: format!("gate channels of `{rep}`"),
                expected,
                found: gates,
            });
        }
        let structure = Structure {
            gate,
            in_dim: out_dim + gates,
            out_dim,
            runs: runs(&scalars, &copies),
            scalars,
            copies,
            rep: rep.to_string(),
        };
        Ok(Gated {
            structure: Arc::new(structure),
        })
    }

    pub(crate) fn in_width(&self) -> usize {
        self.structure.in_dim
    }

    pub(crate) fn out_width(&self) -> usize {
        self.structure.out_dim
    }

    pub(crate) fn forward<D: KernelDevice, T: Tape<f32, D>>(
        &self,
        x: Mat<D, T>,
    ) -> Result<Mat<D, T>, BackendError> {
        if D::HOST {
            self.forward_fused(x)
        } else {
            self.forward_ops(x)
        }
    }

    /// The layer as dfdx operations on its runs, for devices without host buffers.
    pub(super) fn forward_ops<D: KernelDevice, T: Tape<f32, D>>(
        &self,
        x: Mat<D, T>,
    ) -> Result<Mat<D, T>, BackendError> {
        let runs = self
            .structure
            .runs
            .as_ref()
            .ok_or_else(|| BackendError::Unsupported {
                op: format!(
                    "{} over {} on a device without host buffers (its copies are not contiguous)",
                    match self.structure.gate {
                        Gate::Channel => "gated",
                        Gate::Norm => "norm_nonlinearity",
                    },
                    self.structure.rep
                ),
            })?;
        self.apply_runs(runs, x).map_err(BackendError::device)
    }

    fn apply_runs<D: KernelDevice, T: Tape<f32, D>>(
        &self,
        runs: &[Run],
        x: Mat<D, T>,
    ) -> Result<Mat<D, T>, D::Err> {
        let rows = x.shape().0;
        // Every run reads `x` by id; its tape rejoins the result at the end.
        // dfdx's host slice kernel writes its input's gradient rather than
        // adding to it, which is right only for a tensor whose disjoint slices
        // are all that read it: so the runs slice a copy of `x` with an id of
        // its own, `x`·1, and not `x`, which other layers may read too.
        let (x, tape) = x.try_mul(1.0)?.split_tape();
        let columns = |range: std::ops::Range<usize>| x.retaped::<T>().try_slice((.., range));
        let mut parts = Vec::with_capacity(runs.len());
        for run in runs {
            let part = match *run {
                Run::Scalars { start, len } => {
                    let s = columns(start..start + len)?;
                    s.retaped::<T>().try_sigmoid()?.try_mul(s)?
                }
                Run::Copies {
                    start,
                    size,
                    copies,
                    gate,
                } => {
                    let shape = (rows, copies, size);
                    let v = columns(start..start + size * copies)?.try_reshape_like(&shape)?;
                    let factor = match self.structure.gate {
                        Gate::Channel => columns(gate..gate + copies)?,
                        // The smallest normal f32 changes no norm of a non-zero copy but
                        // keeps √'s derivative finite at a zero one, whose gradient is
                        // then 0 as in the fused kernel.
                        Gate::Norm => v
                            .retaped::<T>()
                            .try_square()?
                            .try_sum::<(usize, usize), Axis<2>>()?
                            .try_add(f32::MIN_POSITIVE)?
                            .try_sqrt()?,
                    };
                    let factor = factor
                        .try_sigmoid()?
                        .try_broadcast_like::<_, Axis<2>>(&shape)?;
                    v.try_mul(factor)?
                        .try_reshape_like(&(rows, copies * size))?
                }
            };
            parts.push(part);
        }
        // No runs: the rep is empty, and so is the input.
        let y = concat_along(parts, Axis::<1>)?.unwrap_or_else(|| x.retaped::<T>());
        let (y, y_tape) = y.split_tape();
        Ok(y.put_tape(y_tape.merge(tape)))
    }

    /// The fused kernel: one custom op on the tape.
    pub(super) fn forward_fused<D: KernelDevice, T: Tape<f32, D>>(
        &self,
        x: Mat<D, T>,
    ) -> Result<Mat<D, T>, BackendError> {
        let layer = Arc::clone(&self.structure);
        let xs = host(&x);
        let (in_dim, out_dim) = (layer.in_dim, layer.out_dim);
        let mut y = vec![0.0; x.shape().0 * out_dim];
        y.par_chunks_mut(out_dim * ROWS_PER_TASK)
            .zip(xs.par_chunks(in_dim * ROWS_PER_TASK))
            .for_each(|(y, x)| {
                for (y, x) in y.chunks_exact_mut(out_dim).zip(x.chunks_exact(in_dim)) {
                    layer.forward_row(x, y);
                }
            });
        custom_op(x, y, out_dim, move |grad_out, grads, input| {
            let dx = grads.slice(input)?;
            dx.par_chunks_mut(in_dim * ROWS_PER_TASK)
                .zip(xs.par_chunks(in_dim * ROWS_PER_TASK))
                .zip(grad_out.par_chunks(out_dim * ROWS_PER_TASK))
                .for_each(|((dx, x), g)| {
                    let rows = dx.chunks_exact_mut(in_dim).zip(x.chunks_exact(in_dim));
                    for ((dx, x), g) in rows.zip(g.chunks_exact(out_dim)) {
                        layer.backward_row(x, g, dx);
                    }
                });
            Ok(())
        })
    }
}

impl Structure {
    /// The invariant factor of one non-scalar copy and its derivative with
    /// respect to the gate or the norm, with the norm itself.
    fn factor(&self, x: &[f32], positions: &[usize], gate: usize) -> (f32, f32, f32) {
        match self.gate {
            Gate::Channel => {
                let (s, ds) = logistic(x[gate]);
                (s, ds, 0.0)
            }
            Gate::Norm => {
                let norm = positions.iter().map(|&p| x[p] * x[p]).sum::<f32>().sqrt();
                let (s, ds) = logistic(norm);
                (s, ds, norm)
            }
        }
    }

    fn forward_row(&self, x: &[f32], y: &mut [f32]) {
        for &p in &self.scalars {
            y[p] = derivatives(Activation::Swish, x[p]).0;
        }
        for (positions, gate) in &self.copies {
            let (s, _, _) = self.factor(x, positions, *gate);
            for &p in positions {
                y[p] = s * x[p];
            }
        }
    }

    fn backward_row(&self, x: &[f32], g: &[f32], dx: &mut [f32]) {
        for &p in &self.scalars {
            dx[p] += g[p] * derivatives(Activation::Swish, x[p]).1;
        }
        for (positions, gate) in &self.copies {
            let (s, ds, norm) = self.factor(x, positions, *gate);
            let g_dot_x: f32 = positions.iter().map(|&p| g[p] * x[p]).sum();
            match self.gate {
                Gate::Channel => {
                    positions.iter().for_each(|&p| dx[p] += g[p] * s);
                    dx[*gate] += ds * g_dot_x;
                }
                Gate::Norm => {
                    // ∂(s(‖x‖)·x_p)/∂x_q = s·δ_pq + s′·x_p·x_q/‖x‖; the second term vanishes at 0.
                    let radial = if norm > 0.0 { ds * g_dot_x / norm } else { 0.0 };
                    positions
                        .iter()
                        .for_each(|&p| dx[p] += g[p] * s + radial * x[p]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::equivariant::portable_checks::assert_paths_agree;
    use super::super::testing::{assert_equivariant, build_layer, check_gradients};
    use super::super::Layer;
    use super::*;
    use crate::group::Group;
    use crate::plan::{gate_count, uniform_rep, Op};
    use nalgebra::DMatrix;

    /// ρ ⊕ identity on `extra` invariant channels.
    fn with_invariants(rho: DMatrix<f64>, extra: usize) -> DMatrix<f64> {
        let n = rho.nrows();
        let mut out = DMatrix::identity(n + extra, n + extra);
        out.view_mut((0, 0), (n, n)).copy_from(&rho);
        out
    }

    fn rep() -> Rep {
        Rep::Sum(vec![Rep::V, Rep::Scalar.times(2), Rep::V.pow(2), Rep::V])
    }

    fn gated_op(group: &Group) -> Op {
        Op::Gated {
            group: group.name().into(),
            rep: rep(),
            gates: 3,
        }
    }

    #[test]
    fn gated_is_equivariant_for_random_group_elements() {
        for group in [
            Group::builtin("O", &[3]).unwrap(),
            Group::builtin("Lorentz", &[]).unwrap(),
        ] {
            let n = group.n();
            let layer = build_layer(&group, gated_op(&group), rep().size(n) + 3, 0);
            assert_equivariant(&layer, &group, |g| {
                (with_invariants(rep().rho(g), 3), rep().rho(g))
            });
        }
    }

    #[test]
    fn norm_nonlinearity_is_equivariant_under_orthogonal_groups() {
        let group = Group::builtin("O", &[3]).unwrap();
        let op = Op::NormNonlinearity {
            group: group.name().into(),
            rep: rep(),
        };
        let layer = build_layer(&group, op, rep().size(3), 0);
        assert_equivariant(&layer, &group, |g| (rep().rho(g), rep().rho(g)));
    }

    #[test]
    fn gradients_match_finite_differences() {
        let group = Group::builtin("O", &[3]).unwrap();
        check_gradients(
            &mut build_layer(&group, gated_op(&group), rep().size(3) + 3, 0),
            3,
            rep().size(3) + 3,
        );
        let op = Op::NormNonlinearity {
            group: group.name().into(),
            rep: rep(),
        };
        check_gradients(
            &mut build_layer(&group, op, rep().size(3), 0),
            3,
            rep().size(3),
        );
    }

    /// The layer over `rep` with `gate`, as built for the graph.
    fn gated(group: &Group, gate: Gate, rep: &Rep) -> Layer<Cpu> {
        let op = match gate {
            Gate::Channel => Op::Gated {
                group: group.name().into(),
                rep: rep.clone(),
                gates: gate_count(rep),
            },
            Gate::Norm => Op::NormNonlinearity {
                group: group.name().into(),
                rep: rep.clone(),
            },
        };
        let gates = if gate == Gate::Channel {
            gate_count(rep)
        } else {
            0
        };
        build_layer(group, op, rep.size(group.n()) + gates, 0)
    }

    fn unwrap(layer: &Layer<Cpu>) -> &Gated {
        let Layer::Gated(l) = layer else {
            unreachable!()
        };
        l
    }

    /// A written order whose copies take gates out of position order, and
    /// the EMLP planner's hidden reps.
    fn reps(n: usize) -> Vec<Rep> {
        vec![rep(), uniform_rep(20 * n, n, true)]
    }

    #[test]
    fn portable_path_matches_the_fused_kernel() {
        for group in [
            Group::builtin("O", &[2]).unwrap(),
            Group::builtin("SO", &[2]).unwrap(),
            Group::builtin("O", &[3]).unwrap(),
        ] {
            for rep in reps(group.n()) {
                for gate in [Gate::Channel, Gate::Norm] {
                    let layer = gated(&group, gate, &rep);
                    let l = unwrap(&layer);
                    assert_paths_agree(
                        &[],
                        (4, l.in_width()),
                        |x| l.forward_fused(x).unwrap(),
                        |x| l.forward_ops(x).unwrap(),
                    );
                }
            }
        }
    }

    #[test]
    fn portable_norm_gradient_is_finite_at_a_zero_copy() {
        let layer = gated(&Group::builtin("O", &[3]).unwrap(), Gate::Norm, &Rep::V);
        let l = unwrap(&layer);
        let x = Cpu::default().tensor_from_vec(vec![0.0; 3], (1, 3));
        let y = l.forward_ops(x.leaky_trace()).unwrap();
        let g = (y * Cpu::default().tensor_from_vec(vec![1.0, 2.0, 3.0], (1, 3)))
            .sum()
            .backward();
        // σ(0)·I: the radial term vanishes with the copy.
        assert_eq!(g.get(&x).as_vec(), vec![0.5, 1.0, 1.5]);
    }

    #[test]
    fn portable_path_is_equivariant_for_random_group_elements() {
        let group = Group::builtin("O", &[3]).unwrap();
        for rep in reps(3) {
            let gates = gate_count(&rep);
            let channel = gated(&group, Gate::Channel, &rep);
            super::super::testing::assert_equivariant_map(
                |x| unwrap(&channel).forward_ops(x).unwrap(),
                &group,
                |g| (with_invariants(rep.rho(g), gates), rep.rho(g)),
            );
            let norm = gated(&group, Gate::Norm, &rep);
            super::super::testing::assert_equivariant_map(
                |x| unwrap(&norm).forward_ops(x).unwrap(),
                &group,
                |g| (rep.rho(g), rep.rho(g)),
            );
        }
    }

    #[test]
    fn portable_path_refuses_copies_that_are_not_contiguous() {
        // V·(V + scalar): the V·V copy skips every fourth position.
        let rep = Rep::Tensor(vec![Rep::V, Rep::Sum(vec![Rep::V, Rep::Scalar])]);
        let layer = gated(&Group::builtin("O", &[3]).unwrap(), Gate::Norm, &rep);
        let x = Cpu::default().tensor_from_vec(vec![1.0; 12], (1, 12));
        let err = unwrap(&layer).forward_ops(x).err();
        assert!(matches!(err, Some(BackendError::Unsupported { .. })));
    }

    #[test]
    fn gate_count_must_match_the_non_scalar_copies() {
        let err = Gated::new(Gate::Channel, &rep(), 3, 2).err();
        assert!(matches!(
            err,
            Some(BackendError::ShapeMismatch {
                expected: 3,
                found: 2,
                ..
            })
        ));
    }
}
