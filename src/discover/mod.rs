//! Symmetry discovery: learning Lie-algebra generators from data, a stage
//! after planning like training.
//!
//! [`discover`] runs the method a `learn(...)` model names on its data
//! ([`fit_operator`] for pairs related by a linear action, [`fit_latent`]
//! for pairs related by one that is linear only in learned coordinates,
//! [`fit_invariance`] for a predictor the action leaves unchanged) and
//! analyses what it found ([`Analysis`]: closure, the nearest built-in
//! algebra). A [`Discovery`] writes itself out as a spec
//! ([`Discovery::found_sym`]) that any other spec can `include` and enforce,
//! as a YAML report, and as one heatmap per generator.
//!
//! ```
//! use symc::discover::discover;
//! let spec = r#"
//! model turn {
//!   data     builtin.rotation2_pairs(train = 60, val = 20, test = 0, seed = 1)
//!   input    x: R^2
//!   output   x_turned: R^2
//!   symmetry learn(generators = 1) => operator
//!   export   group Turn
//!   train    (steps = 300, lr = 0.05, seed = 0)
//! }
//! "#;
//! let graph = &symc::compile(spec, "turn.sym", ".".as_ref()).unwrap().graphs[0];
//! let splits = symc::data::load(&graph.data, ".".as_ref()).unwrap();
//! let found = discover(graph, &splits, &mut |_| {}).unwrap();
//! assert_eq!(found.analysis.nearest().unwrap().name, "SO(2)");
//! assert!(found.truth.as_ref().unwrap().cosine.unwrap() > 0.99);
//! assert!(found.found_sym().contains("group Turn = lie"));
//! ```

mod expm;
mod fit;
mod invariance;
mod latent;
mod operator;
mod plot;

pub use expm::{expm, expm_vjp};
pub use fit::{Fit, LossPoint};
pub use invariance::{
    fit_invariance, input_gradients, lie_gram, Extents, FiniteCheck, Invariance, InvarianceConfig,
    InvarianceReport,
};
pub use latent::{fit_latent, LatentConfig, LatentFit, LatentSummary, LatentTerms, Spectrum};
pub use operator::{fit_operator, OperatorConfig};

use crate::data::{DataError, Splits};
use crate::group::{cosine, principal_angles, Analysis};
use crate::plan::{DataConfig, ModelGraph, Strategy, Task};
use nalgebra::DMatrix;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Weight of the penalty against duplicate generators (see [`fit_operator`]).
const DUPLICATE_WEIGHT: f64 = 1.0;

/// The least tolerance written on an exported group: EMLP's loosened SVD
/// threshold for generators that are only approximately closed.
pub const EXPORT_TOLERANCE: f64 = 5e-3;

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("model `{0}` learns no symmetry; `symc discover` needs a `learn(...)` model")]
    NotDiscovery(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the fit diverged at step {step}; lower the learning rate")]
    Diverged { step: usize },
    #[error("cannot draw a heatmap: {0}")]
    Plot(String),
    #[error("cannot write `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Data(#[from] DataError),
    /// Training the predictor of the `invariance` method failed.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
}

/// The found span against the one the data were made with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    /// Principal angles between the found and the true span, degrees, ascending.
    pub angles_deg: Vec<f64>,
    /// |cos| between the found and the true generator, when both are one.
    pub cosine: Option<f64>,
}

/// What [`discover`] found.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The model that was run.
    pub model: String,
    /// The name the found group is exported under (the model's name when the
    /// spec has no `export group`).
    pub export: String,
    /// The method that found the generators, as the spec names it.
    pub method: &'static str,
    /// The generators and the method's loss history.
    pub fit: Fit,
    pub analysis: Analysis,
    /// The comparison with the true generators, for built-in pair data.
    pub truth: Option<Truth>,
    /// The spectrum, finite checks and extents of the `invariance` method.
    pub invariance: Option<InvarianceReport>,
    /// What the `latent` method measured besides its loss.
    pub latent: Option<LatentReport>,
}

/// The `latent` method's measurements, and the true generators' spectra: its
/// latent basis is its own, so its generators are compared with the truth by
/// invariants rather than entry by entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatentReport {
    #[serde(flatten)]
    pub summary: LatentSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub true_spectra: Option<Vec<Spectrum>>,
}

