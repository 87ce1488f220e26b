//! Every derivative path of the heads against central finite differences.

use super::*;
use crate::plan::{HeadInit, Op};

/// Deterministic pseudo-random values in [−1, 1).
pub(super) fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Asserts `analytic ≈ numeric` up to `tol` relative to the largest entry.
pub(super) fn assert_close(analytic: &[f32], numeric: &[f64], tol: f64, what: &str) {
    let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-3);
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        assert!(
            (*a as f64 - n).abs() <= tol * scale,
            "{what}[{i}]: analytic {a}, finite difference {n} (scale {scale})"
        );
    }
}

fn net(head: Head, n: usize, act: Activation, seed: u64) -> DynamicsNet {
    DynamicsNet::new(head, n, &[7, 6], act, Init::Uniform, seed).unwrap()
}

/// Richardson extrapolation of a central difference of step h and h/2: its
/// error is O(h⁴), which the strongly curved Lagrangian losses need.
pub(super) fn richardson(mut fd: impl FnMut(f64) -> f64, h: f64) -> f64 {
    (4.0 * fd(h / 2.0) - fd(h)) / 3.0
}

/// Derivative of a scalar function of the parameters, one per parameter.
pub(super) fn param_fd(
    net: &mut DynamicsNet,
    h: f32,
    f: impl Fn(&mut DynamicsNet) -> f64,
) -> Vec<f64> {
    let count = net.parameters().len();
    let net = std::cell::RefCell::new(net);
    (0..count)
        .map(|i| {
            let p = net.borrow().parameters()[i];
            let at = |v: f32| {
                let mut net = net.borrow_mut();
                net.parameters_mut()[i] = v;
                f(&mut net)
            };
            let d = richardson(
                |h| (at(p + h as f32) - at(p - h as f32)) / (2.0 * h),
                h as f64,
            );
            net.borrow_mut().parameters_mut()[i] = p;
            d
        })
        .collect::<Vec<_>>()
}

pub(super) fn loss(net: &mut DynamicsNet, x: &[f32], y: &[f32]) -> f64 {
    let mut g = vec![0.0; net.parameters().len()];
    net.loss_and_grad(x, y, &mut g).unwrap().total()
}

#[test]
fn hamiltonian_field_is_the_symplectic_gradient_of_h() {
    for act in [Activation::Tanh, Activation::Softplus, Activation::Swish] {
        let net = net(Head::Hamiltonian, 2, act, 3);
        let x = values(4 * 5, 1);
        let field = net.field(&x).unwrap();
        let h = 1e-2;
        for (r, state) in x.chunks_exact(4).enumerate() {
            let mut fd = vec![0.0; 4];
            for i in 0..4 {
                let mut up = state.to_vec();
                up[i] += h;
                let mut down = state.to_vec();
                down[i] -= h;
                let dh = (net.scalar(&up).unwrap().unwrap()[0] as f64
                    - net.scalar(&down).unwrap().unwrap()[0] as f64)
                    / (2.0 * h as f64);
                // (q̇, ṗ) = (∂H/∂p, −∂H/∂q)
                if i < 2 {
                    fd[i + 2] = -dh;
                } else {
                    fd[i - 2] = dh;
                }
            }
            assert_close(&field[4 * r..4 * r + 4], &fd, 2e-3, "field");
        }
    }
}

#[test]
fn loss_gradients_match_finite_differences() {
    for head in [Head::Hamiltonian, Head::Direct, Head::Lagrangian] {
        for act in [Activation::Tanh, Activation::Softplus] {
            // The Lagrangian loss divides by the learned mass matrix; the LNN
            // initialisation keeps it well conditioned, so float32 finite
            // differences resolve the loss.
            let mut net = match head {
                Head::Lagrangian => DynamicsNet::new(head, 2, &[8, 8], act, Init::Lnn, 11).unwrap(),
                _ => net(head, 2, act, 5),
            };
            let x = values(4 * 9, 2);
            let y = values(4 * 9, 3);
            let mut grad = vec![0.0; net.parameters().len()];
            net.loss_and_grad(&x, &y, &mut grad).unwrap();
            let fd = param_fd(&mut net, 1e-2, |n| loss(n, &x, &y));
            // Float32 rounding, amplified by M⁻¹, limits the Lagrangian's differences.
            let tol = if head == Head::Lagrangian { 1e-2 } else { 3e-3 };
            assert_close(&grad, &fd, tol, &format!("{head:?}/{act:?} gradient"));
        }
    }
}

