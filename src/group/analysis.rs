//! What a set of found generators is: normalised, checked for closure, and
//! compared with the built-in algebras of the same matrix size.
//!
//! Generators are compared as vectors of Rⁿ² with the Frobenius inner
//! product. Two spans are compared by their principal angles: with
//! orthonormal bases Qₐ and Q_b of the two spans, the cosines of the angles
//! are the singular values of QₐᵀQ_b. A span lies inside another exactly when
//! all its angles to it are zero.

use super::closure::LieClosure;
use super::matrix_group::Group;
use nalgebra::DMatrix;

/// A span counts as lying inside a built-in algebra when its largest angle to
/// it is at most this (radians; 5°, the acceptance bound for learned so(3)).
const INSIDE: f64 = 5.0 * std::f64::consts::PI / 180.0;

/// Each matrix divided by its Frobenius norm; zero matrices stay zero.
///
/// ```
/// use nalgebra::DMatrix;
/// use symc::group::normalize;
/// let g = normalize(&[DMatrix::from_row_slice(2, 2, &[0.0, -3.0, 3.0, 0.0])]);
/// assert!((g[0].norm() - 1.0).abs() < 1e-15);
/// ```
pub fn normalize(generators: &[DMatrix<f64>]) -> Vec<DMatrix<f64>> {
    generators
        .iter()
        .map(|g| {
            let norm = g.norm();
            if norm > 0.0 {
                g / norm
            } else {
                g.clone()
            }
        })
        .collect()
}

/// |⟨A, B⟩| / (‖A‖‖B‖): 1 when the matrices are multiples of each other.
///
/// ```
/// use nalgebra::DMatrix;
/// use symc::group::cosine;
/// let rotation = DMatrix::from_row_slice(2, 2, &[0.0, -1.0, 1.0, 0.0]);
/// assert!((cosine(&rotation, &(&rotation * -2.0)) - 1.0).abs() < 1e-15);
/// assert_eq!(cosine(&rotation, &DMatrix::identity(2, 2)), 0.0);
/// ```
pub fn cosine(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    let norms = a.norm() * b.norm();
    if norms == 0.0 {
        return 0.0;
    }
    (a.dot(b) / norms).abs().min(1.0)
}

/// The principal angles (radians, ascending) between the spans of two sets of
/// equally sized matrices; there are as many as the smaller span's dimension.
///
/// ```
/// use symc::group::{principal_angles, Group};
/// let so3 = Group::builtin("SO", &[3]).unwrap();
/// let sl3 = Group::builtin("SL", &[3]).unwrap();
/// // so(3) lies inside sl(3): three zero angles.
/// let angles = principal_angles(so3.lie(), sl3.lie());
/// assert_eq!(angles.len(), 3);
/// assert!(angles.iter().all(|a| a.abs() < 1e-7));
/// ```
pub fn principal_angles(a: &[DMatrix<f64>], b: &[DMatrix<f64>]) -> Vec<f64> {
    let (qa, qb) = (orthonormal_span(a), orthonormal_span(b));
    if qa.ncols() == 0 || qb.ncols() == 0 {
        return Vec::new();
    }
    let cosines = (qa.transpose() * qb).singular_values();
    let mut angles: Vec<f64> = cosines.iter().map(|c| c.min(1.0).acos()).collect();
    angles.sort_by(f64::total_cmp);
    angles
}

/// The angles of a span to another, one per dimension of the first: its
/// principal angles, padded with right angles for the directions the second
/// span is too small to hold.
fn angles_into(a: &[DMatrix<f64>], b: &[DMatrix<f64>]) -> Vec<f64> {
    let mut angles = principal_angles(a, b);
    let rank = orthonormal_span(a).ncols();
    angles.resize(rank.max(angles.len()), std::f64::consts::FRAC_PI_2);
    angles
}

/// An orthonormal basis (columns of an n² × r matrix) of the span of the
/// vectorised matrices, dropping directions below rounding.
fn orthonormal_span(matrices: &[DMatrix<f64>]) -> DMatrix<f64> {
    let Some(first) = matrices.first() else {
        return DMatrix::zeros(0, 0);
    };
    let stacked = DMatrix::from_fn(first.len(), matrices.len(), |r, k| matrices[k][r]);
    let svd = stacked.svd(true, false);
    let u = svd.u.expect("left singular vectors were requested");
    let largest = svd.singular_values.max();
    let rank = svd
        .singular_values
        .iter()
        .filter(|&&s| s > 1e-10 * largest)
        .count();
    let order = {
        let mut idx: Vec<usize> = (0..svd.singular_values.len()).collect();
        idx.sort_by(|&i, &j| svd.singular_values[j].total_cmp(&svd.singular_values[i]));
        idx
    };
    u.select_columns(&order[..rank])
}