/// Learns the generators of a `learn(...)` model from its data.
///
/// The pairs are used as they are, without standardising: a per-coordinate
/// scale would conjugate the generators and hide the symmetry.
pub fn discover(
    graph: &ModelGraph,
    splits: &Splits,
    progress: &mut dyn FnMut(&LossPoint),
) -> Result<Discovery, DiscoverError> {
    let Task::Discover {
        generators,
        dim,
        export,
    } = &graph.task
    else {
        return Err(DiscoverError::NotDiscovery(graph.model.clone()));
    };
    let (method, fit, invariance, latent) = match graph.symmetries.first().map(|s| &s.strategy) {
        Some(Strategy::Operator) => {
            let config = OperatorConfig {
                generators: *generators,
                dim: *dim,
                steps: graph.train.steps,
                lr: graph.train.lr,
                duplicate_weight: DUPLICATE_WEIGHT,
                seed: graph.train.seed,
            };
            let fit = fit_operator(&splits.train, &splits.val, &config, progress)?;
            ("operator", fit, None, None)
        }
        Some(Strategy::Latent) => {
            let (hidden, act) = latent::encoder_shape(graph)?;
            let config = LatentConfig {
                generators: *generators,
                dim: *dim,
                hidden,
                act,
                steps: graph.train.steps,
                lr: graph.train.lr,
                duplicate_weight: DUPLICATE_WEIGHT,
                seed: graph.train.seed,
            };
            let found = fit_latent(&splits.train, &splits.val, &config, progress)?;
            ("latent", found.fit, None, Some(found.summary))
        }
        Some(Strategy::Invariance) => {
            let config = InvarianceConfig {
                generators: *generators,
                dim: *dim,
                seed: graph.train.seed,
            };
            let found = fit_invariance(graph, splits, &config, progress)?;
            ("invariance", found.fit, Some(found.report), None)
        }
        _ => return Err(DiscoverError::NotDiscovery(graph.model.clone())),
    };
    let analysis = Analysis::new(&fit.generators);
    let true_generators = match &graph.data {
        DataConfig::Builtin { name, params } => {
            crate::data::true_generators(name, params).transpose()?
        }
        DataConfig::File { .. } => None,
    };
    let (truth, latent) = match latent {
        Some(summary) => (
            None,
            Some(LatentReport {
                summary,
                true_spectra: true_generators.map(|t| t.iter().map(Spectrum::new).collect()),
            }),
        ),
        None => (
            true_generators.map(|t| compare(&analysis.generators, &t)),
            None,
        ),
    };
    Ok(Discovery {
        model: graph.model.clone(),
        export: export.clone().unwrap_or_else(|| graph.model.clone()),
        method,
        fit,
        analysis,
        truth,
        invariance,
        latent,
    })
}

/// See [`Discovery::tolerance`].
pub fn export_tolerance(residual: f64) -> f64 {
    let wanted = 2.0 * residual;
    if wanted.is_nan() || wanted <= EXPORT_TOLERANCE {
        return EXPORT_TOLERANCE;
    }
    // 10^−e is a whole number for the tolerances that occur (e ≤ 0), so
    // dividing by it rounds as the decimal literal does: 2/100 is `0.02`.
    let scale = 10f64.powi(-(wanted.log10().floor() as i32));
    (wanted * scale).ceil() / scale
}

fn compare(found: &[DMatrix<f64>], truth: &[DMatrix<f64>]) -> Truth {
    Truth {
        angles_deg: principal_angles(found, truth)
            .into_iter()
            .map(f64::to_degrees)
            .collect(),
        cosine: match (found, truth) {
            ([f], [t]) => Some(cosine(f, t)),
            _ => None,
        },
    }
}

