//! Dense kernels of the heads: products by dimensions over the shared GEMM,
//! and small symmetric solves for mass matrices.

use crate::backend::kernels::gemm::{matmul_into, MatRef};

/// How a row-major operand enters a product.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum T {
    /// As stored.
    N,
    /// Transposed.
    Y,
}

/// `c (m×n) = β·c + op(a) (m×k) · op(b) (k×n)` on the shared GEMM kernel, all
/// row-major; `β` is 0 or 1 (`accumulate`). The heads state their products
/// by dimensions, as the derivations read.
pub(crate) fn matmul(
    c: &mut [f32],
    a: &[f32],
    ta: T,
    b: &[f32],
    tb: T,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
) {
    let view = |data, t, rows, cols| match t {
        T::N => MatRef::new(data, rows, cols),
        T::Y => MatRef::new(data, cols, rows).t(),
    };
    matmul_into(
        view(a, ta, m, k),
        view(b, tb, k, n),
        &mut c[..m * n],
        accumulate,
    );
}

/// A symmetric matrix the solver could not factor: its smallest pivot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Singular {
    pub(crate) row: usize,
    pub(crate) pivot: f64,
}

/// Solves `(a + damping·I) x = b` in place for one symmetric n×n matrix `a`
/// (row-major, f64) by LDLᵀ without pivoting; `b` becomes `x`. Mass matrices of
/// mechanical systems are positive definite, a learned one need not be, so a
/// pivot that is not clearly non-zero is reported rather than divided by.
pub(crate) fn solve_symmetric(
    a: &mut [f64],
    b: &mut [f64],
    n: usize,
    damping: f64,
) -> Result<(), Singular> {
    for i in 0..n {
        a[i * n + i] += damping;
    }
    let scale = (0..n)
        .map(|i| a[i * n + i].abs())
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    // In place: strictly lower part holds L, the diagonal holds D.
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k] * a[k * n + k];
        }
        if d.abs() <= 1e-10 * scale || !d.is_finite() {
            return Err(Singular { row: j, pivot: d });
        }
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut l = a[i * n + j];
            for k in 0..j {
                l -= a[i * n + k] * a[j * n + k] * a[k * n + k];
            }
            a[i * n + j] = l / d;
        }
    }
    for i in 0..n {
        for k in 0..i {
            b[i] -= a[i * n + k] * b[k];
        }
    }
    for i in 0..n {
        b[i] /= a[i * n + i];
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            b[i] -= a[k * n + i] * b[k];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], ta: T, b: &[f32], tb: T, m: usize, n: usize, k: usize) -> Vec<f32> {
        let at = |i: usize, p: usize| {
            if ta == T::N {
                a[i * k + p]
            } else {
                a[p * m + i]
            }
        };
        let bt = |p: usize, j: usize| {
            if tb == T::N {
                b[p * n + j]
            } else {
                b[j * k + p]
            }
        };
        (0..m * n)
            .map(|ij| (0..k).map(|p| at(ij / n, p) * bt(p, ij % n)).sum())
            .collect()
    }

    #[test]
    fn matmul_matches_naive_for_all_transposes() {
        let (m, n, k) = (7, 5, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
        for ta in [T::N, T::Y] {
            for tb in [T::N, T::Y] {
                let want = naive(&a, ta, &b, tb, m, n, k);
                let mut c = vec![1.0; m * n];
                matmul(&mut c, &a, ta, &b, tb, (m, n, k), true);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - 1.0 - y).abs() < 1e-5);
                }
                matmul(&mut c, &a, ta, &b, tb, (m, n, k), false);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn solve_recovers_solution_of_indefinite_system() {
        // Symmetric, indefinite but with non-zero leading minors.
        let a = [4.0, 1.0, 2.0, 1.0, -3.0, 0.5, 2.0, 0.5, 2.0];
        let x = [0.3, -1.2, 2.0];
        let mut b: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| a[i * 3 + j] * x[j]).sum())
            .collect();
        solve_symmetric(&mut a.clone(), &mut b, 3, 0.0).unwrap();
        for (u, v) in b.iter().zip(&x) {
            assert!((u - v).abs() < 1e-12);
        }
    }

    #[test]
    fn singular_matrix_is_reported_and_damping_fixes_it() {
        let a = [1.0, 1.0, 1.0, 1.0];
        let err = solve_symmetric(&mut a.clone(), &mut [1.0, 2.0], 2, 0.0).unwrap_err();
        assert_eq!(err.row, 1);
        let mut b = [1.0, 2.0];
        solve_symmetric(&mut a.clone(), &mut b, 2, 0.5).unwrap();
        // The damped system (11ᵀ + ½I) x = b is regular: its residual must vanish.
        let r0 = 1.5 * b[0] + b[1] - 1.0;
        let r1 = b[0] + 1.5 * b[1] - 2.0;
        assert!(r0.abs() < 1e-12 && r1.abs() < 1e-12);
    }
}