/// A built-in algebra compared with a found span.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The built-in group, as the language writes it: `SO(3)`, `SO(1,1)`.
    pub name: String,
    /// The dimension of its Lie algebra.
    pub dimension: usize,
    /// The angles (radians, ascending) of the found span to the algebra, one
    /// per found direction; right angles where the algebra is too small.
    pub angles: Vec<f64>,
}

impl Candidate {
    /// The largest angle: zero exactly when the found span lies inside.
    pub fn largest_angle(&self) -> f64 {
        self.angles.last().copied().unwrap_or(0.0)
    }
}

/// Found generators, analysed.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The generators, each of unit Frobenius norm.
    pub generators: Vec<DMatrix<f64>>,
    /// Structure constants and the residual of projecting each commutator on the span.
    pub closure: LieClosure,
    /// The built-in algebras of the same matrix size, nearest first: the
    /// smallest algebra the span lies inside (within 5°), else the one at the
    /// smallest largest angle.
    pub candidates: Vec<Candidate>,
}

impl Analysis {
    /// Normalises `generators` (all n×n, at least one) and compares them with
    /// every built-in algebra of n×n matrices.
    ///
    /// ```
    /// use nalgebra::DMatrix;
    /// use symc::group::Analysis;
    /// let boost = DMatrix::from_row_slice(2, 2, &[0.0, 2.0, 2.0, 0.0]);
    /// let analysis = Analysis::new(&[boost]);
    /// assert_eq!(analysis.nearest().unwrap().name, "SO(1,1)");
    /// assert!(analysis.nearest().unwrap().largest_angle() < 1e-7);
    /// ```
    pub fn new(generators: &[DMatrix<f64>]) -> Analysis {
        let generators = normalize(generators);
        let n = generators.first().map_or(0, DMatrix::nrows);
        let mut candidates: Vec<Candidate> = builtin_algebras(n)
            .into_iter()
            .map(|g| Candidate {
                name: g.name().to_string(),
                dimension: g.lie().len(),
                angles: angles_into(&generators, g.lie()),
            })
            .collect();
        let key = |c: &Candidate| {
            let inside = c.largest_angle() <= INSIDE;
            let rank = if inside {
                c.dimension as f64
            } else {
                c.largest_angle()
            };
            (!inside, rank)
        };
        candidates.sort_by(|a, b| {
            let (ka, kb) = (key(a), key(b));
            ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
        });
        let closure = super::closure::closure(&generators);
        Analysis {
            generators,
            closure,
            candidates,
        }
    }

    /// The nearest built-in algebra, when the matrix size has any.
    pub fn nearest(&self) -> Option<&Candidate> {
        self.candidates.first()
    }
}

