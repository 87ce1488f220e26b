//! Canonical forms of representations: a representation is, up to a
//! permutation of its coordinates, a direct sum of tensor products of `V` and
//! `V*`. Equal canonical forms share one basis solve.

use super::rep::Rep;
use std::collections::BTreeMap;

/// One tensor factor of a canonical term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Atom {
    V,
    Dual,
}

/// A tensor product of atoms; the empty product is `scalar`.
///
/// Ordered by degree first, so sums print as `scalar+V+V*+V^2+…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Term(pub(crate) Vec<Atom>);

impl Ord for Term {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.len(), &self.0).cmp(&(other.0.len(), &other.0))
    }
}

impl PartialOrd for Term {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Term {
    /// The term as a `Rep`: runs of equal atoms become powers.
    pub(crate) fn to_rep(&self) -> Rep {
        let mut factors = Vec::new();
        let mut atoms = self.0.iter().peekable();
        while let Some(&atom) = atoms.next() {
            let mut run = 1;
            while atoms.next_if(|&&next| next == atom).is_some() {
                run += 1;
            }
            let base = match atom {
                Atom::V => Rep::V,
                Atom::Dual => Rep::V.dual(),
            };
            factors.push(if run == 1 { base } else { base.pow(run) });
        }
        match factors.len() {
            0 => Rep::Scalar,
            1 => factors.remove(0),
            _ => Rep::Tensor(factors),
        }
    }

    pub(crate) fn size(&self, n: usize) -> usize {
        n.saturating_pow(self.0.len() as u32)
    }
}

/// Every term of `rep` with the positions its coordinates occupy in `rep`'s
/// flat vector, in the term's own order.
fn terms(rep: &Rep, n: usize, dual: bool) -> Vec<(Term, Vec<usize>)> {
    match rep {
        Rep::Scalar => vec![(Term(vec![]), vec![0])],
        Rep::V => {
            let atom = if dual { Atom::Dual } else { Atom::V };
            vec![(Term(vec![atom]), (0..n).collect())]
        }
        Rep::Dual(r) => terms(r, n, !dual),
        Rep::Sum(rs) => concat(rs.iter().map(|r| (terms(r, n, dual), r.size(n)))),
        Rep::Mul(k, r) => {
            let once = terms(r, n, dual);
            concat((0..*k).map(|_| (once.clone(), r.size(n))))
        }
        Rep::Tensor(rs) => rs.iter().fold(terms(&Rep::Scalar, n, dual), |acc, r| {
            tensor(acc, terms(r, n, dual), r.size(n))
        }),
        Rep::Pow(r, k) => {
            let base = terms(r, n, dual);
            (0..*k).fold(terms(&Rep::Scalar, n, dual), |acc, _| {
                tensor(acc, base.clone(), r.size(n))
            })
        }
    }
}

/// How many times each term occurs in `rep`, without positions, so that
/// canonical forms of huge representations stay cheap.
fn term_counts(rep: &Rep, dual: bool) -> BTreeMap<Term, usize> {
    let scalar = || BTreeMap::from([(Term(vec![]), 1)]);
    let tensor = |a: &BTreeMap<Term, usize>, b: &BTreeMap<Term, usize>| {
        let mut out = BTreeMap::new();
        for (ta, ka) in a {
            for (tb, kb) in b {
                let mut atoms = ta.0.clone();
                atoms.extend(&tb.0);
                let k: &mut usize = out.entry(Term(atoms)).or_default();
                *k = k.saturating_add(ka.saturating_mul(*kb));
            }
        }
        out
    };
    match rep {
        Rep::Scalar => scalar(),
        Rep::V => BTreeMap::from([(Term(vec![if dual { Atom::Dual } else { Atom::V }]), 1)]),
        Rep::Dual(r) => term_counts(r, !dual),
        Rep::Sum(rs) => {
            let mut out = BTreeMap::new();
            for r in rs {
                for (t, k) in term_counts(r, dual) {
                    let total: &mut usize = out.entry(t).or_default();
                    *total = total.saturating_add(k);
                }
            }
            out
        }
        Rep::Mul(k, r) => term_counts(r, dual)
            .into_iter()
            .map(|(t, c)| (t, c.saturating_mul(*k)))
            .collect(),
        Rep::Tensor(rs) => rs
            .iter()
            .fold(scalar(), |acc, r| tensor(&acc, &term_counts(r, dual))),
        Rep::Pow(r, k) => {
            let base = term_counts(r, dual);
            (0..*k).fold(scalar(), |acc, _| tensor(&acc, &base))
        }
    }
}

/// Terms of a direct sum: each part's positions shifted past the parts before it.
fn concat(
    parts: impl Iterator<Item = (Vec<(Term, Vec<usize>)>, usize)>,
) -> Vec<(Term, Vec<usize>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (part, size) in parts {
        out.extend(
            part.into_iter()
                .map(|(t, pos)| (t, pos.into_iter().map(|p| p + offset).collect())),
        );
        offset += size;
    }
    out
}

/// Terms of A ⊗ B from those of A and B (B of size `b_size`): a coordinate
/// (i, j) of A ⊗ B sits at i·|B| + j, as in a Kronecker product.
fn tensor(
    a: Vec<(Term, Vec<usize>)>,
    b: Vec<(Term, Vec<usize>)>,
    b_size: usize,
) -> Vec<(Term, Vec<usize>)> {
    let mut out = Vec::with_capacity(a.len() * b.len());
    for (ta, pa) in &a {
        for (tb, pb) in &b {
            let mut atoms = ta.0.clone();
            atoms.extend(&tb.0);
            let pos = pa
                .iter()
                .flat_map(|&i| pb.iter().map(move |&j| i * b_size + j))
                .collect();
            out.push((Term(atoms), pos));
        }
    }
    out
}

/// All copies of one term in a canonical layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Summand {
    /// The base representation: a tensor product of `V` and `V*`, or `scalar`.
    pub rep: Rep,
    /// How many copies.
    pub multiplicity: usize,
    /// Where the first copy starts in the canonical vector.
    pub offset: usize,
    /// The dimension of one copy.
    pub size: usize,
    pub(crate) term: Term,
}

