//! Matrix products through the `gemm` crate, on row-major slices.
//!
//! dfdx's own matmul goes through the same crate, but every call from the tape
//! allocates and re-strides; calling `gemm` directly lets a fused layer write
//! into a buffer it owns and accumulate gradients in place.

use gemm::{gemm, Parallelism};

/// A read-only view of a row-major matrix (rows `row_stride` apart),
/// possibly used transposed.
///
/// `rows × cols` is the *logical* shape, after the optional transpose.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    transposed: bool,
}

/// Checks that a row-major `rows × cols` matrix with rows `row_stride` apart fits in `len`.
fn check_fits(len: usize, rows: usize, cols: usize, row_stride: usize) {
    assert!(
        cols <= row_stride || rows <= 1,
        "row stride shorter than a row"
    );
    let needed = if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * row_stride + cols
    };
    assert!(needed <= len, "matrix data does not hold its shape");
}

impl<'a> MatRef<'a> {
    /// Views `data` as a row-major `rows × cols` matrix.
    ///
    /// # Panics
    /// If `data.len() != rows * cols`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "matrix data does not match its shape"
        );
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            transposed: false,
        }
    }

    /// Views `data` as a row-major `rows × cols` matrix whose rows start
    /// `row_stride` apart — e.g. a block of columns of a wider matrix.
    ///
    /// # Panics
    /// If the rows do not fit in `data` or overlap.
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        check_fits(data.len(), rows, cols, row_stride);
        MatRef {
            data,
            rows,
            cols,
            row_stride,
            transposed: false,
        }
    }

    /// The transpose of this view (no copy).
    pub fn t(self) -> Self {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            transposed: !self.transposed,
            ..self
        }
    }

    /// Logical number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Logical number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// (row stride, column stride) of the logical matrix in `data`.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (1, self.row_stride as isize)
        } else {
            (self.row_stride as isize, 1)
        }
    }
}

/// A writable row-major matrix (rows `row_stride` apart), the destination of [`matmul`].
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
}

impl<'a> MatMut<'a> {
    /// Views `data` as a row-major `rows × cols` matrix.
    ///
    /// # Panics
    /// If `data.len() != rows * cols`.
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "matrix data does not match its shape"
        );
        MatMut {
            data,
            rows,
            cols,
            row_stride: cols,
        }
    }

    /// Views `data` as a row-major `rows × cols` matrix whose rows start `row_stride` apart.
    ///
    /// # Panics
    /// If the rows do not fit in `data` or overlap.
    pub fn strided(data: &'a mut [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        check_fits(data.len(), rows, cols, row_stride);
        MatMut {
            data,
            rows,
            cols,
            row_stride,
        }
    }
}

