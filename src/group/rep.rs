//! Representations as values: an algebra of `scalar`, `V`, duals, sums, multiples,
//! tensor products and powers over a group's defining representation `V`.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A representation of a matrix group, built from the defining representation `V`.
///
/// `Display` prints the spec language's own syntax (`5*scalar+5*V`, `V^2`, `V*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rep {
    /// The trivial one-dimensional representation.
    Scalar,
    /// The defining representation: g acts as its own matrix.
    V,
    /// The dual: ρ*(g) = ρ(g)⁻ᵀ, dρ*(A) = −dρ(A)ᵀ.
    Dual(Box<Rep>),
    /// Direct sum.
    Sum(Vec<Rep>),
    /// `k` copies of a representation (a direct sum of equal terms).
    Mul(usize, Box<Rep>),
    /// Tensor (Kronecker) product.
    Tensor(Vec<Rep>),
    /// Tensor power.
    Pow(Box<Rep>, u32),
}

/// Which action of a group a representation's matrices describe.
#[derive(Clone, Copy)]
enum Action {
    /// ρ(g): tensor products are Kronecker products.
    Group,
    /// dρ(A): tensor products are Kronecker sums.
    Algebra,
}

impl Rep {
    /// The dual representation `self*`.
    ///
    /// ```
    /// use symc::group::Rep;
    /// assert_eq!(Rep::V.dual().to_string(), "V*");
    /// ```
    pub fn dual(self) -> Rep {
        Rep::Dual(Box::new(self))
    }

    /// The tensor power `self^k`.
    ///
    /// ```
    /// use symc::group::Rep;
    /// assert_eq!(Rep::V.pow(2).size(3), 9);
    /// ```
    pub fn pow(self, k: u32) -> Rep {
        Rep::Pow(Box::new(self), k)
    }

    /// `k` copies of `self`.
    ///
    /// ```
    /// use symc::group::Rep;
    /// assert_eq!(Rep::V.times(5).to_string(), "5*V");
    /// ```
    pub fn times(self, k: usize) -> Rep {
        Rep::Mul(k, Box::new(self))
    }

    /// The dimension of the representation when `V` has dimension `n`
    /// (saturating at `usize::MAX` for absurd tensor powers).
    ///
    /// ```
    /// use symc::group::Rep;
    /// let r = Rep::Sum(vec![Rep::Scalar.times(5), Rep::V.times(5)]);
    /// assert_eq!(r.size(3), 20);
    /// ```
    pub fn size(&self, n: usize) -> usize {
        match self {
            Rep::Scalar => 1,
            Rep::V => n,
            Rep::Dual(r) => r.size(n),
            Rep::Sum(rs) => rs
                .iter()
                .fold(0usize, |acc, r| acc.saturating_add(r.size(n))),
            Rep::Mul(k, r) => k.saturating_mul(r.size(n)),
            Rep::Tensor(rs) => rs
                .iter()
                .fold(1usize, |acc, r| acc.saturating_mul(r.size(n))),
            Rep::Pow(r, k) => r.size(n).saturating_pow(*k),
        }
    }

    /// The group action ρ(g), for `g` an element of the group acting on `V`.
    ///
    /// Duals act by ρ(g)⁻ᵀ and tensor products by Kronecker products, so a
    /// vector of `V*V` is laid out row-major (first factor's index outermost).
    /// `g` must be invertible when the representation contains a dual; a
    /// singular `g` then gives non-finite entries.
    ///
    /// ```
    /// use nalgebra::DMatrix;
    /// use symc::group::Rep;
    /// let g = DMatrix::from_row_slice(2, 2, &[2.0, 0.0, 0.0, 1.0]);
    /// let rho = Rep::V.dual().rho(&g);
    /// assert_eq!(rho[(0, 0)], 0.5);
    /// assert_eq!(Rep::V.pow(2).rho(&g)[(0, 0)], 4.0);
    /// ```
    pub fn rho(&self, g: &DMatrix<f64>) -> DMatrix<f64> {
        let n = g.nrows();
        let g_dual = g
            .clone()
            .try_inverse()
            .map(|inv| inv.transpose())
            .unwrap_or_else(|| DMatrix::from_element(n, n, f64::NAN));
        self.action(Action::Group, g, &g_dual)
    }