/// The built-in groups of n×n matrices that have a Lie algebra, named as the
/// language writes them. `SO(p,q)` appears for p ≥ q only: swapping the signs
/// of the metric gives the same algebra.
fn builtin_algebras(n: usize) -> Vec<Group> {
    let n = n as i64;
    let mut named: Vec<(&str, Vec<i64>)> = vec![("SO", vec![n])];
    named.extend((1..=n / 2).map(|q| ("SO", vec![n - q, q])));
    if n % 2 == 0 {
        named.push(("Sp", vec![n / 2]));
    }
    named.extend([("SL", vec![n]), ("GL", vec![n]), ("Scaling", vec![n])]);
    if n >= 2 {
        named.extend([("SE", vec![n - 1]), ("T", vec![n - 1])]);
    }
    named
        .into_iter()
        .filter_map(|(name, params)| {
            let g = Group::builtin(name, &params).ok()?;
            // `SO(p,q)+` names the identity component; the language writes `SO(p,q)`.
            let written = format!(
                "{name}({})",
                params
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            );
            (!g.lie().is_empty())
                .then(|| Group::from_generators(written, g.n(), g.lie().to_vec(), vec![]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn m(data: &[f64]) -> DMatrix<f64> {
        let n = (data.len() as f64).sqrt() as usize;
        DMatrix::from_row_slice(n, n, data)
    }

    /// Two planes of R⁴ at known angles: span{e₁, e₂} and
    /// span{e₁, cos θ e₂ + sin θ e₃} meet at 0 and θ.
    #[test]
    fn principal_angles_of_planes_with_a_known_angle() {
        let e = |i: usize| {
            let mut v = DMatrix::zeros(2, 2);
            v[i] = 1.0;
            v
        };
        for theta in [0.1_f64, 0.7, 1.4] {
            let tilted = e(1) * theta.cos() + e(2) * theta.sin();
            let angles = principal_angles(&[e(0), e(1)], &[e(0) * 3.0, tilted]);
            assert!(angles[0].abs() < 1e-7);
            assert!((angles[1] - theta).abs() < 1e-12);
        }
    }

    /// Rotations and boosts of R² are recognised, and a noisy rotation's
    /// |cos| to so(2) is the cosine of its angle to it.
    #[test]
    fn one_generator_is_matched_to_its_algebra() {
        let rotation = m(&[0.0, -1.0, 1.0, 0.0]);
        let mut rng = StdRng::seed_from_u64(3);
        let noise = DMatrix::from_fn(2, 2, |_, _| rng.gen_range(-0.05..0.05));
        let noisy = &rotation + noise;
        let analysis = Analysis::new(&[noisy.clone()]);
        let nearest = analysis.nearest().unwrap();
        assert_eq!(nearest.name, "SO(2)");
        let cos = cosine(&noisy, &rotation);
        assert!((nearest.largest_angle() - cos.acos()).abs() < 1e-12);
        assert_eq!(
            Analysis::new(&[m(&[0.0, 1.0, 1.0, 0.0])])
                .nearest()
                .unwrap()
                .name,
            "SO(1,1)"
        );
        assert_eq!(
            Analysis::new(&[m(&[1.0, 0.0, 0.0, 1.0])])
                .nearest()
                .unwrap()
                .name,
            "Scaling(2)"
        );
        // The oscillator's flow [[0, 1], [−4, 0]] is traceless but not antisymmetric:
        // it lies in sl(2) = sp(2), 31° from so(2).
        let flow = Analysis::new(&[m(&[0.0, 1.0, -4.0, 0.0])]);
        assert!(["SL(2)", "Sp(1)"].contains(&flow.nearest().unwrap().name.as_str()));
        let so2 = flow.candidates.iter().find(|c| c.name == "SO(2)").unwrap();
        assert!((so2.largest_angle() - (5.0 / 34f64.sqrt()).acos()).abs() < 1e-12);
    }

    /// A rotated basis of so(3) (random mixing) is still so(3): zero angles
    /// to it, a closing algebra, and so(3) ahead of the larger sl(3), gl(3).
    #[test]
    fn a_mixed_basis_of_so3_is_found_and_closes() {
        let so3 = Group::builtin("SO", &[3]).unwrap();
        let mut rng = StdRng::seed_from_u64(5);
        let mix = DMatrix::from_fn(3, 3, |_, _| rng.gen_range(-1.0..1.0));
        let mixed: Vec<DMatrix<f64>> = (0..3)
            .map(|i| {
                (0..3).fold(DMatrix::zeros(3, 3), |acc, k| {
                    acc + &so3.lie()[k] * mix[(i, k)]
                })
            })
            .collect();
        let analysis = Analysis::new(&mixed);
        assert_eq!(analysis.nearest().unwrap().name, "SO(3)");
        assert!(analysis.nearest().unwrap().largest_angle() < 1e-7);
        assert!(analysis.closure.residual < 1e-10);
        assert!(analysis
            .generators
            .iter()
            .all(|g| (g.norm() - 1.0).abs() < 1e-12));
        let names: Vec<&str> = analysis
            .candidates
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let (so, sl) = (
            names.iter().position(|n| *n == "SO(3)"),
            names.iter().position(|n| *n == "SL(3)"),
        );
        assert!(so < sl);
    }

    /// E₀₁ and E₁₀ alone do not close; their commutator diag(1, −1) is
    /// orthogonal to both, so the residual is ‖[E₀₁, E₁₀]‖ / (‖E₀₁‖‖E₁₀‖) = √2.
    #[test]
    fn an_open_span_reports_its_residual_and_no_small_algebra() {
        let e01 = m(&[0.0, 1.0, 0.0, 0.0]);
        let analysis = Analysis::new(&[e01.clone(), e01.transpose()]);
        assert!((analysis.closure.residual - 2f64.sqrt()).abs() < 1e-12);
        // Inside sl(2) (traceless), not inside any one-dimensional algebra.
        assert!(["SL(2)", "Sp(1)"].contains(&analysis.nearest().unwrap().name.as_str()));
        let so2 = analysis
            .candidates
            .iter()
            .find(|c| c.name == "SO(2)")
            .unwrap();
        assert_eq!(so2.angles.len(), 2);
        assert!((so2.largest_angle() - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
    }
}
