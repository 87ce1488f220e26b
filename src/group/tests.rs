//! Dimensions of equivariant bases against closed forms from invariant
//! theory, and every basis element checked for equivariance numerically.

use super::{equivariant_basis, Group, Rep};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn tensor(k: u32) -> Rep {
    Rep::V.pow(k)
}

/// Stirling numbers of the second kind S(m, j), j = 0..=m.
fn stirling2(m: usize) -> Vec<u64> {
    let mut row = vec![1u64];
    for i in 1..=m {
        let mut next = vec![0u64; i + 1];
        for j in 1..=i {
            let stay = if j < row.len() { j as u64 * row[j] } else { 0 };
            next[j] = stay + row[j - 1];
        }
        row = next;
    }
    row
}

/// Sₙ-invariants of V^{⊗m}: set partitions of m points into at most n blocks.
fn sym_invariants(n: usize, m: usize) -> u64 {
    stirling2(m).iter().take(n + 1).sum()
}

/// O(n)-invariants of V^{⊗m} for n ≥ m/2: perfect matchings, (m−1)!! for even m.
fn matchings(m: usize) -> u64 {
    if m % 2 == 1 {
        return 0;
    }
    (1..m).step_by(2).map(|k| k as u64).product()
}

/// Multiplicity of the trivial irrep in (spin j)^{⊗m} for SU(2)/SO(3), by
/// coupling one factor at a time (Clebsch–Gordan: L ⊗ j = |L−j| ⊕ … ⊕ L+j).
/// Spins are doubled so spin ½ is `1`.
fn spin_invariants(twice_j: usize, m: usize) -> u64 {
    let mut mult = vec![1u64];
    for _ in 0..m {
        let mut next = vec![0u64; mult.len() + twice_j];
        for (two_l, &c) in mult.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let lo = two_l.abs_diff(twice_j);
            for two_k in (lo..=two_l + twice_j).step_by(2) {
                next[two_k] += c;
            }
        }
        mult = next;
    }
    mult[0]
}

/// Invariants of a finite group of 2×2 matrices on V^{⊗m}: the average of
/// χ(g)^m over the group (rotations by 2πs/k, plus k reflections of trace 0
/// for the dihedral group).
fn planar_invariants(k: usize, dihedral: bool, m: usize) -> u64 {
    let rotations: f64 = (0..k)
        .map(|s| (2.0 * (2.0 * std::f64::consts::PI * s as f64 / k as f64).cos()).powi(m as i32))
        .sum();
    let reflections = if dihedral && m == 0 { k as f64 } else { 0.0 };
    let order = if dihedral { 2 * k } else { k } as f64;
    ((rotations + reflections) / order).round() as u64
}

fn binomial(n: usize, k: usize) -> u64 {
    (0..k).fold(1u64, |acc, i| acc * (n - i) as u64 / (i + 1) as u64)
}

/// Invariants of G × H on (V_G ⊕ V_H)^{⊗m}: choose which factors are G's.
fn product_invariants(g: impl Fn(usize) -> u64, h: impl Fn(usize) -> u64, m: usize) -> u64 {
    (0..=m).map(|j| binomial(m, j) * g(j) * h(m - j)).sum()
}

/// Relative equivariance error of every basis map for a few sampled elements.
fn max_equivariance_error(group: &Group, rep_in: &Rep, rep_out: &Rep, basis: &super::Basis) -> f64 {
    let mut rng = StdRng::seed_from_u64(7);
    let mut worst: f64 = 0.0;
    for _ in 0..3 {
        let g = group.sample(&mut rng);
        let (r_in, r_out) = (rep_in.rho(&g), rep_out.rho(&g));
        for w in basis.matrices() {
            let err = (&r_out * w - w * &r_in).norm() / w.norm();
            worst = worst.max(err);
        }
    }
    worst
}

fn check(group: &Group, rep_in: &Rep, rep_out: &Rep, expected: u64) {
    let basis = equivariant_basis(group, rep_in, rep_out).unwrap();
    assert_eq!(
        basis.len() as u64,
        expected,
        "{}: {rep_in} -> {rep_out}",
        group.name()
    );
    let tol = if group.is_compact() { 1e-6 } else { 1e-4 };
    let err = max_equivariance_error(group, rep_in, rep_out, &basis);
    assert!(
        err <= tol,
        "{}: {rep_in} -> {rep_out}: error {err:e}",
        group.name()
    );
    let dense = basis.to_dense();
    let gram = dense.tr_mul(&dense);
    let eye = nalgebra::DMatrix::identity(basis.len(), basis.len());
    assert!((gram - eye).amax() < 1e-8, "basis is not orthonormal");
}

