//! A symmetric eigensolver: Householder tridiagonalisation (nalgebra) followed
//! by implicit QL iterations with Wilkinson-type shifts (the EISPACK `tql2`
//! algorithm).
//!
//! nalgebra's own `SymmetricEigen` can return eigenvectors that are off by
//! 1e-4 or worse on matrices with clustered eigenvalues (nalgebra issue
//! #1109), exactly the Casimir and normal matrices this module sees, so the
//! QL stage is done here.

use nalgebra::{DMatrix, DVector, SymmetricTridiagonal};

/// Eigenvalues (ascending) and orthonormal eigenvectors (columns) of a
/// symmetric matrix; only its lower triangle is read.
pub(crate) fn symmetric_eigen(a: DMatrix<f64>) -> (DVector<f64>, DMatrix<f64>) {
    let n = a.nrows();
    if n == 0 {
        return (DVector::zeros(0), DMatrix::zeros(0, 0));
    }
    let (mut z, diagonal, off) = SymmetricTridiagonal::new(a).unpack();
    let mut d: Vec<f64> = diagonal.iter().copied().collect();
    // e[i] couples d[i] and d[i + 1]; the trailing zero ends every scan.
    let mut e: Vec<f64> = off.iter().copied().chain([0.0]).collect();
    ql_implicit(&mut d, &mut e, &mut z);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[i].total_cmp(&d[j]));
    let values = DVector::from_iterator(n, order.iter().map(|&i| d[i]));
    (values, z.select_columns(&order))
}

/// Diagonalises the symmetric tridiagonal matrix (d, e) in place, applying
/// every rotation to the columns of `z`.
fn ql_implicit(d: &mut [f64], e: &mut [f64], z: &mut DMatrix<f64>) {
    let n = d.len();
    let mut shift_total = 0.0;
    let mut norm: f64 = 0.0;
    for l in 0..n {
        norm = norm.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while e[m].abs() > f64::EPSILON * norm {
            m += 1;
        }
        if m > l {
            loop {
                let g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let r = p.hypot(1.0).copysign(p);
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let h = g - d[l];
                for di in &mut d[l + 2..] {
                    *di -= h;
                }
                shift_total += h;
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0, 1.0, 1.0);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0, 0.0);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    let g = c * e[i];
                    let h = c * p;
                    let r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    let (mut left, mut right) = z.columns_range_pair_mut(i, i + 1);
                    for (zi, zi1) in left.iter_mut().zip(right.iter_mut()) {
                        let t = *zi1;
                        *zi1 = s * *zi + c * t;
                        *zi = c * *zi - s * t;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= f64::EPSILON * norm {
                    break;
                }
            }
        }
        d[l] += shift_total;
        e[l] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn check(a: &DMatrix<f64>) {
        let (values, vectors) = symmetric_eigen(a.clone());
        let n = a.nrows();
        let residual = a * &vectors - &vectors * DMatrix::from_diagonal(&values);
        assert!(
            residual.amax() < 1e-12 * a.amax().max(1.0),
            "residual {:e}",
            residual.amax()
        );
        assert!((vectors.tr_mul(&vectors) - DMatrix::identity(n, n)).amax() < 1e-12);
        assert!(values.as_slice().windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn random_symmetric_matrices() {
        let mut rng = StdRng::seed_from_u64(3);
        for n in [1, 2, 5, 17, 40] {
            let b = DMatrix::from_fn(n, n, |_, _| rng.gen_range(-1.0..1.0));
            check(&(&b + b.transpose()));
        }
    }

    /// Heavily repeated eigenvalues, as Casimir operators have: Q diag Qᵀ with
    /// a random orthogonal Q and eigenvalues 0, 1, 3 of multiplicities 1, 3, 5.
    #[test]
    fn clustered_eigenvalues() {
        let mut rng = StdRng::seed_from_u64(4);
        let b = DMatrix::from_fn(9, 9, |_, _| rng.gen_range(-1.0..1.0));
        let q = b.qr().q();
        let spectrum = [0.0, 1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 3.0, 3.0];
        let a = &q * DMatrix::from_diagonal(&DVector::from_row_slice(&spectrum)) * q.transpose();
        check(&a);
        let (values, _) = symmetric_eigen(a);
        for (v, s) in values.iter().zip(spectrum) {
            assert!((v - s).abs() < 1e-12);
        }
    }
}
