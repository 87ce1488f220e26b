//! Equivariant-basis solves from 4 to 19,683 unknowns, each from a fresh
//! solver (no cached pairs), as `symc basis` runs them.
//!
//! `cargo bench --bench basis`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::Duration;
use symc::group::solve_timed;

mod basis_cases;

fn basis(c: &mut Criterion) {
    let mut group = c.benchmark_group("basis");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for case in basis_cases::cases() {
        let id = BenchmarkId::new(case.name, case.unknowns());
        group.bench_function(id, |b| {
            b.iter(|| solve_timed(&case.group, &case.rep_in, &case.rep_out).expect("solvable"))
        });
    }
    group.finish();
}

criterion_group!(benches, basis);
criterion_main!(benches);