#[test]
fn gradient_accumulates_into_the_buffer() {
    let mut net = net(Head::Hamiltonian, 1, Activation::Tanh, 9);
    let (x, y) = (values(2 * 4, 4), values(2 * 4, 5));
    let mut once = vec![0.0; net.parameters().len()];
    net.loss_and_grad(&x, &y, &mut once).unwrap();
    let mut twice = once.clone();
    net.loss_and_grad(&x, &y, &mut twice).unwrap();
    for (a, b) in once.iter().zip(&twice) {
        assert!((2.0 * a - b).abs() <= 1e-6 * (1.0 + a.abs()));
    }
}

#[test]
fn bad_shapes_are_errors() {
    let mut net = net(Head::Hamiltonian, 2, Activation::Tanh, 0);
    assert_eq!(
        net.field(&[0.0; 5]).unwrap_err(),
        PhysicsError::Shape {
            expected: 4,
            found: 5
        }
    );
    let mut grad = vec![0.0; net.parameters().len()];
    assert_eq!(
        net.loss_and_grad(&[0.0; 8], &[0.0; 4], &mut grad)
            .unwrap_err(),
        PhysicsError::RowMismatch { x: 2, y: 1 }
    );
    assert!(matches!(
        DynamicsNet::new(
            Head::Hamiltonian,
            1,
            &[],
            Activation::Tanh,
            Init::Uniform,
            0
        ),
        Err(PhysicsError::NoHiddenLayer(Head::Hamiltonian))
    ));
}

/// L's gradient and Hessian by finite differences of L itself.
fn lagrangian_derivatives(net: &DynamicsNet, x: &[f32]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let d = x.len();
    let l = |x: &[f64]| {
        let x: Vec<f32> = x.iter().map(|v| *v as f32).collect();
        net.scalar(&x).unwrap().unwrap()[0] as f64
    };
    let x: Vec<f64> = x.iter().map(|v| *v as f64).collect();
    // L is O(10) in float32: steps much below 0.1 drown the second differences in rounding.
    let h = 0.2;
    let shifted = |moves: &[(usize, f64)]| {
        let mut y = x.clone();
        moves.iter().for_each(|(i, s)| y[*i] += s);
        l(&y)
    };
    let grad = (0..d)
        .map(|i| {
            richardson(
                |h| (shifted(&[(i, h)]) - shifted(&[(i, -h)])) / (2.0 * h),
                h,
            )
        })
        .collect();
    let mixed = |i: usize, j: usize, h: f64| {
        (shifted(&[(i, h), (j, h)]) - shifted(&[(i, h), (j, -h)]) - shifted(&[(i, -h), (j, h)])
            + shifted(&[(i, -h), (j, -h)]))
            / (4.0 * h * h)
    };
    let hess = (0..d)
        .map(|i| (0..d).map(|j| richardson(|h| mixed(i, j, h), h)).collect())
        .collect();
    (grad, hess)
}

#[test]
fn lagrangian_field_solves_euler_lagrange_with_finite_difference_derivatives() {
    let n = 2;
    let net = DynamicsNet::new(
        Head::Lagrangian,
        n,
        &[16, 16],
        Activation::Softplus,
        Init::Lnn,
        11,
    )
    .unwrap();
    let x = values(4 * 3, 6);
    let field = net.field(&x).unwrap();
    for (b, state) in x.chunks_exact(4).enumerate() {
        let (g, h) = lagrangian_derivatives(&net, state);
        // M q̈ = ∇_qL − C q̇ with M = H[q̇, q̇], C = H[q̇, q].
        let qdd = &field[4 * b + 2..4 * b + 4];
        assert_eq!(&field[4 * b..4 * b + 2], &state[2..]);
        for i in 0..n {
            let lhs: f64 = (0..n).map(|k| h[n + i][n + k] * qdd[k] as f64).sum();
            let rhs = g[i]
                - (0..n)
                    .map(|k| h[n + i][k] * state[n + k] as f64)
                    .sum::<f64>();
            let scale = g
                .iter()
                .chain(h.iter().flatten())
                .fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(
                (lhs - rhs).abs() < 5e-3 * scale,
                "state {b} row {i}: {lhs} vs {rhs}"
            );
        }
    }
}

