//! Data: built-in benchmark generators, the digits set, CSV loading, splitting
//! and standardising that keeps a symmetry intact.
//!
//! Every source produces [`Splits`]: a training, a validation and a test
//! [`Table`]. Generators are seeded and draw each split from its own random
//! stream, so the test set of a seed does not change when the training set
//! grows.
//!
//! Built-in generators (parameters `train`, `val`, `test` are sample counts,
//! defaulting to 1000, 1000 and 5000 as in EMLP's data-efficiency study; `seed`
//! defaults to 0):
//!
//! | name | input | output | definition |
//! | --- | --- | --- | --- |
//! | `o5_synthetic` | x₁, x₂ ∈ R⁵ | 1 | y = sin‖x₁‖ − ½‖x₂‖³ + x₁·x₂ / (‖x₁‖‖x₂‖), x ~ N(0, I); `noise` (default 0) adds Gaussian noise of that fraction of y's standard deviation to y |
//! | `inertia` | m₁…m₅, r₁…r₅ | 9 | y = Σᵢ mᵢ(‖rᵢ‖² I − rᵢrᵢᵀ) row-major, mᵢ = softplus(N(0, 1)), rᵢ ~ N(0, I₃) |
//! | `modified_inertia` | as `inertia` | 9 | y = I + 0.3 (I e₃) e₃ᵀ with I the inertia tensor: only rotations about e₃ (and z ↦ −z) keep it |
//! | `lorentz` | p₁…p₄ ∈ R⁴ | 1 | electron–muon scattering amplitude, p ~ N(0, I)/4 (see [`builtin`]) |
//! | `nbody_spring` | n bodies' (x, p) | (ẋ, ṗ) | unit masses joined pairwise by unit springs, RK4 trajectories |
//! | `digits` | 8×8 pixels | class | the 1797 handwritten digits of UCI's optdigits test set; parameters `val_fraction`, `test_fraction`, `seed` |
//! | `rotation2_pairs`, `boost2_pairs`, `scaling2_pairs`, `rotation3_pairs`, `oscillator_pairs`, `observed_oscillator_pairs` | x | x′ | pairs x′ = exp(A)x for learning symmetries (see [`true_generators`]; parameters `noise`, `extent`, `omega`, `dt`) |
//!
//! Names not listed here are looked up among the physical systems of
//! [`systems`].

mod csv;
mod generators;
mod nbody;
mod pairs;
mod standardize;
pub mod systems;

pub use csv::{read_csv, SplitRule};
pub use pairs::true_generators;
pub use standardize::Standardizer;

use crate::plan::DataConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Rows of inputs and targets, stored row-major.
///
/// For classification, `y` holds one class index per row (as `f32`).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// `rows × x_dim` inputs.
    pub x: Vec<f32>,
    /// `rows × y_dim` targets.
    pub y: Vec<f32>,
    pub rows: usize,
    pub x_dim: usize,
    pub y_dim: usize,
}

impl Table {
    /// The input row `i`.
    pub fn x_row(&self, i: usize) -> &[f32] {
        &self.x[i * self.x_dim..(i + 1) * self.x_dim]
    }

    /// The target row `i`.
    pub fn y_row(&self, i: usize) -> &[f32] {
        &self.y[i * self.y_dim..(i + 1) * self.y_dim]
    }

    /// A new table made of the rows `indices`, in that order.
    ///
    /// ```
    /// use symc::data::Table;
    /// let t = Table { x: vec![1.0, 2.0, 3.0], y: vec![10.0, 20.0, 30.0], rows: 3, x_dim: 1, y_dim: 1 };
    /// let picked = t.select(&[2, 0]);
    /// assert_eq!(picked.x, [3.0, 1.0]);
    /// assert_eq!(picked.y, [30.0, 10.0]);
    /// ```
    pub fn select(&self, indices: &[usize]) -> Table {
        Table {
            x: indices
                .iter()
                .flat_map(|&i| self.x_row(i))
                .copied()
                .collect(),
            y: indices
                .iter()
                .flat_map(|&i| self.y_row(i))
                .copied()
                .collect(),
            rows: indices.len(),
            x_dim: self.x_dim,
            y_dim: self.y_dim,
        }
    }
}

/// The three splits of a data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits {
    pub train: Table,
    pub val: Table,
    pub test: Table,
}

