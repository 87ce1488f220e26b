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

use super::super::kernels::activation::derivatives;
use super::super::kernels::tape::{custom_op, host, KernelDevice, Mat};
use super::super::BackendError;
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

struct Structure {
    gate: Gate,
    in_dim: usize,
    out_dim: usize,
    /// Positions of scalar channels.
    scalars: Vec<usize>,
    /// Per non-scalar copy: its positions, and its gate's input position (for `Gate::Channel`).
    copies: Vec<(Vec<usize>, usize)>,
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
            scalars,
            copies,
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
    use super::super::testing::{assert_equivariant, build_layer, check_gradients};
    use super::*;
    use crate::group::Group;
    use crate::plan::Op;
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