    /// The algebra action dρ(A), for `A` in the Lie algebra acting on `V`.
    ///
    /// Duals act by −dρ(A)ᵀ and tensor products by Kronecker sums
    /// dρ₁(A) ⊗ I + I ⊗ dρ₂(A), the derivative of [`Rep::rho`] at the identity.
    ///
    /// ```
    /// use nalgebra::DMatrix;
    /// use symc::group::Rep;
    /// let a = DMatrix::from_row_slice(2, 2, &[0.0, 1.0, 0.0, 0.0]);
    /// assert_eq!(Rep::V.dual().drho(&a)[(1, 0)], -1.0);
    /// assert_eq!(Rep::Scalar.drho(&a)[(0, 0)], 0.0);
    /// ```
    pub fn drho(&self, a: &DMatrix<f64>) -> DMatrix<f64> {
        self.action(Action::Algebra, a, &(-a.transpose()))
    }

    /// `m` is the matrix `V` acts by, `m_dual` the one `V*` acts by.
    fn action(&self, kind: Action, m: &DMatrix<f64>, m_dual: &DMatrix<f64>) -> DMatrix<f64> {
        let unit = || match kind {
            Action::Group => DMatrix::identity(1, 1),
            Action::Algebra => DMatrix::zeros(1, 1),
        };
        let tensor = |a: DMatrix<f64>, b: DMatrix<f64>| match kind {
            Action::Group => a.kronecker(&b),
            Action::Algebra => kronecker_sum(&a, &b),
        };
        match self {
            Rep::Scalar => unit(),
            Rep::V => m.clone(),
            Rep::Dual(r) => r.action(kind, m_dual, m),
            Rep::Sum(rs) => block_diagonal(rs.iter().map(|r| r.action(kind, m, m_dual)).collect()),
            Rep::Mul(k, r) => {
                let block = r.action(kind, m, m_dual);
                block_diagonal(vec![block; *k])
            }
            Rep::Tensor(rs) => rs
                .iter()
                .map(|r| r.action(kind, m, m_dual))
                .fold(unit(), tensor),
            Rep::Pow(r, k) => {
                let base = r.action(kind, m, m_dual);
                (0..*k).fold(unit(), |acc, _| tensor(acc, base.clone()))
            }
        }
    }
}

/// a ⊗ I + I ⊗ b: the algebra action on a tensor product.
pub(crate) fn kronecker_sum(a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    let ia = DMatrix::identity(a.nrows(), a.ncols());
    let ib = DMatrix::identity(b.nrows(), b.ncols());
    a.kronecker(&ib) + ia.kronecker(b)
}

fn block_diagonal(blocks: Vec<DMatrix<f64>>) -> DMatrix<f64> {
    let n = blocks.iter().map(DMatrix::nrows).sum();
    let mut out = DMatrix::zeros(n, n);
    let mut at = 0;
    for b in blocks {
        out.view_mut((at, at), b.shape()).copy_from(&b);
        at += b.nrows();
    }
    out
}

/// Binding strength in the spec syntax, loosest first.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Prec {
    Sum,
    Mul,
    Tensor,
    Pow,
    Atom,
}

impl Rep {
    fn prec(&self) -> Prec {
        match self {
            Rep::Sum(rs) if rs.len() == 1 => rs[0].prec(),
            Rep::Sum(_) => Prec::Sum,
            Rep::Mul(..) => Prec::Mul,
            Rep::Tensor(rs) if rs.len() == 1 => rs[0].prec(),
            Rep::Tensor(rs) if rs.is_empty() => Prec::Atom,
            Rep::Tensor(_) => Prec::Tensor,
            Rep::Pow(..) => Prec::Pow,
            Rep::Scalar | Rep::V | Rep::Dual(_) => Prec::Atom,
        }
    }

