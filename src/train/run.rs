//! The run folder `symc train` writes and `symc check` reads.

use super::dynamics::{DynamicsReport, Evaluation};
use super::{checkpoint, plot, EquivarianceOptions, Measurement, Outcome, Record, TrainError};
use crate::backend::{DeviceKind, Model};
use crate::data::systems::System;
use crate::data::{Splits, Standardizer, Table};
use crate::plan::{ModelGraph, Task};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The summary of a run, as `report.yaml` holds it. Errors are in the data's
/// original units; `equivariance_error` maps each measured symmetry to its
/// relative error on the test set (defined at
/// [`measure_equivariance`](super::measure_equivariance)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub model: String,
    /// Where the model was trained: `cpu` or `cuda:N`.
    #[serde(default = "cpu")]
    pub device: String,
    pub seed: u64,
    /// Optimiser steps taken.
    pub steps: usize,
    /// The step whose parameters were kept (best validation loss).
    pub best_step: usize,
    pub seconds: f64,
    pub steps_per_second: f64,
    pub parameters: usize,
    /// Mean squared errors, for regression and dynamics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_mse: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_mse: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_mse: Option<f64>,
    /// Accuracies, for classification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// Group samples and test points behind `equivariance_error`.
    pub equivariance_samples: usize,
    pub equivariance_points: usize,
    pub equivariance_error: BTreeMap<String, f64>,
    /// Rollout metrics of a dynamics model on its built-in system
    /// ([`assess`](super::dynamics::assess)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamics: Option<DynamicsReport>,
}

impl Report {
    /// Evaluates `outcome` on `splits` and gathers the run's figures.
    pub fn new(
        graph: &ModelGraph,
        outcome: &Outcome,
        splits: &Splits,
        equivariance: (&EquivarianceOptions, &[Measurement]),
    ) -> Result<Report, TrainError> {
        let predictor = outcome.predictor();
        let classification = matches!(graph.task, Task::Classification { .. });
        let (options, measured) = equivariance;
        let regression = |t: &Table| (!classification).then(|| predictor.mse(t)).transpose();
        let classes = |t: &Table| classification.then(|| predictor.accuracy(t)).transpose();
        Ok(Report {
            model: graph.model.clone(),
            device: outcome.model.device().to_string(),
            seed: graph.train.seed,
            steps: outcome.steps,
            best_step: outcome.best_step,
            seconds: outcome.seconds,
            steps_per_second: outcome.steps as f64 / outcome.seconds.max(f64::MIN_POSITIVE),
            parameters: outcome.model.parameter_count(),
            train_mse: regression(&splits.train)?,
            // Without a validation split there is no figure, not a mean over no rows.
            val_mse: match splits.val.rows {
                0 => None,
                _ => regression(&splits.val)?,
            },
            test_mse: regression(&splits.test)?,
            train_accuracy: classes(&splits.train)?,
            test_accuracy: classes(&splits.test)?,
            equivariance_samples: options.samples,
            equivariance_points: options.points.min(splits.test.rows),
            equivariance_error: measured
                .iter()
                .map(|m| (m.symmetry.clone(), m.error))
                .collect(),
            dynamics: None,
        })
    }
}

/// The device of reports written before it was recorded.
fn cpu() -> String {
    DeviceKind::Cpu.to_string()
}

/// A run folder:
///
/// | file | content |
/// | --- | --- |
/// | `graph.yaml` | the compiled [`ModelGraph`] as trained (seed and steps included) |
/// | `weights.safetensors` | parameters and standardising map, see below |
/// | `history.csv` | `step,train_loss,val_loss,lr`, one row per validation |
/// | `loss.png` | the two loss curves |
/// | `report.yaml` | a [`Report`] |
/// | `rollout.csv` | dynamics on a built-in system: `start,t,energy_true,energy_learned`, then the true and the learned state (`true.{i}`, `learned.{i}`), one row per test start and time |
/// | `phase.png`, `energy.png` | dynamics: the first coordinate against its momentum, and the energy over time, true vs learned, for the first test starts |
///
/// Every file is written to a temporary name in the folder and then renamed,
/// so a run killed mid-write never leaves a truncated file behind.
///
/// Weights tensors, all little-endian f32, row-major: the backend's parameters
/// under their own names (`n3.weight`, `[out, in]`, and `n3.bias`, `[out]`, for
/// node 3), plus `standardize.x_shift`, `standardize.x_scale` (`[inputs]`),
/// `standardize.y_shift` and `standardize.y_scale` (`[outputs]`): the network
/// sees `(x − x_shift) / x_scale` and its output `o` means `o · y_scale + y_shift`.
/// The header's metadata holds `symc.model: <name>`.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

