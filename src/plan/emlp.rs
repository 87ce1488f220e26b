//! Hidden representations of an equivariant MLP.

use crate::group::Rep;

/// The hidden representation of `channels` dimensions, allocated uniformly across
/// tensor ranks, for a group acting on `V = Rⁿ`.
///
/// This is EMLP's `uniform_rep`: repeatedly take the largest rank `r` with
/// `(r+1)·nʳ ≤ c` still available and add `n^(r−k)` copies of each rank `k ≤ r`,
/// so that every rank receives `nʳ` dimensions, until the channels are spent.
/// Each rank's copies of `V^r` are then split over `V^k ⊗ V*^(r−k)`:
/// for groups that act orthogonally `V* ≅ V`, so all copies are `V^r`;
/// otherwise the copies follow the binomial distribution over `k`, as in EMLP's
/// `binomial_allocation`, with the remainder (which EMLP draws at random) given
/// deterministically, one copy each to the most central `k` first.
///
/// The result is a sum of `(count, term)` pairs in increasing rank.
///
/// ```
/// use symc::group::Rep;
/// use symc::plan::uniform_rep;
/// // O(5), 384 channels: 134 scalars, 25 vectors, 5 matrices: 134 + 125 + 125 = 384.
/// let rep = uniform_rep(384, 5, true);
/// assert_eq!(rep.size(5), 384);
/// assert_eq!(rep.to_string(), "134*scalar+25*V+5*V^2");
/// ```
pub fn uniform_rep(channels: usize, n: usize, orthogonal: bool) -> Rep {
    let mut counts: Vec<usize> = Vec::new();
    let mut left = channels;
    while left > 0 {
        let rank = max_rank(left, n);
        if counts.len() <= rank {
            counts.resize(rank + 1, 0);
        }
        for (r, count) in counts.iter_mut().enumerate().take(rank + 1) {
            *count += n.pow((rank - r) as u32);
        }
        left -= (rank + 1) * n.pow(rank as u32);
    }
    let mut terms = Vec::new();
    for (rank, &count) in counts.iter().enumerate() {
        if orthogonal || rank == 0 {
            push(&mut terms, count, tensor(rank, 0));
        } else {
            for (k, c) in binomial_split(count, rank) {
                push(&mut terms, c, tensor(k, rank - k));
            }
        }
    }
    match terms.len() {
        1 => terms.remove(0),
        _ => Rep::Sum(terms),
    }
}

/// The largest rank `r` with `(r+1)·nʳ ≤ c` (0 when even rank 1 does not fit).
fn max_rank(c: usize, n: usize) -> usize {
    let mut r = 0usize;
    while let Some(cost) = n
        .checked_pow(r as u32 + 1)
        .and_then(|p| p.checked_mul(r + 2))
    {
        if cost > c || n < 2 {
            break;
        }
        r += 1;
    }
    r
}

/// Splits `count` tensors of rank `r` over `k = 0..=r` covariant factors in
/// proportion to `binom(r, k)`.
fn binomial_split(count: usize, r: usize) -> Vec<(usize, usize)> {
    let binom: Vec<usize> = (0..=r).map(|k| binomial(r, k)).collect();
    let whole = count >> r;
    let mut split: Vec<usize> = binom.iter().map(|b| whole * b).collect();
    let mut order: Vec<usize> = (0..=r).collect();
    // Most central first; ties (k and r−k) by smaller k.
    order.sort_by_key(|&k| ((2 * k).abs_diff(r), k));
    for &k in order.iter().cycle().take(count - (whole << r)) {
        split[k] += 1;
    }
    split
        .into_iter()
        .enumerate()
        .filter(|&(_, c)| c > 0)
        .collect()
}

fn binomial(n: usize, k: usize) -> usize {
    (0..k).fold(1, |acc, i| acc * (n - i) / (i + 1))
}

/// `V^k ⊗ V*^l`, written with as little structure as possible.
fn tensor(k: usize, l: usize) -> Rep {
    let power = |r: Rep, p: usize| match p {
        0 => None,
        1 => Some(r),
        _ => Some(r.pow(p as u32)),
    };
    let factors: Vec<Rep> = [power(Rep::V, k), power(Rep::V.dual(), l)]
        .into_iter()
        .flatten()
        .collect();
    match factors.len() {
        0 => Rep::Scalar,
        1 => factors.into_iter().next().unwrap_or(Rep::Scalar),
        _ => Rep::Tensor(factors),
    }
}

fn push(terms: &mut Vec<Rep>, count: usize, rep: Rep) {
    match count {
        0 => {}
        1 => terms.push(rep),
        _ => terms.push(rep.times(count)),
    }
}

/// The number of gate scalars a gated nonlinearity needs after `rep`: one per
/// non-scalar summand, counting multiplicities.
pub fn gate_count(rep: &Rep) -> usize {
    match rep {
        Rep::Sum(terms) => terms.iter().map(gate_count).sum(),
        Rep::Mul(k, r) => k * gate_count(r),
        r => usize::from(!is_scalar(r)),
    }
}

fn is_scalar(rep: &Rep) -> bool {
    match rep {
        Rep::Scalar => true,
        Rep::Mul(_, r) | Rep::Pow(r, _) | Rep::Dual(r) => is_scalar(r),
        Rep::Sum(rs) | Rep::Tensor(rs) => rs.iter().all(is_scalar),
        Rep::V => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rank_gets_about_equal_dimension() {
        // O(3), 384: ranks 0..3 get 102, 102, 99, 81 dimensions.
        let rep = uniform_rep(384, 3, true);
        assert_eq!(rep.to_string(), "102*scalar+34*V+11*V^2+3*V^3");
        assert_eq!(rep.size(3), 384);
        for c in [1, 7, 64, 100, 256, 384, 1000] {
            for n in [2, 3, 4, 5] {
                assert_eq!(uniform_rep(c, n, true).size(n), c, "c = {c}, n = {n}");
                assert_eq!(uniform_rep(c, n, false).size(n), c, "c = {c}, n = {n}");
            }
        }
    }

    #[test]
    fn non_orthogonal_groups_split_ranks_binomially() {
        // Lorentz, 4·4 copies of rank 2 would split 4:8:4 over V*^2, V⊗V*, V^2.
        assert_eq!(binomial_split(16, 2), vec![(0, 4), (1, 8), (2, 4)]);
        // Remainders go to the middle first: 5 = 4 + 1 → the extra copy is V⊗V*.
        assert_eq!(binomial_split(5, 2), vec![(0, 1), (1, 3), (2, 1)]);
        assert_eq!(tensor(1, 1).to_string(), "V*V*");
    }

    #[test]
    fn gates_count_non_scalar_copies() {
        let rep = uniform_rep(384, 3, true);
        assert_eq!(gate_count(&rep), 34 + 11 + 3);
        assert_eq!(gate_count(&Rep::Scalar.times(7)), 0);
    }
}
