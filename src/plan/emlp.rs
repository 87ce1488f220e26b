//! Hidden representations of an equivariant MLP and the wiring of its bilinear layers.

use crate::group::{BasisSolver, GroupError, Layout, Rep};
use nalgebra::DMatrix;

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

/// Most bilinear channels a summand's copies are mixed down to before products are formed.
pub const BILINEAR_CHANNELS: usize = 8;

/// The products of one pair of summands that land in one output summand.
#[derive(Debug, Clone)]
pub struct BilinearTerm {
    /// Summand indices into [`BilinearPlan::layout`]; `left ≤ right`.
    pub left: usize,
    pub right: usize,
    pub output: usize,
    /// Orthonormal equivariant maps `T_left ⊗ T_right → T_output`, each
    /// `size_output × (size_left · size_right)`, columns indexed `i·size_right + j`.
    pub basis: Vec<DMatrix<f64>>,
    /// Channel pairs (i, j) multiplied: all of them, or i ≤ j when `left == right`.
    pub pairs: usize,
}

/// The wiring of an equivariant bilinear layer `h ↦ h + B(h, h)` on `rep`.
///
/// Each summand's mₛ copies are first mixed down to `channels[s] = min(mₛ, cap)`
/// bilinear channels; every product of a channel of summand l with one of
/// summand r is mapped into summand o by each equivariant basis map, and the
/// results are mixed into o's copies. Only triples whose invariant tensor
/// `T_o ⊗ T_l* ⊗ T_r*` has at most n⁴ entries (total tensor order ≤ 4) are
/// kept: on the hidden reps `V⁰..V²` this keeps every product that yields an
/// invariant, and every rank-≤2 output of two factors of total rank ≤ 2 or
/// of a vector with a matrix, while `V² ⊗ V² → V²` (n⁶ entries) is left out.
#[derive(Debug, Clone)]
pub struct BilinearPlan {
    pub layout: Layout,
    /// Bilinear channels per summand, 0 for summands no term reads.
    pub channels: Vec<usize>,
    pub terms: Vec<BilinearTerm>,
}

impl BilinearPlan {
    /// Solves the wiring of the bilinear layer on `rep` with at most `cap` channels per summand.
    ///
    /// ```
    /// use symc::group::{BasisSolver, Group, Rep};
    /// use symc::plan::BilinearPlan;
    /// let o5 = Group::builtin("O", &[5]).unwrap();
    /// let mut solver = BasisSolver::new(&o5);
    /// // 2V: x·y products give the invariants that a linear layer cannot.
    /// let plan = BilinearPlan::new(&mut solver, &Rep::Sum(vec![Rep::Scalar, Rep::V.times(2)]), 8).unwrap();
    /// assert!(plan.terms.iter().any(|t| (t.left, t.right, t.output) == (1, 1, 0)));
    /// assert_eq!(plan.parameters(), plan.channels.iter().zip(&plan.layout.summands).map(|(k, s)| k * s.multiplicity).sum::<usize>()
    ///     + plan.terms.iter().map(|t| plan.layout.summands[t.output].multiplicity * t.basis.len() * t.pairs).sum::<usize>());
    /// ```
    pub fn new(
        solver: &mut BasisSolver,
        rep: &Rep,
        cap: usize,
    ) -> Result<BilinearPlan, GroupError> {
        let n = solver.group().n();
        let layout = rep.layout(n);
        let summands = &layout.summands;
        let mut channels = vec![0; summands.len()];
        let mut terms = Vec::new();
        for left in 0..summands.len() {
            for right in left..summands.len() {
                let (sl, sr) = (&summands[left], &summands[right]);
                let product = Rep::Tensor(vec![sl.rep.clone(), sr.rep.clone()]);
                for (output, so) in summands.iter().enumerate() {
                    if sl.size * sr.size * so.size > n.pow(4) {
                        continue;
                    }
                    let basis = solver.blocks(&product, &so.rep)?.to_basis();
                    if basis.is_empty() {
                        continue;
                    }
                    let (kl, kr) = (sl.multiplicity.min(cap), sr.multiplicity.min(cap));
                    channels[left] = kl;
                    channels[right] = kr;
                    terms.push(BilinearTerm {
                        left,
                        right,
                        output,
                        basis: basis.matrices().to_vec(),
                        pairs: if left == right {
                            kl * (kl + 1) / 2
                        } else {
                            kl * kr
                        },
                    });
                }
            }
        }
        Ok(BilinearPlan {
            layout,
            channels,
            terms,
        })
    }

    /// Trainable parameters: the channel mixings in and out of the products.
    pub fn parameters(&self) -> usize {
        let summands = &self.layout.summands;
        let mixing: usize = (self.channels.iter().zip(summands))
            .map(|(k, s)| k * s.multiplicity)
            .sum();
        let products: usize = (self.terms.iter())
            .map(|t| summands[t.output].multiplicity * t.basis.len() * t.pairs)
            .sum();
        mixing + products
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

    #[test]
    fn bilinear_terms_follow_the_order_rule() {
        // O(5) on scalar + V + V²: V²⊗V² → V² (5⁶ entries) is left out, V²⊗V² → scalar kept.
        let group = crate::group::Group::builtin("O", &[5]).unwrap();
        let mut solver = BasisSolver::new(&group);
        let rep = Rep::Sum(vec![Rep::Scalar.times(9), Rep::V.times(3), Rep::V.pow(2)]);
        let plan = BilinearPlan::new(&mut solver, &rep, 8).unwrap();
        let has = |l, r, o| {
            plan.terms
                .iter()
                .any(|t| (t.left, t.right, t.output) == (l, r, o))
        };
        assert!(has(2, 2, 0) && has(1, 1, 0) && has(1, 2, 1) && has(1, 1, 2));
        assert!(!has(2, 2, 2), "V²⊗V² → V² exceeds the order bound");
        // V⊗V → V has no O(5)-equivariant map (−1 ∈ O(5) flips its sign).
        assert!(!has(1, 1, 1));
        assert_eq!(plan.channels, vec![8, 3, 1]);
        let t = plan
            .terms
            .iter()
            .find(|t| (t.left, t.right, t.output) == (0, 0, 0))
            .unwrap();
        assert_eq!(t.pairs, 36);
    }
}