    /// Writes `self` where the context needs at least `min` binding strength.
    /// A dual is wrapped when something follows it (`(V*)*V`, `(V*)^2`), so its
    /// postfix `*` never touches another `*` or `^`.
    fn write_in(&self, f: &mut fmt::Formatter<'_>, min: Prec, followed: bool) -> fmt::Result {
        let wrap = self.prec() < min || (followed && matches!(self, Rep::Dual(_)));
        if wrap {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Rep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rep::Scalar => f.write_str("scalar"),
            Rep::V => f.write_str("V"),
            Rep::Dual(r) => {
                r.write_in(f, Prec::Atom, true)?;
                f.write_str("*")
            }
            Rep::Sum(rs) if rs.is_empty() => f.write_str("0*scalar"),
            Rep::Sum(rs) => {
                for (i, r) in rs.iter().enumerate() {
                    if i > 0 {
                        f.write_str("+")?;
                    }
                    r.write_in(f, Prec::Mul, false)?;
                }
                Ok(())
            }
            Rep::Mul(k, r) => {
                write!(f, "{k}*")?;
                r.write_in(f, Prec::Pow, false)
            }
            Rep::Tensor(rs) if rs.is_empty() => f.write_str("scalar"),
            Rep::Tensor(rs) => {
                for (i, r) in rs.iter().enumerate() {
                    if i > 0 {
                        f.write_str("*")?;
                    }
                    r.write_in(f, Prec::Pow, i + 1 < rs.len())?;
                }
                Ok(())
            }
            Rep::Pow(r, k) => {
                r.write_in(f, Prec::Atom, true)?;
                write!(f, "^{k}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::Group;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// A reader for the syntax `Display` writes, by the precedence it documents:
    /// sum < `k*` multiple < `*` tensor < `^` power < postfix `*` dual.
    struct Reader<'a>(&'a [u8]);

    impl Reader<'_> {
        fn peek(&self) -> Option<u8> {
            self.0.first().copied()
        }
        fn eat(&mut self, s: &str) -> bool {
            let hit = self.0.starts_with(s.as_bytes());
            if hit {
                self.0 = &self.0[s.len()..];
            }
            hit
        }
        fn int(&mut self) -> usize {
            let digits = self.0.iter().take_while(|c| c.is_ascii_digit()).count();
            let (num, rest) = self.0.split_at(digits);
            self.0 = rest;
            std::str::from_utf8(num).unwrap().parse().unwrap()
        }
        fn operand_follows(&self) -> bool {
            matches!(self.peek(), Some(b'V' | b's' | b'('))
        }
        fn sum(&mut self) -> Rep {
            let mut terms = vec![self.multiple()];
            while self.eat("+") {
                terms.push(self.multiple());
            }
            if terms.len() == 1 {
                terms.remove(0)
            } else {
                Rep::Sum(terms)
            }
        }
        fn multiple(&mut self) -> Rep {
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                let k = self.int();
                assert!(self.eat("*"));
                return self.power().times(k);
            }
            let mut factors = vec![self.power()];
            while self.operand_follows_star() {
                factors.push(self.power());
            }
            if factors.len() == 1 {
                factors.remove(0)
            } else {
                Rep::Tensor(factors)
            }
        }
        fn operand_follows_star(&mut self) -> bool {
            let save = self.0;
            if self.eat("*") && self.operand_follows() {
                return true;
            }
            self.0 = save;
            false
        }
        fn power(&mut self) -> Rep {
            let base = self.postfix();
            if self.eat("^") {
                base.pow(self.int() as u32)
            } else {
                base
            }
        }
        fn postfix(&mut self) -> Rep {
            let mut r = if self.eat("scalar") {
                Rep::Scalar
            } else if self.eat("V") {
                Rep::V
            } else {
                assert!(self.eat("("));
                let inner = self.sum();
                assert!(self.eat(")"));
                inner
            };
            loop {
                let save = self.0;
                if self.eat("*") && !self.operand_follows() {
                    r = r.dual();
                } else {
                    self.0 = save;
                    return r;
                }
            }
        }
    }

    fn read(text: &str) -> Rep {
        let mut reader = Reader(text.as_bytes());
        let rep = reader.sum();
        assert!(reader.0.is_empty(), "trailing text in {text}");
        rep
    }

    fn arb_rep() -> impl Strategy<Value = Rep> {
        let leaf = prop_oneof![Just(Rep::Scalar), Just(Rep::V)];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(Rep::dual),
                prop::collection::vec(inner.clone(), 0..3).prop_map(Rep::Sum),
                (0usize..3, inner.clone()).prop_map(|(k, r)| r.times(k)),
                prop::collection::vec(inner.clone(), 0..3).prop_map(Rep::Tensor),
                (0u32..3, inner).prop_map(|(k, r)| r.pow(k)),
            ]
        })
    }

    fn close(a: &DMatrix<f64>, b: &DMatrix<f64>) -> bool {
        (a - b).amax() <= 1e-9 * (1.0 + a.amax().max(b.amax()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn printed_reps_read_back_to_the_same_value(rep in arb_rep()) {
            let back = read(&rep.to_string());
            prop_assert_eq!(back.canonical(), rep.canonical());
            prop_assert_eq!(back.size(2), rep.size(2));
        }

        #[test]
        fn rho_is_a_homomorphism(rep in arb_rep(), seed in 0u64..1000) {
            prop_assume!(rep.size(2) <= 64);
            let gl2 = Group::builtin("GL", &[2]).unwrap();
            let mut rng = StdRng::seed_from_u64(seed);
            let (g, h) = (gl2.sample(&mut rng), gl2.sample(&mut rng));
            prop_assert!(close(&rep.rho(&(&g * &h)), &(rep.rho(&g) * rep.rho(&h))));
        }

        #[test]
        fn canonical_form_is_a_relabelling(rep in arb_rep(), seed in 0u64..1000) {
            prop_assume!(rep.size(2) <= 64);
            let gl2 = Group::builtin("GL", &[2]).unwrap();
            let g = gl2.sample(&mut StdRng::seed_from_u64(seed));
            let layout = rep.layout(2);
            let (orig, canon) = (rep.rho(&g), rep.canonical().rho(&g));
            let permuted = DMatrix::from_fn(orig.nrows(), orig.ncols(), |i, j| {
                orig[(layout.perm[i], layout.perm[j])]
            });
            prop_assert!(close(&canon, &permuted));
        }
    }

    #[test]
    fn drho_is_the_derivative_of_rho() {
        let a = DMatrix::from_row_slice(2, 2, &[0.3, -1.0, 0.5, 0.2]);
        let rep = Rep::Sum(vec![
            Rep::Tensor(vec![Rep::V, Rep::V.dual()]),
            Rep::V.pow(2).times(2),
        ]);
        let t = 1e-5;
        let ahead = rep.rho(&(&a * t).exp());
        let behind = rep.rho(&(&a * -t).exp());
        let fd = (ahead - behind) / (2.0 * t);
        assert!((fd - rep.drho(&a)).amax() < 1e-8);
    }

    #[test]
    fn display_uses_spec_syntax() {
        let cases = [
            (
                Rep::Sum(vec![Rep::Scalar.times(5), Rep::V.times(5)]),
                "5*scalar+5*V",
            ),
            (Rep::V.pow(2), "V^2"),
            (Rep::Tensor(vec![Rep::V, Rep::V]), "V*V"),
            (Rep::Tensor(vec![Rep::V.dual(), Rep::V]), "(V*)*V"),
            (Rep::Tensor(vec![Rep::V, Rep::V.dual()]), "V*V*"),
            (Rep::Sum(vec![Rep::V, Rep::Scalar]).pow(2), "(V+scalar)^2"),
            (Rep::Tensor(vec![Rep::V, Rep::V]).times(3), "3*(V*V)"),
        ];
        for (rep, text) in cases {
            assert_eq!(rep.to_string(), text);
        }
    }
}
