//! The equivariant-basis problems timed by the `basis` benchmark and the
//! `basis_timing` example, named as the emlp peer names them.

use symc::group::{Group, Rep};

/// One basis problem.
pub struct Case {
    pub name: &'static str,
    pub group: Group,
    pub rep_in: Rep,
    pub rep_out: Rep,
}

impl Case {
    /// Unknowns of the flat problem: dim(rep_out) · dim(rep_in).
    pub fn unknowns(&self) -> usize {
        let n = self.group.n();
        self.rep_in.size(n) * self.rep_out.size(n)
    }
}

/// Every case, from 4 to 19,683 unknowns.
pub fn cases() -> Vec<Case> {
    let t = |k| Rep::V.pow(k);
    let t2_v = Rep::Sum(vec![t(2), Rep::V]);
    let table = [
        ("SO(3) V->V", "SO", vec![3], Rep::V, Rep::V),
        ("SO(3) T2->T2", "SO", vec![3], t(2), t(2)),
        ("SO(3) T3->Scalar", "SO", vec![3], t(3), Rep::Scalar),
        ("O(3) T2->T2", "O", vec![3], t(2), t(2)),
        ("SO(2) V->V", "SO", vec![2], Rep::V, Rep::V),
        ("SO(2) T2->V", "SO", vec![2], t(2), Rep::V),
        ("S(5) V->V", "S", vec![5], Rep::V, Rep::V),
        ("S(5) T2->T2", "S", vec![5], t(2), t(2)),
        (
            "O(5) 2V->Scalar",
            "O",
            vec![5],
            Rep::V.times(2),
            Rep::Scalar,
        ),
        ("Lorentz V->V", "Lorentz", vec![], Rep::V, Rep::V),
        ("Lorentz T2->Scalar", "Lorentz", vec![], t(2), Rep::Scalar),
        ("Sp(2) V->V", "Sp", vec![2], Rep::V, Rep::V),
        ("SO(3) (T2+V)->(T2+V)", "SO", vec![3], t2_v.clone(), t2_v),
        ("SO(3) T3->T3", "SO", vec![3], t(3), t(3)),
        ("SO(3) T4->T4", "SO", vec![3], t(4), t(4)),
        ("O(3) T4->T4", "O", vec![3], t(4), t(4)),
        ("Sp(2) T2->T2", "Sp", vec![2], t(2), t(2)),
        ("Lorentz T3->T3", "Lorentz", vec![], t(3), t(3)),
        ("S(10) T2->T2", "S", vec![10], t(2), t(2)),
        ("O(5) T3->T3", "O", vec![5], t(3), t(3)),
        ("SO(3) T5->T4", "SO", vec![3], t(5), t(4)),
    ];
    table
        .into_iter()
        .map(|(name, group, params, rep_in, rep_out)| Case {
            name,
            group: Group::builtin(group, &params)
                .expect("every benchmark group is a valid built-in"),
            rep_in,
            rep_out,
        })
        .collect()
}