/// The YAML report of a discovery.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub method: &'static str,
    /// The generators, normalised, as rows.
    pub generators: Vec<Vec<Vec<f64>>>,
    pub loss: ReportLoss,
    pub closure: ReportClosure,
    /// The nearest built-in algebra first, then the others.
    pub algebras: Vec<ReportAlgebra>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<Truth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invariance: Option<InvarianceReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latent: Option<LatentReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportLoss {
    /// The method's loss on the training data at the last step (for
    /// `operator`, the mean squared residual ‖exp(Σ tᵢGᵢ)x − x′‖²; for
    /// `invariance`, the mean of the quadratic form q(Gᵢ); for `latent`, the
    /// prediction error ‖D(exp(Σ tᵢĜᵢ)E(x)) − x′‖²).
    pub train: f64,
    /// The same on the validation data (for `operator` and `latent`, with
    /// coefficients fitted to the validation pairs; for `invariance`, q built
    /// on them).
    pub val: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportClosure {
    /// The largest relative residual of projecting [Gᵢ, Gⱼ] on the span.
    pub residual: f64,
    /// cᵢⱼₖ with [Gᵢ, Gⱼ] ≈ Σₖ cᵢⱼₖ Gₖ, as `[i][j][k]`.
    pub structure_constants: Vec<Vec<Vec<f64>>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportAlgebra {
    pub name: String,
    pub dimension: usize,
    /// Angles of the found span to the algebra, degrees, ascending.
    pub angles_deg: Vec<f64>,
    /// |cos| of the one found generator to the algebra (cosine of its angle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cosine: Option<f64>,
}

fn rows(m: &DMatrix<f64>) -> Vec<Vec<f64>> {
    m.row_iter().map(|r| r.iter().copied().collect()).collect()
}

impl Discovery {
    /// The report `symc discover` writes as `report.yaml`.
    pub fn report(&self) -> Report {
        let k = self.analysis.generators.len();
        let constants = &self.analysis.closure.constants;
        let last = self.fit.history.last();
        Report {
            model: self.model.clone(),
            method: self.method,
            generators: self.analysis.generators.iter().map(rows).collect(),
            loss: ReportLoss {
                train: last.map_or(f64::NAN, |p| p.train),
                val: last.map_or(f64::NAN, |p| p.val),
            },
            closure: ReportClosure {
                residual: self.analysis.closure.residual,
                structure_constants: (0..k)
                    .map(|i| {
                        (0..k)
                            .map(|j| (0..k).map(|l| constants.get(i, j, l)).collect())
                            .collect()
                    })
                    .collect(),
            },
            algebras: self
                .analysis
                .candidates
                .iter()
                .map(|c| ReportAlgebra {
                    name: c.name.clone(),
                    dimension: c.dimension,
                    angles_deg: c.angles.iter().map(|a| a.to_degrees()).collect(),
                    cosine: (k == 1).then(|| c.largest_angle().cos()),
                })
                .collect(),
            truth: self.truth.clone(),
            invariance: self.invariance.clone(),
            latent: self.latent.clone(),
        }
    }

    /// The tolerance written on the exported group: [`EXPORT_TOLERANCE`], or
    /// twice the closure residual rounded up to one digit where that is
    /// larger, so that the span counts as closed and the basis solver is as
    /// loose as the generators are inexact.
    ///
    /// ```
    /// # use symc::discover::EXPORT_TOLERANCE;
    /// assert_eq!(symc::discover::export_tolerance(0.0), EXPORT_TOLERANCE);
    /// assert_eq!(symc::discover::export_tolerance(8.7e-3), 0.02);
    /// ```
    pub fn tolerance(&self) -> f64 {
        export_tolerance(self.analysis.closure.residual)
    }

    /// The found group as a spec: `group NAME = lie(tolerance = …) { … }`,
    /// with the nearest built-in algebra and the closure residual in a comment.
    pub fn found_sym(&self) -> String {
        let mut out = format!(
            "# Learned by `symc discover` from model `{}` ({} method, {} generator{}).\n",
            self.model,
            self.method,
            self.analysis.generators.len(),
            if self.analysis.generators.len() == 1 {
                ""
            } else {
                "s"
            }
        );
        if let Some(nearest) = self.analysis.nearest() {
            let _ = writeln!(
                out,
                "# Nearest built-in algebra: {} (largest angle {:.2}°); closure residual {:.1e}.",
                nearest.name,
                nearest.largest_angle().to_degrees(),
                self.analysis.closure.residual
            );
        }
        let _ = writeln!(
            out,
            "group {} = lie(tolerance = {}) {{",
            self.export,
            self.tolerance()
        );
        let matrices: Vec<String> = self
            .analysis
            .generators
            .iter()
            .map(|g| {
                let rows: Vec<String> = rows(g)
                    .iter()
                    .map(|r| {
                        let entries: Vec<String> = r.iter().map(|v| format!("{v:.6}")).collect();
                        format!("[{}]", entries.join(", "))
                    })
                    .collect();
                format!("  [{}]", rows.join(", "))
            })
            .collect();
        out.push_str(&matrices.join(",\n"));
        out.push_str("\n}\n");
        out
    }

    /// Writes `found.sym`, `report.yaml` and `generator_<i>.png` into `dir`
    /// (created when missing) and returns the paths written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, DiscoverError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DiscoverError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let sym = dir.join("found.sym");
        std::fs::write(&sym, self.found_sym()).map_err(io(&sym))?;
        let yaml = dir.join("report.yaml");
        let text = serde_yaml::to_string(&self.report())
            .map_err(|e| DiscoverError::Invalid(format!("cannot serialise the report: {e}")))?;
        std::fs::write(&yaml, text).map_err(io(&yaml))?;
        let mut written = vec![sym, yaml];
        for (i, g) in self.analysis.generators.iter().enumerate() {
            let png = dir.join(format!("generator_{i}.png"));
            plot::draw_heatmap(&format!("{}: generator {i}", self.export), g, &png)?;
            written.push(png);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{measure_equivariance, EquivarianceOptions};

    /// Discover, then enforce: a rotation learned from noisy pairs is written
    /// as `found.sym`, a second spec includes it and builds an EMLP over it,
    /// and that model (untrained: the architecture alone must do it) is
    /// equivariant under the learned group. Without the exported tolerance
    /// the approximate generator keeps no invariant bilinear form, and the
    /// model would have nothing to build its output from.
    #[test]
    fn discover_then_enforce_round_trip() {
        let dir = std::env::temp_dir().join(format!("symc-discover-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let learn = r#"
model turn {
  data     builtin.rotation2_pairs(train = 80, val = 20, test = 0, noise = 0.01, seed = 1)
  input    x: R^2
  output   x_turned: R^2
  symmetry learn(generators = 1, dim = 2) => operator
  export   group Turn
  train    (steps = 300, lr = 0.05, seed = 0)
}
"#;
        let graph = &crate::compile(learn, "learn.sym", &dir).unwrap().graphs[0];
        let splits = crate::data::load(&graph.data, &dir).unwrap();
        let mut steps = 0;
        let found = discover(graph, &splits, &mut |_| steps += 1).unwrap();
        assert_eq!(steps, 300);
        let truth = found.truth.as_ref().unwrap();
        assert!(truth.cosine.unwrap() > 0.99, "{truth:?}");
        let written = found.write(&dir).unwrap();
        assert_eq!(written.len(), 3);
        assert!(written
            .iter()
            .all(|p| std::fs::metadata(p).unwrap().len() > 0));
        let report: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join("report.yaml")).unwrap())
                .unwrap();
        assert_eq!(report["algebras"][0]["name"].as_str(), Some("SO(2)"));

        assert_enforceable(&dir, "Turn", 2, 1, found.tolerance());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Enforces the group `name` of `dir/found.sym` (n×n generators,
    /// exported with `tolerance`): an
    /// untrained EMLP from `points` points of Rⁿ to a scalar over it is
    /// invariant under the group, and not identically zero (the tolerance
    /// written on the export kept a map).
    pub(super) fn assert_enforceable(
        dir: &Path,
        name: &str,
        n: usize,
        points: usize,
        tolerance: f64,
    ) {
        let width = n * points;
        let rows: String = (0..20)
            .map(|i| {
                let x: Vec<f64> = (0..width)
                    .map(|j| ((i * width + j) as f64 * 0.37).sin())
                    .collect();
                let y: f64 = x.iter().map(|v| v * v).sum();
                let x: Vec<String> = x.iter().map(f64::to_string).collect();
                format!("{},{y}\n", x.join(","))
            })
            .collect();
        let header: Vec<String> = (0..width).map(|j| format!("x{j}")).collect();
        std::fs::write(
            dir.join("norms.csv"),
            format!("{},y\n{rows}", header.join(",")),
        )
        .unwrap();
        let enforce = format!(
            r#"
include "found.sym"
model enforce {{
  data     file("norms.csv", inputs = {width}, outputs = 1)
  input    x: {points}*V over {name}
  output   y: scalar over {name}
  symmetry {name} => architecture
  net      emlp(channels = 8, layers = 1)
}}
"#
        );
        let graph = &crate::compile(&enforce, "enforce.sym", dir).unwrap().graphs[0];
        assert_eq!(graph.groups[0].tolerance, Some(tolerance));
        let model = crate::backend::Model::new(graph, 0).unwrap();
        let table = crate::data::read_csv(&dir.join("norms.csv"), width, 1).unwrap();
        let options = EquivarianceOptions {
            samples: 8,
            points: 20,
            seed: 0,
        };
        let measured =
            measure_equivariance(graph, &|x, rows| model.forward(x, rows), &table, &options)
                .unwrap();
        assert!(measured[0].error < 1e-2, "{measured:?}");
        let out = model.forward(&table.x, table.rows).unwrap();
        assert!(out.iter().any(|v| v.abs() > 1e-6));
    }
}
