//! Measured trajectories from CSV.
//!
//! Columns: trajectory id, t, the state (q…, then p… or q̇…), and optionally its
//! time derivative. A first line that does not parse as numbers is a header.
//! Rows of one trajectory must be contiguous with increasing t. Without
//! derivative columns they are estimated by second-order finite differences
//! (three-point formulas that allow uneven spacing, one-sided at the ends).

use super::Trajectory;
use crate::data::{DataError, Splits};

/// Parses CSV `text` (named `path` in errors) with states of `state_dim`
/// components into trajectories.
pub fn parse_csv(text: &str, path: &str, state_dim: usize) -> Result<Vec<Trajectory>, DataError> {
    let err = |row: usize, message: String| DataError::Csv {
        path: path.into(),
        row,
        column: None,
        message,
    };
    let mut out: Vec<(String, Vec<f64>, Vec<f64>, Vec<f64>)> = Vec::new();
    let mut with_derivatives = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let numbers: Result<Vec<f64>, _> = fields[1..].iter().map(|f| f.parse::<f64>()).collect();
        let numbers = match numbers {
            Ok(n) => n,
            Err(_) if out.is_empty() && with_derivatives.is_none() => continue,
            Err(e) => {
                return Err(err(
                    line_no,
                    format!("expected numbers after the trajectory id: {e}"),
                ))
            }
        };
        let derivs = match numbers.len() {
            n if n == 1 + state_dim => false,
            n if n == 1 + 2 * state_dim => true,
            n => {
                return Err(err(
                    line_no,
                    format!(
                        "expected {} columns (id, t, state) or {} (with derivatives), found {}",
                        2 + state_dim,
                        2 + 2 * state_dim,
                        n + 1
                    ),
                ))
            }
        };
        if *with_derivatives.get_or_insert(derivs) != derivs {
            return Err(err(
                line_no,
                "rows disagree on whether derivatives are given".into(),
            ));
        }
        let id = fields[0];
        if out.last().map_or(true, |t| t.0 != id) {
            if out.iter().any(|t| t.0 == id) {
                return Err(err(
                    line_no,
                    format!("rows of trajectory `{id}` are not contiguous"),
                ));
            }
            out.push((id.to_string(), Vec::new(), Vec::new(), Vec::new()));
        }
        let traj = out.last_mut().expect("pushed above");
        if traj.1.last().is_some_and(|&t| numbers[0] <= t) {
            return Err(err(
                line_no,
                format!(
                    "time {} does not increase within trajectory `{id}`",
                    numbers[0]
                ),
            ));
        }
        traj.1.push(numbers[0]);
        traj.2.extend_from_slice(&numbers[1..1 + state_dim]);
        traj.3.extend_from_slice(&numbers[1 + state_dim..]);
    }
    out.into_iter()
        .map(|(id, t, states, given)| {
            let derivatives = if with_derivatives == Some(true) {
                given
            } else if t.len() < 3 {
                return Err(err(
                    0,
                    format!(
                        "trajectory `{id}` has {} rows; finite differences need 3",
                        t.len()
                    ),
                ));
            } else {
                finite_differences(&t, &states, state_dim)
            };
            Ok(Trajectory {
                t,
                observed: states.clone(),
                states,
                derivatives,
            })
        })
        .collect()
}

/// Second-order derivative estimates at every sample of `x(t)` (rows of `dim`).
fn finite_differences(t: &[f64], x: &[f64], dim: usize) -> Vec<f64> {
    let n = t.len();
    let mut out = vec![0.0; x.len()];
    for i in 0..n {
        // Three consecutive samples around i (shifted inwards at the ends); the
        // derivative at t[i] of the parabola through them.
        let c = i.clamp(1, n - 2);
        let (t0, t1, t2) = (t[c - 1], t[c], t[c + 1]);
        let s = t[i];
        let w0 = ((s - t1) + (s - t2)) / ((t0 - t1) * (t0 - t2));
        let w1 = ((s - t0) + (s - t2)) / ((t1 - t0) * (t1 - t2));
        let w2 = ((s - t0) + (s - t1)) / ((t2 - t0) * (t2 - t1));
        for k in 0..dim {
            out[i * dim + k] =
                w0 * x[(c - 1) * dim + k] + w1 * x[c * dim + k] + w2 * x[(c + 1) * dim + k];
        }
    }
    out
}

/// Loads trajectories with `state_dim` components per state from a CSV file and
/// splits them by trajectory: the last `test_fraction` of them (in file order)
/// are the test set, no validation set.
pub fn load_csv(
    path: &std::path::Path,
    state_dim: usize,
    test_fraction: f64,
) -> Result<Splits, DataError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut trajectories = parse_csv(&text, &name, state_dim)?;
    let n_test = (trajectories.len() as f64 * test_fraction.clamp(0.0, 1.0)).round() as usize;
    let test = trajectories.split_off(trajectories.len() - n_test);
    Ok(Splits {
        train: super::table(&trajectories, state_dim),
        val: super::table(&[], state_dim),
        test: super::table(&test, state_dim),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_differences_are_exact_for_parabolas_on_uneven_grids() {
        let t = [0.0, 0.3, 0.5, 1.1, 1.2];
        let x: Vec<f64> = t.iter().map(|s| 2.0 * s * s - s + 0.5).collect();
        let d = finite_differences(&t, &x, 1);
        for (s, d) in t.iter().zip(&d) {
            assert!((d - (4.0 * s - 1.0)).abs() < 1e-12, "at {s}: {d}");
        }
    }

    #[test]
    fn parses_header_groups_and_given_derivatives() {
        let text = "id,t,q,p,dq,dp\na,0,1,2,3,4\na,1,5,6,7,8\nb,0,9,10,11,12\n";
        let trajs = parse_csv(text, "m.csv", 2).unwrap();
        assert_eq!(trajs.len(), 2);
        assert_eq!(trajs[0].states, [1.0, 2.0, 5.0, 6.0]);
        assert_eq!(trajs[0].derivatives, [3.0, 4.0, 7.0, 8.0]);
        assert_eq!(trajs[1].t, [0.0]);
    }

    #[test]
    fn estimates_missing_derivatives() {
        let text: String = (0..20)
            .map(|i| {
                let t = i as f64 * 0.05;
                format!("7,{t},{},{}\n", t.sin(), t.cos())
            })
            .collect();
        let traj = &parse_csv(&text, "s.csv", 2).unwrap()[0];
        for (i, d) in traj.derivatives.chunks_exact(2).enumerate() {
            let t = i as f64 * 0.05;
            assert!((d[0] - t.cos()).abs() < 2e-3 && (d[1] + t.sin()).abs() < 2e-3);
        }
    }

    #[test]
    fn reports_bad_rows_with_line_numbers() {
        let cases = [
            ("a,0,1\n", 1, "expected 4 columns"),
            ("a,0,1,2\na,0,1,2\n", 2, "does not increase"),
            ("a,0,1,2\nb,0,1,2\na,1,1,2\n", 3, "not contiguous"),
            ("a,0,1,2\na,1,x,2\n", 2, "expected numbers"),
            ("a,0,1,2\na,1,1,2,3,4\n", 2, "disagree"),
        ];
        for (text, line, what) in cases {
            match parse_csv(text, "f.csv", 2) {
                Err(DataError::Csv { row, message, .. }) => {
                    assert!(
                        row == line && message.contains(what),
                        "{text:?}: {row} {message}"
                    )
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