#[test]
fn a_singular_mass_matrix_is_an_error_and_damping_removes_it() {
    // A Lagrangian with no q̇ dependence at all: every weight from q̇ is zero.
    let mut net = DynamicsNet::new(
        Head::Lagrangian,
        1,
        &[4],
        Activation::Softplus,
        Init::Uniform,
        2,
    )
    .unwrap();
    for k in 0..4 {
        net.parameters_mut()[2 * k + 1] = 0.0;
    }
    assert!(matches!(
        net.field(&[0.3, 0.2]),
        Err(PhysicsError::SingularMass {
            state: 0,
            row: 0,
            ..
        })
    ));
    let net = net.with_damping(1e-2);
    assert!(net
        .field(&[0.3, 0.2])
        .unwrap()
        .iter()
        .all(|v| v.is_finite()));
}

#[test]
fn a_lagrangian_node_carries_its_damping_and_start() {
    // Damping d is L + d·½‖q̇‖²: the field of the node's head is that of the
    // same network built by hand with d added to its mass matrix.
    let op = |damping, init| Op::Lagrangian {
        coordinates: 2,
        hidden: vec![6],
        act: Activation::Softplus,
        damping,
        init,
    };
    let x = [0.3, -0.2, 0.5, 0.1, -0.4, 0.7, 0.2, 0.9];
    for (init, by_hand) in [
        (HeadInit::Lnn, Init::Lnn),
        (HeadInit::Uniform, Init::Uniform),
    ] {
        let node = DynamicsNet::from_op(&op(0.7, init), 5).unwrap();
        let built =
            DynamicsNet::new(Head::Lagrangian, 2, &[6], Activation::Softplus, by_hand, 5).unwrap();
        assert_eq!(node.parameters(), built.parameters());
        let undamped = built.field(&x).unwrap();
        assert_eq!(
            node.field(&x).unwrap(),
            built.with_damping(0.7).field(&x).unwrap()
        );
        assert_ne!(node.field(&x).unwrap(), undamped);
    }
}

/// Rotation of q ∈ R² and p ∈ R² together: the generator of angular momentum.
fn rotation() -> Vec<f32> {
    let mut g = vec![0.0; 16];
    for k in [0, 2] {
        g[4 * k + k + 1] = -1.0;
        g[4 * (k + 1) + k] = 1.0;
    }
    g
}

fn bracket_net(seed: u64) -> DynamicsNet {
    let brackets = vec![
        Bracket {
            weight: 0.7,
            generator: rotation(),
        },
        Bracket {
            weight: 0.2,
            generator: values(16, 8),
        },
    ];
    net(Head::Hamiltonian, 2, Activation::Tanh, seed)
        .with_brackets(brackets)
        .unwrap()
}

#[test]
fn bracket_penalties_are_the_squared_rate_of_h_along_the_generators() {
    let mut net = bracket_net(6);
    let x = values(4 * 5, 9);
    let y = values(4 * 5, 10);
    let generators = [rotation(), values(16, 8)];
    // ∇H by central differences of H, then w·mean((∇H·Gx)²) by hand.
    let h = 1e-2;
    let mut want = [0.0f64; 2];
    for state in x.chunks_exact(4) {
        let grad_h: Vec<f64> = (0..4)
            .map(|i| {
                let mut up = state.to_vec();
                up[i] += h;
                let mut down = state.to_vec();
                down[i] -= h;
                let f = |s: &[f32]| net.scalar(s).unwrap().unwrap()[0] as f64;
                (f(&up) - f(&down)) / (2.0 * h as f64)
            })
            .collect();
        for (w, g) in want.iter_mut().zip(&generators) {
            let rate: f64 = (0..4)
                .map(|i| {
                    let gx: f64 = (0..4).map(|j| (g[4 * i + j] * state[j]) as f64).sum();
                    grad_h[i] * gx
                })
                .sum();
            *w += rate * rate / 5.0;
        }
    }
    want[0] *= 0.7;
    want[1] *= 0.2;
    let evaluated = net.objective(&x, &y).unwrap();
    let mut grad = vec![0.0; net.parameters().len()];
    let trained = net.loss_and_grad(&x, &y, &mut grad).unwrap();
    for (k, ((want, evaluated), trained)) in want
        .iter()
        .zip(&evaluated.brackets)
        .zip(&trained.brackets)
        .enumerate()
    {
        assert!(
            (evaluated - want).abs() < 2e-3 * want.max(1e-3),
            "bracket {k}: {evaluated} vs {want}"
        );
        assert!((trained - evaluated).abs() < 1e-5 * want.max(1e-3));
    }
    assert!((trained.mse - evaluated.mse).abs() < 1e-6);
}