/// Why data could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("unknown built-in data set `{0}`")]
    UnknownBuiltin(String),
    #[error("data set `{data}`: {message}")]
    Parameter { data: String, message: String },
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A CSV defect; `row` is the 1-based line of the file (the header is line 1),
    /// `column` the 1-based column when one column is at fault.
    #[error("{path}:{row}{}: {message}", column.map(|c| format!(", column {c}")).unwrap_or_default())]
    Csv {
        path: String,
        row: usize,
        column: Option<usize>,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Generates the built-in data set `name` with numeric `params`.
///
/// The Lorentz task is EMLP's electron–muon scattering: with η = diag(1, −1, −1, −1)
/// and ⟨a, b⟩ = aᵀηb, Lₑ = p₁p₃ᵀ − (⟨p₁, p₃⟩ − ⟨p₁, p₁⟩)η,
/// L_μ = (ηp₂)(ηp₄)ᵀ − (⟨p₂, p₄⟩ − ⟨p₂, p₂⟩)η and y = 4 Σᵢⱼ (Lₑ)ᵢⱼ(L_μ)ᵢⱼ.
///
/// ```
/// use std::collections::BTreeMap;
/// let params = BTreeMap::from([("train".to_string(), 10.0), ("val".to_string(), 5.0),
///                              ("test".to_string(), 5.0)]);
/// let splits = symc::data::builtin("o5_synthetic", &params).unwrap();
/// assert_eq!((splits.train.rows, splits.train.x_dim, splits.train.y_dim), (10, 10, 1));
/// assert!(symc::data::builtin("no_such_data", &params).is_err());
/// ```
pub fn builtin(name: &str, params: &BTreeMap<String, f64>) -> Result<Splits, DataError> {
    if let Some(generated) = generators::generate(name, params)
        .or_else(|| nbody::generate(name, params))
        .or_else(|| pairs::generate(name, params))
    {
        return generated;
    }
    systems::builtin(name, params).unwrap_or_else(|| Err(DataError::UnknownBuiltin(name.into())))
}

/// Loads the data a graph asks for; file paths are resolved against `spec_dir`.
///
/// CSV files are split by [`SplitRule::default`].
pub fn load(config: &DataConfig, spec_dir: &Path) -> Result<Splits, DataError> {
    match config {
        DataConfig::Builtin { name, params } => builtin(name, params),
        DataConfig::File {
            path,
            inputs,
            outputs,
        } => {
            let table = read_csv(&spec_dir.join(path), *inputs, *outputs)?;
            SplitRule::default().split(&table)
        }
    }
}

/// Reads the parameters of a data set, rejecting names it does not know.
struct Params<'a> {
    data: &'a str,
    params: &'a BTreeMap<String, f64>,
}

impl<'a> Params<'a> {
    fn new(
        data: &'a str,
        params: &'a BTreeMap<String, f64>,
        known: &[&str],
    ) -> Result<Self, DataError> {
        let reader = Params { data, params };
        match params.keys().find(|k| !known.contains(&k.as_str())) {
            Some(unknown) => Err(reader.error(format!(
                "unknown parameter `{unknown}`; expected one of {}",
                known.join(", ")
            ))),
            None => Ok(reader),
        }
    }

    fn error(&self, message: String) -> DataError {
        DataError::Parameter {
            data: self.data.into(),
            message,
        }
    }

    /// A non-negative integer parameter.
    fn count(&self, name: &str, default: u64) -> Result<u64, DataError> {
        match self.params.get(name) {
            None => Ok(default),
            Some(&v) if v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64 => Ok(v as u64),
            Some(v) => Err(self.error(format!(
                "parameter `{name}` must be a non-negative integer, found {v}"
            ))),
        }
    }

    /// A positive real number.
    fn positive(&self, name: &str, default: f64) -> Result<f64, DataError> {
        match self.params.get(name) {
            None => Ok(default),
            Some(&v) if v > 0.0 && v.is_finite() => Ok(v),
            Some(v) => Err(self.error(format!("parameter `{name}` must be positive, found {v}"))),
        }
    }

    /// A fraction in [0, 1).
    fn fraction(&self, name: &str, default: f64) -> Result<f64, DataError> {
        match self.params.get(name) {
            None => Ok(default),
            Some(&v) if (0.0..1.0).contains(&v) => Ok(v),
            Some(v) => Err(self.error(format!("parameter `{name}` must lie in [0, 1), found {v}"))),
        }
    }
}