fn builtin(name: &str, params: &[i64]) -> Group {
    Group::builtin(name, params).unwrap()
}

#[test]
fn permutation_groups_count_set_partitions() {
    for (n, k, l) in [
        (4, 1, 1),
        (5, 2, 2),
        (3, 2, 2),
        (5, 0, 2),
        (4, 2, 1),
        (2, 2, 2),
        (6, 3, 0),
        (3, 3, 1),
    ] {
        let g = builtin("S", &[n as i64]);
        check(
            &g,
            &tensor(k),
            &tensor(l),
            sym_invariants(n, (k + l) as usize),
        );
    }
}

#[test]
fn orthogonal_groups_count_matchings() {
    for (n, k, l) in [
        (3, 1, 1),
        (3, 2, 2),
        (4, 2, 2),
        (3, 3, 0),
        (4, 3, 1),
        (5, 1, 1),
        (3, 3, 1),
        (5, 2, 0),
    ] {
        let g = builtin("O", &[n as i64]);
        check(&g, &tensor(k), &tensor(l), matchings((k + l) as usize));
    }
    // Two copies of V map to scalars only through odd tensors: none.
    check(&builtin("O", &[5]), &Rep::V.times(2), &Rep::Scalar, 0);
}

#[test]
fn rotation_groups_add_levi_civita_terms() {
    let so3 = builtin("SO", &[3]);
    for (k, l) in [(1, 1), (2, 2), (3, 0), (2, 1), (2, 0), (1, 0)] {
        check(
            &so3,
            &tensor(k),
            &tensor(l),
            spin_invariants(2, (k + l) as usize),
        );
    }
    // SO(4) = SU(2)×SU(2)/Z₂ with V = (½, ½).
    let so4 = builtin("SO", &[4]);
    check(&so4, &tensor(2), &tensor(2), spin_invariants(1, 4).pow(2));
    // SO(2) on C² = e^{iθ} ⊕ e^{−iθ}: sign sequences summing to zero.
    let so2 = builtin("SO", &[2]);
    for (k, l) in [(1, 1), (2, 1), (2, 2)] {
        let m = (k + l) as usize;
        let expected = if m % 2 == 0 { binomial(m, m / 2) } else { 0 };
        check(&so2, &tensor(k), &tensor(l), expected);
    }
}

#[test]
fn pseudo_orthogonal_and_symplectic_groups() {
    // O(1,3) and SO(1,3)⁺ complexify to O(4) and SO(4).
    let lorentz = builtin("Lorentz", &[]);
    check(&lorentz, &Rep::V, &Rep::V, matchings(2));
    check(&lorentz, &tensor(2), &Rep::Scalar, matchings(2));
    check(&lorentz, &tensor(2), &tensor(2), matchings(4));
    let proper = builtin("SO", &[1, 3]);
    check(
        &proper,
        &tensor(2),
        &tensor(2),
        spin_invariants(1, 4).pow(2),
    );
    // Sp(1) = SL(2), V = spin ½; Sp(2) has its matchings up to four points.
    let sp1 = builtin("Sp", &[1]);
    check(&sp1, &tensor(2), &tensor(2), spin_invariants(1, 4));
    let sp2 = builtin("Sp", &[2]);
    check(&sp2, &Rep::V, &Rep::V, matchings(2));
    check(&sp2, &tensor(2), &tensor(2), matchings(4));
}

#[test]
fn general_and_special_linear_groups() {
    let factorial = |k: u64| (1..=k).product::<u64>();
    let gl3 = builtin("GL", &[3]);
    for k in 1..=2 {
        check(&gl3, &tensor(k), &tensor(k), factorial(k as u64));
    }
    let gl2 = builtin("GL", &[2]);
    check(&gl2, &Rep::V, &Rep::V.dual(), 0);
    // SL(2) preserves the area form, SL(3) the determinant.
    check(&builtin("SL", &[2]), &Rep::V, &Rep::V.dual(), 1);
    check(&builtin("SL", &[3]), &tensor(3), &Rep::Scalar, 1);
    let scaling = builtin("Scaling", &[2]);
    check(&scaling, &Rep::V, &Rep::V, 4);
    check(&scaling, &Rep::V, &tensor(2), 0);
}