const GRAPH: &str = "graph.yaml";
const WEIGHTS: &str = "weights.safetensors";
const HISTORY: &str = "history.csv";
const REPORT: &str = "report.yaml";
const ROLLOUT: &str = "rollout.csv";

impl RunDir {
    /// Creates the folder (and its parents); refuses one that already holds a run.
    pub fn create(path: &Path) -> Result<RunDir, TrainError> {
        let io = |source| TrainError::Io {
            path: path.into(),
            source,
        };
        std::fs::create_dir_all(path).map_err(io)?;
        if path.join(WEIGHTS).exists() || path.join(GRAPH).exists() {
            return Err(TrainError::Invalid(format!(
                "`{}` already holds a run; choose another folder with --out",
                path.display()
            )));
        }
        Ok(RunDir { path: path.into() })
    }

    /// An existing run folder.
    pub fn open(path: &Path) -> Result<RunDir, TrainError> {
        if !path.join(GRAPH).is_file() || !path.join(WEIGHTS).is_file() {
            return Err(TrainError::Invalid(format!(
                "`{}` is not a run folder: it needs `{GRAPH}` and `{WEIGHTS}`",
                path.display()
            )));
        }
        Ok(RunDir { path: path.into() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` to `name` through a temporary file and a rename.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
        let temporary = self.path.join(format!(".{name}.tmp"));
        let target = self.path.join(name);
        std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, &target))
            .map_err(|source| TrainError::Io {
                path: target,
                source,
            })
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, TrainError> {
        let path = self.path.join(name);
        std::fs::read(&path).map_err(|source| TrainError::Io { path, source })
    }

    pub fn write_graph(&self, graph: &ModelGraph) -> Result<(), TrainError> {
        let text = serde_yaml::to_string(graph).map_err(|e| TrainError::Invalid(e.to_string()))?;
        self.write(GRAPH, text.as_bytes())
    }

    pub fn read_graph(&self) -> Result<ModelGraph, TrainError> {
        let bytes = self.read(GRAPH)?;
        serde_yaml::from_slice(&bytes)
            .map_err(|e| TrainError::Invalid(format!("`{}`: {e}", self.path.join(GRAPH).display())))
    }

    /// Writes the weights, the history and the loss plot of `outcome`.
    pub fn write_outcome(&self, graph: &ModelGraph, outcome: &Outcome) -> Result<(), TrainError> {
        let parameters = outcome.model.named_parameters();
        self.write(
            WEIGHTS,
            &checkpoint::encode(&graph.model, &parameters, &outcome.standardizer)?,
        )?;
        self.write(HISTORY, history_csv(&outcome.history).as_bytes())?;
        // The plotting backend picks the image format from the extension.
        let temporary = self.path.join(".loss.tmp.png");
        let title = format!("{}: loss", graph.model);
        plot::draw_losses(&title, &outcome.history, &temporary)?;
        let target = self.path.join("loss.png");
        std::fs::rename(&temporary, &target).map_err(|source| TrainError::Io {
            path: target,
            source,
        })
    }

    /// Writes `rollout.csv`, `phase.png` and `energy.png` of a dynamics model's
    /// evaluation on `system`.
    pub fn write_rollouts(
        &self,
        graph: &ModelGraph,
        evaluation: &Evaluation,
        system: &dyn System,
    ) -> Result<(), TrainError> {
        let r = &evaluation.rollouts;
        let mut text = String::from("start,t,energy_true,energy_learned");
        for source in ["true", "learned"] {
            for i in 0..r.dim {
                let _ = write!(text, ",{source}.{i}");
            }
        }
        text.push('\n');
        for start in 0..r.starts {
            for (k, t) in r.times.iter().enumerate() {
                let (truth, learned) = (r.state(false, k, start), r.state(true, k, start));
                let _ = write!(
                    text,
                    "{start},{t:e},{:e},{:e}",
                    system.energy(truth),
                    system.energy(learned)
                );
                for v in truth.iter().chain(learned) {
                    let _ = write!(text, ",{v:e}");
                }
                text.push('\n');
            }
        }
        self.write(ROLLOUT, text.as_bytes())?;
        for (name, draw) in [
            ("phase", plot::draw_phase as plot::Drawing),
            ("energy", plot::draw_energy),
        ] {
            let temporary = self.path.join(format!(".{name}.tmp.png"));
            draw(&graph.model, r, system, &temporary)?;
            let target = self.path.join(format!("{name}.png"));
            std::fs::rename(&temporary, &target).map_err(|source| TrainError::Io {
                path: target,
                source,
            })?;
        }
        Ok(())
    }

    /// The model of `graph` with the folder's weights, and its standardising map.
    pub fn read_model(&self, graph: &ModelGraph) -> Result<(Model, Standardizer), TrainError> {
        self.read_model_on(graph, DeviceKind::Cpu)
    }

    /// [`RunDir::read_model`] with the model on `device`.
    pub fn read_model_on(
        &self,
        graph: &ModelGraph,
        device: DeviceKind,
    ) -> Result<(Model, Standardizer), TrainError> {
        let (parameters, standardizer) = checkpoint::decode(&self.read(WEIGHTS)?)?;
        let mut model = Model::new_on(graph, graph.train.seed, device)?;
        model.load_parameters(&parameters)?;
        Ok((model, standardizer))
    }

    pub fn write_report(&self, report: &Report) -> Result<(), TrainError> {
        let text = serde_yaml::to_string(report).map_err(|e| TrainError::Invalid(e.to_string()))?;
        self.write(REPORT, text.as_bytes())
    }
}

fn history_csv(history: &[Record]) -> String {
    let mut text = String::from("step,train_loss,val_loss,lr\n");
    for r in history {
        // `{:e}` prints the shortest text that reads back as the same f64.
        let _ = writeln!(
            text,
            "{},{:e},{:e},{:e}",
            r.step, r.train_loss, r.val_loss, r.lr
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{tiny_graph, tiny_splits};
    use super::super::{measure_equivariance, train, Predictor};
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("symc-run-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        path
    }

    #[test]
    fn a_run_folder_reads_back_the_model_it_wrote() {
        let (graph, splits) = (tiny_graph(), tiny_splits());
        let outcome = train(&graph, &splits, &mut ()).unwrap();
        let path = scratch("roundtrip");
        let run = RunDir::create(&path).unwrap();
        run.write_graph(&graph).unwrap();
        run.write_outcome(&graph, &outcome).unwrap();
        let options = EquivarianceOptions {
            samples: 3,
            points: 10,
            seed: 0,
        };
        let f = |x: &[f32], rows| outcome.predictor().predict(x, rows);
        let measured = measure_equivariance(&graph, &f, &splits.test, &options).unwrap();
        let report = Report::new(&graph, &outcome, &splits, (&options, &measured)).unwrap();
        run.write_report(&report).unwrap();

        let mut names: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "graph.yaml",
                "history.csv",
                "loss.png",
                "report.yaml",
                "weights.safetensors"
            ]
        );

        let opened = RunDir::open(&path).unwrap();
        let read_graph = opened.read_graph().unwrap();
        assert_eq!(read_graph, graph);
        let (model, standardizer) = opened.read_model(&read_graph).unwrap();
        assert_eq!(standardizer, outcome.standardizer);
        let x = &splits.test.x;
        let again = Predictor {
            model: &model,
            standardizer: &standardizer,
        };
        assert_eq!(
            again.predict(x, 10).unwrap(),
            outcome.predictor().predict(x, 10).unwrap()
        );

        let history = std::fs::read_to_string(path.join("history.csv")).unwrap();
        let rows: Vec<&str> = history.lines().collect();
        assert_eq!(rows.len(), outcome.history.len() + 1);
        let last: Vec<f64> = rows
            .last()
            .unwrap()
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        let record = outcome.history.last().unwrap();
        assert_eq!(
            last,
            [
                record.step as f64,
                record.train_loss,
                record.val_loss,
                record.lr
            ]
        );

        let read_report: Report =
            serde_yaml::from_str(&std::fs::read_to_string(path.join("report.yaml")).unwrap())
                .unwrap();
        assert_eq!(read_report, report);
        let test_mse = read_report.test_mse.unwrap();
        assert_eq!(test_mse, outcome.predictor().mse(&splits.test).unwrap());
        assert!(read_report.equivariance_error["O3"] > 0.0);
        assert!(
            RunDir::create(&path).is_err(),
            "a folder holding a run is refused"
        );
        std::fs::remove_dir_all(&path).unwrap();
    }

    #[test]
    fn a_folder_without_a_run_is_not_opened() {
        let path = scratch("empty");
        std::fs::create_dir_all(&path).unwrap();
        let err = RunDir::open(&path).unwrap_err().to_string();
        assert!(err.contains("is not a run folder"), "{err}");
        std::fs::remove_dir_all(&path).unwrap();
    }
}