#[test]
fn a_large_batch_split_in_halves_gives_the_whole_batchs_objective_and_gradient() {
    // 601 rows: over the split threshold, and odd, so that the halves differ in size.
    let mut net = bracket_net(3);
    let rows = 601;
    assert!(rows >= hnn::SPLIT_ROWS);
    let (x, y) = (values(4 * rows, 11), values(4 * rows, 12));
    let mut split = vec![0.5; net.parameters().len()];
    let halves = net.loss_and_grad(&x, &y, &mut split).unwrap();
    let Energy::Dense(mlp) = &net.energy else {
        panic!("a dense head")
    };
    let mut whole = vec![0.5; net.parameters().len()];
    let mut work = hnn::Work::default();
    let once = hnn::loss_and_grad(mlp, 2, &x, &y, rows, &net.brackets, &mut whole, &mut work);
    assert!((halves.mse - once.mse).abs() <= 1e-6 * once.mse);
    for (h, o) in halves.brackets.iter().zip(&once.brackets) {
        assert!((h - o).abs() <= 1e-6 * o, "{h} vs {o}");
    }
    // Sums over 601 rows in another order: f32 rounding, against a weighting
    // error that would be a fraction of the largest entry.
    let scale = whole.iter().fold(0.0f32, |m, g| m.max((g - 0.5).abs()));
    for (s, w) in split.iter().zip(&whole) {
        assert!(
            (s - w).abs() <= 1e-4 * scale,
            "{s} vs {w} (largest {scale})"
        );
    }
}

#[test]
fn bracket_gradients_match_finite_differences() {
    let mut net = bracket_net(12);
    let x = values(4 * 7, 13);
    let y = values(4 * 7, 14);
    let mut grad = vec![0.0; net.parameters().len()];
    net.loss_and_grad(&x, &y, &mut grad).unwrap();
    let fd = param_fd(&mut net, 1e-2, |n| loss(n, &x, &y));
    assert_close(&grad, &fd, 3e-3, "bracket gradient");
    // The penalty alone (targets equal to the field leave no MSE gradient).
    let field = net.field(&x).unwrap();
    grad.fill(0.0);
    let objective = net.loss_and_grad(&x, &field, &mut grad).unwrap();
    assert!(objective.mse < 1e-12 && objective.brackets.iter().all(|b| *b > 0.0));
    let fd = param_fd(&mut net, 1e-2, |n| loss(n, &x, &field));
    assert_close(&grad, &fd, 3e-3, "penalty-only gradient");
}

#[test]
fn brackets_need_a_hamiltonian_head_and_square_generators() {
    let lagrangian = net(Head::Lagrangian, 2, Activation::Softplus, 0);
    let bracket = |generator| Bracket {
        weight: 1.0,
        generator,
    };
    assert_eq!(
        lagrangian
            .with_brackets(vec![bracket(rotation())])
            .unwrap_err(),
        PhysicsError::BracketWithoutHamiltonian(Head::Lagrangian)
    );
    assert_eq!(
        net(Head::Hamiltonian, 2, Activation::Tanh, 0)
            .with_brackets(vec![bracket(vec![0.0; 9])])
            .unwrap_err(),
        PhysicsError::Shape {
            expected: 16,
            found: 9
        }
    );
}