#[test]
fn cyclic_dihedral_and_trivial_groups() {
    // Z(n) permutes index tuples freely: nᵐ/n orbits.
    check(&builtin("Z", &[4]), &Rep::V, &Rep::V, 4);
    check(&builtin("Z", &[3]), &tensor(2), &Rep::V, 9);
    for (k, dihedral, m_in, m_out) in [
        (3, false, 1, 1),
        (4, false, 2, 1),
        (4, true, 2, 2),
        (6, true, 2, 1),
        (5, true, 2, 2),
    ] {
        let g = builtin(if dihedral { "D" } else { "C" }, &[k as i64]);
        check(
            &g,
            &tensor(m_in),
            &tensor(m_out),
            planar_invariants(k, dihedral, (m_in + m_out) as usize),
        );
    }
    // The trivial group: every map, n^(k+l) of them.
    check(&builtin("Trivial", &[2]), &Rep::V, &Rep::V, 4);
    check(&builtin("Trivial", &[2]), &tensor(2), &tensor(1), 8);
}

#[test]
fn products_combine_invariants_factor_by_factor() {
    let so2_s3 = Group::product(&builtin("SO", &[2]), &builtin("S", &[3]));
    let so2 = |m: usize| if m % 2 == 0 { binomial(m, m / 2) } else { 0 };
    let s3 = |m: usize| sym_invariants(3, m);
    check(&so2_s3, &Rep::V, &Rep::V, product_invariants(so2, s3, 2));
    let o3_s2 = Group::product(&builtin("O", &[3]), &builtin("S", &[2]));
    check(
        &o3_s2,
        &tensor(2),
        &Rep::Scalar,
        product_invariants(matchings, |m| sym_invariants(2, m), 2),
    );
    check(
        &o3_s2,
        &tensor(2),
        &Rep::V,
        product_invariants(matchings, |m| sym_invariants(2, m), 3),
    );
}

#[test]
fn sums_are_solved_block_by_block() {
    let so3 = builtin("SO", &[3]);
    let t2_v = Rep::Sum(vec![tensor(2), Rep::V]);
    // (T2+V)→(T2+V): T2→T2, T2→V, V→T2, V→V.
    let expected = spin_invariants(2, 4) + 2 * spin_invariants(2, 3) + spin_invariants(2, 2);
    check(&so3, &t2_v, &t2_v, expected);
    // A layout that canonicalisation reorders: V + scalar + V.
    let mixed = Rep::Sum(vec![Rep::V, Rep::Scalar, Rep::V]);
    check(&so3, &mixed, &mixed, 4 + 1);
}

#[test]
fn affine_groups_fix_the_homogeneous_coordinate() {
    // On (x, 1): translations force W = [[d·I, b], [0, d]]; rotations then
    // force b = 0. Invariant covectors are multiples of the last coordinate;
    // invariant vectors are the directions translations do not move, if no
    // rotation moves them either.
    for n in [2, 3] {
        let se = builtin("SE", &[n]);
        check(&se, &Rep::V, &Rep::V, 1);
        check(&se, &Rep::V, &Rep::Scalar, 1);
        check(&se, &Rep::Scalar, &Rep::V, 0);
        let t = builtin("T", &[n]);
        check(&t, &Rep::V, &Rep::V, 1 + n as u64);
        check(&t, &Rep::Scalar, &Rep::V, n as u64);
    }
}

/// The structured solvers on mid-size problems: Casimir blocks (SO(3) on
/// V^{⊗8}, 6561 unknowns), Casimir blocks then a reflection (O(3) on V^{⊗6}),
/// and orbits (S(5) on V^{⊗4}).
#[test]
fn structured_solvers_on_mid_size_problems() {
    check(
        &builtin("SO", &[3]),
        &tensor(4),
        &tensor(4),
        spin_invariants(2, 8),
    );
    check(&builtin("O", &[3]), &tensor(3), &tensor(3), matchings(6));
    check(
        &builtin("S", &[5]),
        &tensor(2),
        &tensor(2),
        sym_invariants(5, 4),
    );
    check(&builtin("Lorentz", &[]), &tensor(2), &tensor(1), 0);
}

#[test]
fn absurd_sizes_are_errors_not_crashes() {
    let so3 = builtin("SO", &[3]);
    let err = equivariant_basis(&so3, &tensor(30), &Rep::Scalar).unwrap_err();
    assert!(matches!(err, super::GroupError::RepTooLarge { .. }));
    // Each representation is fine, the map between them is not.
    let err = equivariant_basis(&so3, &tensor(14), &tensor(2)).unwrap_err();
    assert!(matches!(err, super::GroupError::TooLarge { .. }));
    assert_eq!(Rep::V.times(1 << 40).canonical(), Rep::V.times(1 << 40));
    // No structure to use: a dense solve over the limit is refused up front.
    let c3 = builtin("C", &[3]);
    let err = equivariant_basis(&c3, &tensor(7), &tensor(6)).unwrap_err();
    assert_eq!(
        err,
        super::GroupError::TooLarge {
            unknowns: 1 << 13,
            limit: 1 << 12
        }
    );
}
