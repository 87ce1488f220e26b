//! The built-in groups, by name and integer parameters.

use super::error::GroupError;
use super::matrix_group::Group;
use nalgebra::DMatrix;
use std::f64::consts::PI;

impl Group {
    /// A built-in group by name and parameters.
    ///
    /// | name | params | group | acts on |
    /// | --- | --- | --- | --- |
    /// | `Trivial` | `[n]` | the trivial group | Rⁿ |
    /// | `SO` | `[n]` | rotations | Rⁿ |
    /// | `SO` | `[p, q]` | identity component SO(p,q)⁺ | Rᵖ⁺q |
    /// | `O` | `[n]` | rotations and reflections | Rⁿ |
    /// | `O` | `[p, q]` | O(p,q) (all four components) | Rᵖ⁺q |
    /// | `SE` | `[n]` | rigid motions, affine | Rⁿ⁺¹ |
    /// | `T` | `[n]` | translations, affine | Rⁿ⁺¹ |
    /// | `C` | `[k]` | rotations by 2π/k | R² |
    /// | `D` | `[k]` | C(k) and a reflection | R² |
    /// | `Z` | `[n]` | cyclic shifts of coordinates | Rⁿ |
    /// | `S` | `[n]` | permutations of coordinates | Rⁿ |
    /// | `Scaling` | `[n]` | positive multiples of the identity | Rⁿ |
    /// | `Lorentz` | `[]` | O(1,3), metric diag(1,−1,−1,−1) | R⁴ |
    /// | `Sp` | `[m]` | symplectic group | R²ᵐ |
    /// | `SL` | `[n]` | determinant one | Rⁿ |
    /// | `GL` | `[n]` | identity component GL⁺(n) | Rⁿ |
    ///
    /// Affine groups act on (x, 1): the translation sits in the last column.
    ///
    /// ```
    /// use symc::group::Group;
    /// assert_eq!(Group::builtin("Lorentz", &[]).unwrap().n(), 4);
    /// assert_eq!(Group::builtin("Sp", &[1]).unwrap().n(), 2);
    /// assert_eq!(Group::builtin("SE", &[3]).unwrap().n(), 4);
    /// assert!(Group::builtin("SO", &[0]).is_err());
    /// assert!(Group::builtin("Spin", &[3]).is_err());
    /// ```
    pub fn builtin(name: &str, params: &[i64]) -> Result<Group, GroupError> {
        let bad = |expected: &'static str| GroupError::BadParameters {
            name: name.to_string(),
            expected,
            found: params.to_vec(),
        };
        let one_positive = || match params {
            [k] if *k >= 1 => usize::try_from(*k).map_err(|_| bad("one positive integer")),
            _ => Err(bad("one positive integer")),
        };
        let signature = || match params {
            [p, q] if *p >= 0 && *q >= 0 && p + q >= 1 => Ok((*p as usize, *q as usize)),
            _ => Err(bad(
                "one positive integer, or two non-negative integers p, q",
            )),
        };
        let g = match name {
            "Trivial" => {
                let n = one_positive()?;
                Group::from_generators(format!("Trivial({n})"), n, vec![], vec![])
            }
            "SO" if params.len() == 2 => {
                let (p, q) = signature()?;
                let metric = metric(p, q);
                Group::from_generators(
                    format!("SO({p},{q})+"),
                    p + q,
                    pseudo_rotations(&metric),
                    vec![],
                )
            }
            "SO" => {
                let n = one_positive()?;
                Group::from_generators(format!("SO({n})"), n, rotations(n), vec![])
            }
            "O" if params.len() == 2 => {
                let (p, q) = signature()?;
                let metric = metric(p, q);
                // Flipping the first axis of each sign class reaches every component.
                let mut reflections = vec![reflection(p + q, 0)];
                if 0 < p && p < p + q {
                    reflections.push(reflection(p + q, p));
                }
                Group::from_generators(
                    format!("O({p},{q})"),
                    p + q,
                    pseudo_rotations(&metric),
                    reflections,
                )
            }
            "O" => {
                let n = one_positive()?;
                Group::from_generators(format!("O({n})"), n, rotations(n), vec![reflection(n, 0)])
            }
            "Lorentz" => {
                if !params.is_empty() {
                    return Err(bad("no parameters"));
                }
                let o13 = Group::builtin("O", &[1, 3])?;
                Group::from_generators("Lorentz", 4, o13.lie().to_vec(), o13.discrete().to_vec())
            }
            "SE" | "T" => {
                let n = one_positive()?;
                let mut lie = if name == "SE" {
                    rotations(n)
                        .into_iter()
                        .map(|r| embed_top_left(&r, n + 1))
                        .collect()
                } else {
                    Vec::new()
                };
                lie.extend((0..n).map(|i| unit(n + 1, i, n)));
                Group::from_generators(format!("{name}({n})"), n + 1, lie, vec![])
            }
            "C" | "D" => {
                let k = one_positive()?;
                let angle = 2.0 * PI / k as f64;
                let (s, c) = angle.sin_cos();
                let mut discrete = vec![DMatrix::from_row_slice(2, 2, &[c, -s, s, c])];
                if name == "D" {
                    discrete.push(reflection(2, 1));
                }
                Group::from_generators(format!("{name}({k})"), 2, vec![], discrete)
            }
            "Z" => {
                let n = one_positive()?;
                let shift = permutation(&(0..n).map(|i| (i + 1) % n).collect::<Vec<_>>());
                Group::from_generators(format!("Z({n})"), n, vec![], vec![shift])
            }
            "S" => {
                let n = one_positive()?;
                // A transposition and an n-cycle generate Sₙ; two generators
                // keep the constraint system small.
                let mut discrete = Vec::new();
                if n >= 2 {
                    let mut swap: Vec<usize> = (0..n).collect();
                    swap.swap(0, 1);
                    discrete.push(permutation(&swap));
                }
                if n >= 3 {
                    discrete.push(permutation(
                        &(0..n).map(|i| (i + 1) % n).collect::<Vec<_>>(),
                    ));
                }
                Group::from_generators(format!("S({n})"), n, vec![], discrete)
            }
            "Scaling" => {
                let n = one_positive()?;
                Group::from_generators(
                    format!("Scaling({n})"),
                    n,
                    vec![DMatrix::identity(n, n)],
                    vec![],
                )
            }
            "Sp" => {
                let m = one_positive()?;
                Group::from_generators(format!("Sp({m})"), 2 * m, symplectic(m), vec![])
            }
            "SL" | "GL" => {
                let n = one_positive()?;
                let mut lie: Vec<_> = (0..n)
                    .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
                    .map(|(i, j)| unit(n, i, j))
                    .collect();
                if name == "SL" {
                    lie.extend((0..n - 1).map(|i| unit(n, i, i) - unit(n, i + 1, i + 1)));
                } else {
                    lie.extend((0..n).map(|i| unit(n, i, i)));
                }
                Group::from_generators(format!("{name}({n})"), n, lie, vec![])
            }
            _ => {
                return Err(GroupError::UnknownGroup {
                    name: name.to_string(),
                })
            }
        };
        Ok(g)
    }
}

