//! The action of a group on a model's concatenated input and output ports.

use super::super::BackendError;
use crate::group::{Group, Rep};
use crate::plan::{ModelGraph, Port};
use nalgebra::DMatrix;

/// ρ_in and ρ_out of one group: block-diagonal over the ports, a port's own
/// representation where it is declared over the group, trivial elsewhere.
pub(super) struct PortAction {
    group: Group,
    inputs: Vec<(usize, Option<Rep>)>,
    outputs: Vec<(usize, Option<Rep>)>,
}

impl PortAction {
    pub(super) fn new(graph: &ModelGraph, group: Group) -> Result<Self, BackendError> {
        let slots = |ports: &[Port]| -> Result<Vec<(usize, Option<Rep>)>, BackendError> {
            ports
                .iter()
                .map(|p| {
                    let rep = p.rep.as_ref().filter(|r| r.group == group.name());
                    match rep {
                        Some(r) if r.rep.size(group.n()) != p.dim => {
                            Err(BackendError::ShapeMismatch {
                                what: format!("size of `{}` on port `{}`", r.rep, p.name),
                                expected: p.dim,
                                found: r.rep.size(group.n()),
                            })
                        }
                        _ => Ok((p.dim, rep.map(|r| r.rep.clone()))),
                    }
                })
                .collect()
        };
        Ok(PortAction {
            inputs: slots(&graph.inputs)?,
            outputs: slots(&graph.outputs)?,
            group,
        })
    }

    pub(super) fn group(&self) -> &Group {
        &self.group
    }

    /// (input width, output width).
    pub(super) fn dims(&self) -> (usize, usize) {
        let width = |s: &[(usize, Option<Rep>)]| s.iter().map(|(d, _)| d).sum();
        (width(&self.inputs), width(&self.outputs))
    }

    /// (ρ_in(g), ρ_out(g)), row-major f32.
    pub(super) fn element(&self, g: &DMatrix<f64>) -> Result<(Vec<f32>, Vec<f32>), BackendError> {
        let action = |slots: &[(usize, Option<Rep>)]| {
            block(slots, |r| r.rho(g), |d| DMatrix::identity(d, d))
        };
        Ok((action(&self.inputs)?, action(&self.outputs)?))
    }

    /// (dρ_in(A), dρ_out(A)), row-major f32; ports not over the group do not move.
    pub(super) fn algebra(&self, a: &DMatrix<f64>) -> Result<(Vec<f32>, Vec<f32>), BackendError> {
        let action =
            |slots: &[(usize, Option<Rep>)]| block(slots, |r| r.drho(a), |d| DMatrix::zeros(d, d));
        Ok((action(&self.inputs)?, action(&self.outputs)?))
    }
}

/// The block-diagonal matrix of `rep` on represented slots and `other` elsewhere.
fn block(
    slots: &[(usize, Option<Rep>)],
    rep: impl Fn(&Rep) -> DMatrix<f64>,
    other: impl Fn(usize) -> DMatrix<f64>,
) -> Result<Vec<f32>, BackendError> {
    let dim: usize = slots.iter().map(|(d, _)| d).sum();
    let mut m = DMatrix::zeros(dim, dim);
    let mut offset = 0;
    for (d, r) in slots {
        let part = r.as_ref().map_or_else(|| other(*d), &rep);
        if !part.iter().all(|v| v.is_finite()) {
            return Err(BackendError::NonFinite {
                what: "a group element's action (is it invertible?)".into(),
            });
        }
        m.view_mut((offset, offset), (*d, *d)).copy_from(&part);
        offset += d;
    }
    Ok(m.transpose().iter().map(|&v| v as f32).collect())
}
