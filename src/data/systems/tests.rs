use super::*;

fn params(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn all_systems() -> Vec<Box<dyn System>> {
    SYSTEMS
        .iter()
        .map(|name| {
            simulate(name, &params(&[("trajectories", 1.0), ("points", 2.0)]))
                .unwrap()
                .unwrap()
                .system
        })
        .collect()
}

#[test]
fn canonical_fields_are_hamiltons_equations_of_the_energy() {
    let mut rng = StdRng::seed_from_u64(3);
    for system in all_systems()
        .into_iter()
        .filter(|s| s.kind() == StateKind::Canonical)
    {
        let x = system.initial(&mut rng);
        let n = system.coordinates();
        let mut dx = vec![0.0; 2 * n];
        system.field(&x, &mut dx);
        for i in 0..2 * n {
            let h = 1e-6;
            let mut up = x.clone();
            up[i] += h;
            let mut down = x.clone();
            down[i] -= h;
            let de = (system.energy(&up) - system.energy(&down)) / (2.0 * h);
            // q̇ = ∂H/∂p, ṗ = −∂H/∂q
            let want = if i < n { -dx[n + i] } else { dx[i - n] };
            assert!(
                (de - want).abs() < 1e-6 * (1.0 + de.abs()),
                "{} component {i}: {de} vs {want}",
                system.name()
            );
        }
    }
}

#[test]
fn energy_is_conserved_along_generated_trajectories() {
    for name in SYSTEMS {
        let d = simulate(name, &params(&[("trajectories", 2.0), ("noise", 0.0)]))
            .unwrap()
            .unwrap();
        let dim = 2 * d.system.coordinates();
        for traj in d.train.iter().chain(&d.test) {
            let e: Vec<f64> = traj
                .states
                .chunks_exact(dim)
                .map(|x| d.system.energy(x))
                .collect();
            let drift = e.iter().map(|v| (v - e[0]).abs()).fold(0.0, f64::max);
            assert!(
                drift < 1e-8 * d.system.energy_scale(),
                "{name}: energy drift {drift}"
            );
            assert_eq!(traj.observed, traj.states);
        }
    }
}

#[test]
fn mass_spring_matches_its_closed_form() {
    let d = simulate(
        "mass_spring",
        &params(&[("trajectories", 1.0), ("scale", 0.5), ("t_end", 6.0)]),
    )
    .unwrap()
    .unwrap();
    let traj = &d.test[0];
    let (q0, p0) = (traj.states[0], traj.states[1]);
    for (t, x) in traj.t.iter().zip(traj.states.chunks_exact(2)) {
        assert!((x[0] - (q0 * t.cos() + p0 * t.sin())).abs() < 1e-10);
        assert!((x[1] - (p0 * t.cos() - q0 * t.sin())).abs() < 1e-10);
    }
}

#[test]
fn splits_are_by_trajectory_with_the_requested_sizes_and_noise() {
    let p = params(&[
        ("trajectories", 40.0),
        ("points", 25.0),
        ("val_fraction", 0.25),
        ("noise", 0.1),
        ("seed", 4.0),
    ]);
    let d = simulate("pendulum", &p).unwrap().unwrap();
    assert_eq!((d.train.len(), d.val.len(), d.test.len()), (10, 10, 20));
    let s = d.splits();
    assert_eq!((s.train.rows, s.val.rows, s.test.rows), (250, 250, 500));
    let residual: Vec<f64> = d
        .test
        .iter()
        .flat_map(|t| t.observed.iter().zip(&t.states).map(|(o, s)| o - s))
        .collect();
    let std = (residual.iter().map(|r| r * r).sum::<f64>() / residual.len() as f64).sqrt();
    assert!((std - 0.1).abs() < 0.01, "noise std {std}");
    assert_eq!(
        simulate("pendulum", &p).unwrap().unwrap().splits(),
        s,
        "same seed, same data"
    );
}

#[test]
fn bad_parameters_are_named() {
    let bad = [
        ("trajectories", 0.0),
        ("points", 2.5),
        ("noise", -1.0),
        ("colour", 1.0),
        ("r_max", 0.01),
    ];
    for (name, value) in bad {
        match builtin("mass_spring", &params(&[(name, value)])).unwrap() {
            Err(DataError::Parameter { message, .. }) => assert!(
                message.starts_with(&format!("parameter `{name}`")),
                "{message}"
            ),
            other => panic!("{name} = {value}: {other:?}"),
        }
    }
}

#[test]
fn orbits_conserve_their_momenta_and_move_them_under_a_push() {
    let data = simulate(
        "two_body",
        &params(&[("trajectories", 3.0), ("noise", 0.0)]),
    )
    .unwrap()
    .unwrap();
    let system = data.system.as_ref();
    for t in &data.train {
        let first = system.momenta(&t.states[..8]);
        let last = system.momenta(&t.states[t.states.len() - 8..]);
        assert_eq!(first.len(), 3);
        for ((name, a), (_, b)) in first.iter().zip(&last) {
            assert!((a - b).abs() < 1e-8, "{name}: {a} vs {b}");
        }
    }
    // q = (1, 0), (−1, 0); p = (0, 1), (0, −1): zero linear momentum, L = 1 + 1.
    let x = [1.0, 0.0, -1.0, 0.0, 0.0, 1.0, 0.0, -1.0];
    let m: Vec<f64> = system.momenta(&x).into_iter().map(|(_, v)| v).collect();
    assert_eq!(m, [0.0, 0.0, 2.0]);
    assert!(simulate("pendulum", &params(&[]))
        .unwrap()
        .unwrap()
        .system
        .momenta(&[0.1, 0.2])
        .is_empty());
}