/// `out = a · b`, or `out += a · b` when `accumulate`; `out` is
/// `a.rows() × b.cols()`.
///
/// Threads split the output into tiles and never the inner dimension, so the
/// result is bit-identical from run to run.
///
/// ```
/// use symc::backend::kernels::gemm::{matmul, MatMut, MatRef};
/// let a = [1.0, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
/// let mut out = [0.0; 4];
/// matmul(MatRef::new(&a, 2, 2), MatRef::new(&a, 2, 2).t(), MatMut::new(&mut out, 2, 2), false);
/// assert_eq!(out, [5.0, 11.0, 11.0, 25.0]);
/// ```
///
/// # Panics
/// If the shapes do not agree.
pub fn matmul(a: MatRef<'_>, b: MatRef<'_>, out: MatMut<'_>, accumulate: bool) {
    assert_eq!(
        a.cols, b.rows,
        "inner dimensions of a matrix product differ"
    );
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(
        (out.rows, out.cols),
        (m, n),
        "product buffer does not match its shape"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in out.data.chunks_mut(out.row_stride) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    let (a_rs, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
    // SAFETY: `check_fits` (or the exact-length asserts) guarantee that every
    // index the strides reach lies inside the three slices, and `out` is a
    // unique borrow that does not alias `a` or `b`.
    unsafe {
        gemm(
            m,
            n,
            k,
            out.data.as_mut_ptr(),
            1,
            out.row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::Rayon(0),
        );
    }
}

/// [`matmul`] into a whole contiguous row-major buffer of `a.rows() × b.cols()`.
pub fn matmul_into(a: MatRef<'_>, b: MatRef<'_>, out: &mut [f32], accumulate: bool) {
    let (rows, cols) = (a.rows(), b.cols());
    matmul(a, b, MatMut::new(out, rows, cols), accumulate);
}

/// Adds the column sums of the row-major matrix `m` (rows of length `cols`)
/// into `acc` — the bias gradient of a batch.
///
/// ```
/// use symc::backend::kernels::gemm::add_column_sums;
/// let mut acc = [1.0, 0.0];
/// add_column_sums(&[1.0, 2.0, 3.0, 4.0], 2, &mut acc);
/// assert_eq!(acc, [5.0, 6.0]);
/// ```
///
/// # Panics
/// If `acc.len() != cols` or `cols` does not divide `m.len()`.
pub fn add_column_sums(m: &[f32], cols: usize, acc: &mut [f32]) {
    assert_eq!(
        acc.len(),
        cols,
        "accumulator length differs from the row length"
    );
    assert!(
        cols > 0 && m.len() % cols == 0,
        "matrix is not a whole number of rows"
    );
    for row in m.chunks_exact(cols) {
        acc.iter_mut().zip(row).for_each(|(a, v)| *a += v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Schoolbook product of row-major matrices, in f64.
    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|l| a[i * k + l] as f64 * b[l * n + j] as f64)
                    .sum();
                out[i * n + j] = s as f32;
            }
        }
        out
    }

    fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let mut t = vec![0.0; a.len()];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = a[i * cols + j];
            }
        }
        t
    }

    fn ramp(len: usize, scale: f32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919) % 23) as f32 * scale - 1.0)
            .collect()
    }

    #[test]
    fn all_transpose_combinations_match_the_schoolbook_product() {
        let (m, k, n) = (37, 19, 41);
        let a = ramp(m * k, 0.1);
        let b = ramp(k * n, 0.07);
        let expected = naive(&a, &b, m, k, n);
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let av = if ta {
                MatRef::new(&at, k, m).t()
            } else {
                MatRef::new(&a, m, k)
            };
            let bv = if tb {
                MatRef::new(&bt, n, k).t()
            } else {
                MatRef::new(&b, k, n)
            };
            let mut out = vec![f32::NAN; m * n];
            matmul(av, bv, MatMut::new(&mut out, m, n), false);
            for (x, y) in out.iter().zip(&expected) {
                assert!((x - y).abs() < 1e-4, "transposes ({ta}, {tb}): {x} vs {y}");
            }
        }
    }

    #[test]
    fn accumulate_adds_to_the_buffer() {
        let (m, k, n) = (5, 3, 4);
        let a = ramp(m * k, 0.3);
        let b = ramp(k * n, 0.2);
        let product = naive(&a, &b, m, k, n);
        let mut out = vec![2.0; m * n];
        matmul(
            MatRef::new(&a, m, k),
            MatRef::new(&b, k, n),
            MatMut::new(&mut out, m, n),
            true,
        );
        for (x, p) in out.iter().zip(&product) {
            assert!((x - (p + 2.0)).abs() < 1e-5);
        }
    }

    #[test]
    fn strided_blocks_multiply_like_copies() {
        // A 4×3 block at column 2 of a 6-wide matrix, times a 3×2 block of a
        // 5-wide one, accumulated into a 4×2 block of a 7-wide output.
        let big_a = ramp(4 * 6, 0.1);
        let big_b = ramp(3 * 5, 0.2);
        let a: Vec<f32> = (0..4)
            .flat_map(|i| big_a[i * 6 + 2..i * 6 + 5].to_vec())
            .collect();
        let b: Vec<f32> = (0..3)
            .flat_map(|i| big_b[i * 5 + 1..i * 5 + 3].to_vec())
            .collect();
        let expected = naive(&a, &b, 4, 3, 2);
        let mut out = [1.0; 4 * 7];
        let av = MatRef::strided(&big_a[2..], 4, 3, 6);
        let bv = MatRef::strided(&big_b[1..], 3, 2, 5);
        matmul(av, bv, MatMut::strided(&mut out[3..], 4, 2, 7), true);
        for i in 0..4 {
            for j in 0..7 {
                let want = if (3..5).contains(&j) {
                    1.0 + expected[i * 2 + j - 3]
                } else {
                    1.0
                };
                assert!((out[i * 7 + j] - want).abs() < 1e-5, "({i}, {j})");
            }
        }
    }

    #[test]
    fn large_products_are_bit_identical_across_runs() {
        let (m, k, n) = (300, 257, 129);
        let a = ramp(m * k, 0.01);
        let b = ramp(k * n, 0.013);
        let mut first = vec![0.0; m * n];
        matmul(
            MatRef::new(&a, m, k),
            MatRef::new(&b, k, n),
            MatMut::new(&mut first, m, n),
            false,
        );
        for _ in 0..3 {
            let mut again = vec![0.0; m * n];
            matmul(
                MatRef::new(&a, m, k),
                MatRef::new(&b, k, n),
                MatMut::new(&mut again, m, n),
                false,
            );
            assert!(first
                .iter()
                .zip(&again)
                .all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
}
