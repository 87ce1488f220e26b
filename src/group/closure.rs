//! Closure of a Lie algebra under the commutator, and its structure constants.

use nalgebra::{DMatrix, DVector};
use std::fmt;

/// Relative residual above which a commutator is said to leave the span.
const CLOSURE_TOL: f64 = 1e-6;

/// A pair of Lie generators whose commutator is not in the span of the generators.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosureWarning {
    /// Index of the first generator.
    pub i: usize,
    /// Index of the second generator.
    pub j: usize,
    /// ‖[Aᵢ, Aⱼ] − its projection on the span‖ relative to ‖Aᵢ‖‖Aⱼ‖.
    pub residual: f64,
}

impl fmt::Display for ClosureWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the commutator of lie generators {} and {} is not in their span \
             (relative residual {:.1e}); the group generated is larger than the span",
            self.i, self.j, self.residual
        )
    }
}

/// The structure constants of a Lie algebra: [Aᵢ, Aⱼ] = Σₖ cᵢⱼₖ Aₖ, by least squares.
///
/// ```
/// use symc::group::Group;
/// let so3 = Group::builtin("SO", &[3]).unwrap();
/// let closure = so3.lie_closure();
/// assert!(closure.warnings.is_empty());
/// // [L₀, L₁] is ±L₂: the constants of so(3) are ±1 or 0.
/// assert!((closure.constants.get(0, 1, 2).abs() - 1.0).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StructureConstants {
    m: usize,
    c: Vec<f64>,
}

impl StructureConstants {
    /// The number of generators.
    pub fn len(&self) -> usize {
        self.m
    }

    /// Whether the algebra has no generators.
    pub fn is_empty(&self) -> bool {
        self.m == 0
    }

    /// cᵢⱼₖ, the coefficient of Aₖ in [Aᵢ, Aⱼ].
    pub fn get(&self, i: usize, j: usize, k: usize) -> f64 {
        self.c[(i * self.m + j) * self.m + k]
    }
}

/// The result of checking a Lie algebra for closure.
#[derive(Debug, Clone, PartialEq)]
pub struct LieClosure {
    /// Best-fit structure constants (exact when the algebra closes).
    pub constants: StructureConstants,
    /// One entry per pair i < j whose commutator leaves the span.
    pub warnings: Vec<ClosureWarning>,
    /// The largest relative residual over all pairs (zero for fewer than two
    /// generators): how far the span is from closing.
    pub residual: f64,
}

impl LieClosure {
    /// Whether every commutator lies in the span.
    pub fn closes(&self) -> bool {
        self.warnings.is_empty()
    }
}

/// Fits every commutator of `lie` to the span of `lie` by least squares.
pub(crate) fn closure(lie: &[DMatrix<f64>]) -> LieClosure {
    let m = lie.len();
    let mut c = vec![0.0; m * m * m];
    let mut warnings = Vec::new();
    let mut largest: f64 = 0.0;
    if m == 0 {
        return LieClosure {
            constants: StructureConstants { m, c },
            warnings,
            residual: largest,
        };
    }
    let n2 = lie[0].len();
    let span = DMatrix::from_fn(n2, m, |r, k| lie[k][r]);
    let svd = span.clone().svd(true, true);
    let rank_eps = 1e-12 * svd.singular_values.max();
    for i in 0..m {
        for j in (i + 1)..m {
            let comm = &lie[i] * &lie[j] - &lie[j] * &lie[i];
            let b = DVector::from_column_slice(comm.as_slice());
            let coef = svd
                .solve(&b, rank_eps)
                .expect("the SVD was computed with both singular-vector sets");
            let scale = (lie[i].norm() * lie[j].norm()).max(f64::MIN_POSITIVE);
            let residual = (&span * &coef - &b).norm() / scale;
            largest = largest.max(residual);
            if residual > CLOSURE_TOL {
                warnings.push(ClosureWarning { i, j, residual });
            }
            for k in 0..m {
                c[(i * m + j) * m + k] = coef[k];
                c[(j * m + i) * m + k] = -coef[k];
            }
        }
    }
    LieClosure {
        constants: StructureConstants { m, c },
        warnings,
        residual: largest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::Group;

    /// so(3) with Lₖ = E_ij − E_ji for (i, j) = (0,1), (0,2), (1,2):
    /// [Lₐ, L_b] computed entrywise must equal Σₖ cₐbₖ Lₖ with the fitted constants.
    #[test]
    fn so3_closes_with_its_structure_constants() {
        let so3 = Group::builtin("SO", &[3]).unwrap();
        let lie = so3.lie();
        let closure = so3.lie_closure();
        assert!(closure.closes());
        assert_eq!(closure.constants.len(), 3);
        for a in 0..3 {
            for b in 0..3 {
                let comm = &lie[a] * &lie[b] - &lie[b] * &lie[a];
                let rebuilt = (0..3).fold(DMatrix::zeros(3, 3), |acc, k| {
                    acc + &lie[k] * closure.constants.get(a, b, k)
                });
                assert!((comm - rebuilt).amax() < 1e-12);
            }
        }
        // With these generators [L₀₁, L₀₂] = −L₁₂ and [L₀₁, L₁₂] = L₀₂ (an ε up to sign).
        assert!((closure.constants.get(0, 1, 2) + 1.0).abs() < 1e-12);
        assert!((closure.constants.get(0, 2, 1) - 1.0).abs() < 1e-12);
        assert!(closure.constants.get(0, 1, 0).abs() < 1e-12);
    }

    #[test]
    fn a_non_closing_pair_is_reported_by_index() {
        // E₀₁ and E₁₀ close only with their commutator diag(1, −1), which
        // the scaling generator I does not provide.
        let e01 = DMatrix::from_row_slice(2, 2, &[0.0, 1.0, 0.0, 0.0]);
        let e10 = e01.transpose();
        let (_, warnings) =
            Group::custom("Broken", vec![DMatrix::identity(2, 2), e01, e10], vec![]).unwrap();
        assert_eq!(warnings.len(), 1);
        assert_eq!((warnings[0].i, warnings[0].j), (1, 2));
        assert!(warnings[0].to_string().contains("lie generators 1 and 2"));
    }
}
