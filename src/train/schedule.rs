//! Learning-rate schedules.

use std::f64::consts::PI;

/// How the learning rate moves over a run, as `train.schedule` names it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Half a cosine from the base rate at step 0 down to zero at the last step.
    Cosine,
}

impl Schedule {
    /// Parses `constant` or `cosine`.
    ///
    /// ```
    /// use symc::train::Schedule;
    /// let cosine = Schedule::parse("cosine").unwrap();
    /// assert_eq!(cosine.rate(1e-3, 0, 100), 1e-3);
    /// assert!((cosine.rate(1e-3, 50, 100) - 5e-4).abs() < 1e-12);
    /// assert_eq!(Schedule::parse("constant").unwrap().rate(1e-3, 99, 100), 1e-3);
    /// assert!(Schedule::parse("linear").is_err());
    /// ```
    pub fn parse(name: &str) -> Result<Schedule, String> {
        match name {
            "constant" => Ok(Schedule::Constant),
            "cosine" => Ok(Schedule::Cosine),
            other => Err(format!(
                "unknown learning-rate schedule `{other}`; expected `constant` or `cosine`"
            )),
        }
    }

    /// The rate for step `step` (0-based) of `total`.
    pub fn rate(self, base: f64, step: usize, total: usize) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Cosine => 0.5 * base * (1.0 + (PI * step as f64 / total.max(1) as f64).cos()),
        }
    }
}
