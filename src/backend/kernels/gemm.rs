//! Matrix products through the `matrixmultiply` crate, on row-major slices.
//!
//! dfdx's own matmul goes through the `gemm` crate, and every call from the
//! tape allocates and re-strides; calling a GEMM directly lets a fused layer
//! write into a buffer it owns and accumulate gradients in place. On this
//! project's AVX2 machines `matrixmultiply`'s single-threaded kernel ran
//! 18–40 % faster than `gemm`'s on the hot shapes (750×200×200 and its
//! transposes, 500×384×384), so the products use it and split their output
//! between rayon's threads themselves.

use rayon::prelude::*;

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
            for r in 0..m {
                let start = r * out.row_stride;
                out.data[start..start + n].fill(0.0);
            }
        }
        return;
    }
    let (a_rs, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
    let beta = if accumulate { 1.0 } else { 0.0 };
    let tiles = tile_count(m, k, n);
    // Whole rows of the output go to one thread when there are enough of
    // them, else whole columns: each tile is its own product over the full
    // inner dimension, so the split changes no sum.
    let by_rows = m >= n || n < TILE_ALIGN * tiles;
    let (along, align) = (if by_rows { m } else { n }, TILE_ALIGN);
    let step = along.div_ceil(tiles).div_ceil(align) * align;
    let out_ptr = SendPtr(out.data.as_mut_ptr());
    let (a_ptr, b_ptr) = (
        SendPtr(a.data.as_ptr() as *mut f32),
        SendPtr(b.data.as_ptr() as *mut f32),
    );
    let c_rs = out.row_stride as isize;
    let tile = |start: usize| {
        let len = step.min(along - start);
        let (tm, tn) = if by_rows { (len, n) } else { (m, len) };
        let (a_off, b_off, c_off) = if by_rows {
            (start as isize * a_rs, 0, start as isize * c_rs)
        } else {
            (0, start as isize * b_cs, start as isize)
        };
        // SAFETY: `check_fits` (or the exact-length asserts) guarantee that
        // every index the strides reach lies inside the three slices; tiles
        // write disjoint rows (or columns) of `out`, a unique borrow that
        // does not alias `a` or `b`.
        unsafe {
            matrixmultiply::sgemm(
                tm,
                k,
                tn,
                1.0,
                a_ptr.get().offset(a_off),
                a_rs,
                a_cs,
                b_ptr.get().offset(b_off),
                b_rs,
                b_cs,
                beta,
                out_ptr.get().offset(c_off),
                c_rs,
                1,
            );
        }
    };
    if tiles == 1 {
        tile(0);
    } else {
        (0..along)
            .step_by(step)
            .collect::<Vec<_>>()
            .into_par_iter()
            .for_each(tile);
    }
}

/// Output tiles are multiples of this many rows or columns, the kernels' register block.
const TILE_ALIGN: usize = 8;

/// Below this many multiply-adds a product runs on one thread: splitting it
/// would cost more in scheduling than it saves.
const PARALLEL_WORK: usize = 1 << 20;

/// How many threads share a product of `m × k` by `k × n`.
fn tile_count(m: usize, k: usize, n: usize) -> usize {
    let work = m.saturating_mul(k).saturating_mul(n);
    if work < PARALLEL_WORK {
        return 1;
    }
    let blocks = m.max(n).div_ceil(TILE_ALIGN);
    rayon::current_num_threads()
        .min(work / PARALLEL_WORK)
        .min(blocks)
        .max(1)
}

/// A raw pointer that rayon's closures may carry: the tiles it reaches are disjoint.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);

// SAFETY: only used for the disjoint tiles of one product (see `matmul`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    fn get(self) -> *mut f32 {
        self.0
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
    fn thread_count_does_not_change_a_bit() {
        // Tall products split by rows, wide ones by columns; A or B transposed
        // through strides; accumulating, and overwriting a strided block whose
        // old contents (NaN) must be neither read nor spilled into.
        for (m, k, n) in [(301, 190, 70), (24, 300, 520)] {
            let a = ramp(m * k, 0.01);
            let b = ramp(k * n, 0.013);
            let (at, bt) = (transpose(&a, m, k), transpose(&b, k, n));
            let stride = n + 3;
            let product = |threads: usize| {
                let mut out = ramp(m * n, 0.1);
                let mut fresh = vec![f32::NAN; (m - 1) * stride + n];
                super::super::on_threads(threads, || {
                    matmul(
                        MatRef::new(&a, m, k),
                        MatRef::new(&b, k, n),
                        MatMut::new(&mut out, m, n),
                        true,
                    );
                    matmul(
                        MatRef::new(&at, k, m).t(),
                        MatRef::new(&b, k, n),
                        MatMut::new(&mut out, m, n),
                        true,
                    );
                    matmul(
                        MatRef::new(&a, m, k),
                        MatRef::new(&bt, n, k).t(),
                        MatMut::strided(&mut fresh, m, n, stride),
                        false,
                    );
                });
                (out, fresh)
            };
            let (one, fresh) = product(1);
            let want = naive(&a, &b, m, k, n);
            let start = ramp(m * n, 0.1);
            for ((x, w), s) in one.iter().zip(&want).zip(&start) {
                assert!(
                    (x - s - 2.0 * w).abs() < 1e-3 * (1.0 + w.abs()),
                    "{x} vs {}",
                    s + 2.0 * w
                );
            }
            for (row, w) in fresh.chunks(stride).zip(want.chunks(n)) {
                for (x, w) in row[..n].iter().zip(w) {
                    assert!((x - w).abs() < 1e-3 * (1.0 + w.abs()), "{x} vs {w}");
                }
                assert!(row[n..].iter().all(|v| v.is_nan()), "padding written");
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            for threads in [2, 3] {
                let (many, many_fresh) = product(threads);
                assert_eq!(bits(&one), bits(&many));
                assert_eq!(bits(&fresh), bits(&many_fresh));
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