/// The matrix unit Eᵢⱼ of size n.
fn unit(n: usize, i: usize, j: usize) -> DMatrix<f64> {
    let mut m = DMatrix::zeros(n, n);
    m[(i, j)] = 1.0;
    m
}

/// Eᵢⱼ − Eⱼᵢ for i < j: a basis of so(n).
fn rotations(n: usize) -> Vec<DMatrix<f64>> {
    pseudo_rotations(&vec![1.0; n])
}

/// A basis of so(p,q) = {A : Aᵀη + ηA = 0} with η = diag(metric):
/// Eᵢⱼ − ηᵢηⱼEⱼᵢ, a rotation where the signs agree and a boost where they differ.
fn pseudo_rotations(metric: &[f64]) -> Vec<DMatrix<f64>> {
    let n = metric.len();
    let mut out = Vec::new();
    for i in 0..n {
        for j in (i + 1)..n {
            out.push(unit(n, i, j) - unit(n, j, i) * (metric[i] * metric[j]));
        }
    }
    out
}

/// diag(1,…,1,−1,…,−1) with p plus signs and q minus signs.
fn metric(p: usize, q: usize) -> Vec<f64> {
    let mut m = vec![1.0; p];
    m.extend(std::iter::repeat(-1.0).take(q));
    m
}

/// The reflection that flips coordinate `axis`.
fn reflection(n: usize, axis: usize) -> DMatrix<f64> {
    let mut m = DMatrix::identity(n, n);
    m[(axis, axis)] = -1.0;
    m
}

/// The permutation matrix sending eᵢ to e_{image[i]}.
fn permutation(image: &[usize]) -> DMatrix<f64> {
    let n = image.len();
    let mut m = DMatrix::zeros(n, n);
    for (i, &j) in image.iter().enumerate() {
        m[(j, i)] = 1.0;
    }
    m
}

fn embed_top_left(a: &DMatrix<f64>, n: usize) -> DMatrix<f64> {
    let mut m = DMatrix::zeros(n, n);
    m.view_mut((0, 0), (a.nrows(), a.ncols())).copy_from(a);
    m
}

/// A basis of sp(2m) = {[[A, B], [C, −Aᵀ]] : B, C symmetric}.
fn symplectic(m: usize) -> Vec<DMatrix<f64>> {
    let n = 2 * m;
    let mut out = Vec::new();
    for i in 0..m {
        for j in 0..m {
            out.push(unit(n, i, j) - unit(n, m + j, m + i));
        }
    }
    for i in 0..m {
        for j in i..m {
            let sym = |r: usize, c: usize| {
                if i == j {
                    unit(n, r + i, c + j)
                } else {
                    unit(n, r + i, c + j) + unit(n, r + j, c + i)
                }
            };
            out.push(sym(0, m));
            out.push(sym(m, 0));
        }
    }
    out
}