/// A representation's canonical layout: its summands in canonical order and
/// the permutation from the canonical vector to the original one.
///
/// In the canonical vector a summand's copies are stored one after another
/// (multiplicity-major): coordinate `i` of copy `c` sits at
/// `offset + c·size + i`. `perm[k]` is the position in the original flat
/// vector of canonical coordinate `k`, so `x_canonical[k] = x[perm[k]]`.
///
/// ```
/// use symc::group::Rep;
/// // V + scalar + V over a 3-dimensional V: canonical form scalar + 2*V.
/// let rep = Rep::Sum(vec![Rep::V, Rep::Scalar, Rep::V]);
/// let layout = rep.layout(3);
/// assert_eq!(layout.summands.len(), 2);
/// assert_eq!(layout.summands[1].multiplicity, 2);
/// assert_eq!(layout.summands[1].offset, 1);
/// assert_eq!(layout.perm, vec![3, 0, 1, 2, 4, 5, 6]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub summands: Vec<Summand>,
    pub perm: Vec<usize>,
}

impl Layout {
    /// Whether the canonical vector is the original one (`perm` is the identity).
    pub fn is_identity(&self) -> bool {
        self.perm.iter().enumerate().all(|(k, &p)| k == p)
    }
}

impl Rep {
    /// The canonical layout of this representation when `V` has dimension `n`.
    pub fn layout(&self, n: usize) -> Layout {
        let mut grouped: BTreeMap<Term, Vec<Vec<usize>>> = BTreeMap::new();
        for (term, pos) in terms(self, n, false) {
            grouped.entry(term).or_default().push(pos);
        }
        let mut summands = Vec::with_capacity(grouped.len());
        let mut perm = Vec::with_capacity(self.size(n));
        for (term, copies) in grouped {
            summands.push(Summand {
                rep: term.to_rep(),
                multiplicity: copies.len(),
                offset: perm.len(),
                size: term.size(n),
                term,
            });
            perm.extend(copies.into_iter().flatten());
        }
        Layout { summands, perm }
    }

    /// The canonical form: a sorted sum of multiples of tensor products of `V`
    /// and `V*`, with equal terms merged. Equivalent representations written
    /// differently (`V+V` and `2*V`, `(V*V)*` and `V*^2`) get equal forms.
    ///
    /// ```
    /// use symc::group::Rep;
    /// let a = Rep::Sum(vec![Rep::V, Rep::Scalar, Rep::V]);
    /// assert_eq!(a.canonical().to_string(), "scalar+2*V");
    /// let b = Rep::Tensor(vec![Rep::V, Rep::V]).dual();
    /// assert_eq!(b.canonical().to_string(), "(V*)^2");
    /// ```
    pub fn canonical(&self) -> Rep {
        let mut parts: Vec<Rep> = term_counts(self, false)
            .into_iter()
            .filter(|(_, k)| *k > 0)
            .map(|(term, k)| match k {
                1 => term.to_rep(),
                k => term.to_rep().times(k),
            })
            .collect();
        match parts.len() {
            1 => parts.remove(0),
            _ => Rep::Sum(parts),
        }
    }
}
