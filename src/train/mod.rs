//! Training: the loop over the backend's optimiser steps, checkpoints, run
//! folders, reports and the measured symmetry certificate.
//!
//! [`train`] runs a compiled graph on its data the way EMLP's data-efficiency
//! study does: seeded minibatch shuffles, one validation per epoch (a pass over
//! the training set), and the parameters of the best validation loss kept as the
//! result. Inputs and targets are standardised first by
//! [`Standardizer`](crate::data::Standardizer), a map that keeps the symmetry;
//! every reported error is measured back in the data's own units.
//!
//! The library never prints: progress goes to a [`Progress`] the caller
//! implements, results come back as values. [`RunDir`] writes and reads the run
//! folder `symc train` leaves behind.

mod checkpoint;
pub mod dynamics;
mod equivariance;
mod metrics;
pub(crate) mod plot;
mod run;
mod schedule;

#[cfg(test)]
pub(crate) mod fixtures;

pub use equivariance::{measure_equivariance, EquivarianceOptions, Measurement};
pub use metrics::Predictor;
pub use run::{Report, RunDir};
pub use schedule::Schedule;

use crate::backend::{BackendError, Batch, Model, NamedTensor};
use crate::data::{DataError, Splits, Standardizer, Table};
use crate::plan::ModelGraph;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

/// One validation point of a run: the state after `step` optimiser steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    pub step: usize,
    /// Mean training objective over the epoch's minibatches (standardised units).
    pub train_loss: f64,
    /// Training objective on the validation set (standardised units).
    pub val_loss: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
}

/// What a caller is told while a run goes on.
pub trait Progress {
    /// After each optimiser step (`step` counts from 1 to `total`).
    fn step(&mut self, step: usize, total: usize, loss: f64);
    /// After each validation.
    fn validated(&mut self, record: &Record);
}

/// Ignores everything.
impl Progress for () {
    fn step(&mut self, _: usize, _: usize, _: f64) {}
    fn validated(&mut self, _: &Record) {}
}

/// A finished (or stopped) run: the model at its best validation checkpoint.
pub struct Outcome {
    pub model: Model,
    pub standardizer: Standardizer,
    pub history: Vec<Record>,
    /// The step of the kept checkpoint (0: the initial parameters).
    pub best_step: usize,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Wall-clock time of the loop.
    pub seconds: f64,
}

impl Outcome {
    /// The model as a function of the data's original units.
    pub fn predictor(&self) -> Predictor<'_> {
        Predictor {
            model: &self.model,
            standardizer: &self.standardizer,
        }
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outcome")
            .field("parameters", &self.model.parameter_count())
            .field("history", &self.history.len())
            .field("best_step", &self.best_step)
            .field("steps", &self.steps)
            .finish()
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A loss or gradient became NaN or infinite. `partial` holds the run up to
    /// the last good checkpoint.
    #[error("training diverged at step {step}: {cause}; the checkpoint of step {} is kept", partial.best_step)]
    Diverged {
        step: usize,
        cause: String,
        partial: Box<Outcome>,
    },
    #[error("cannot access `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Trains `graph` on `splits` with the settings of `graph.train`.
///
/// Same graph, data and seed give bit-identical histories: the backend is
/// deterministic on the CPU and the shuffles come from `graph.train.seed`.
pub fn train(
    graph: &ModelGraph,
    splits: &Splits,
    progress: &mut dyn Progress,
) -> Result<Outcome, TrainError> {
    let settings = &graph.train;
    let schedule = Schedule::parse(&settings.schedule).map_err(TrainError::Invalid)?;
    let standardizer =
        Standardizer::fit(&splits.train, &graph.inputs, &graph.outputs, &graph.task)?;
    let train_set = standardizer.apply(&splits.train);
    let val_set = standardizer.apply(&splits.val);
    if train_set.rows == 0 {
        return Err(TrainError::Invalid("the training set is empty".into()));
    }
    let batch = match settings.batch {
        Some(0) => {
            return Err(TrainError::Invalid(
                "the batch size must be positive".into(),
            ))
        }
        Some(b) => b.min(train_set.rows),
        None => train_set.rows,
    };
    let model = Model::new(graph, settings.seed)?;
    // The initial parameters are the checkpoint to fall back on until a validation passes.
    let initial = Checkpoint {
        val_loss: f64::INFINITY,
        step: 0,
        parameters: model.named_parameters(),
    };
    let mut run = Run {
        model,
        standardizer,
        history: Vec::new(),
        best: initial,
        start: Instant::now(),
        step: 0,
    };
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let mut order: Vec<usize> = (0..train_set.rows).collect();
    let total = settings.steps;
    while run.step < total {
        order.shuffle(&mut rng);
        let (mut sum, mut count, mut lr) = (0.0, 0, settings.lr);
        for rows in order.chunks(batch).take(total - run.step) {
            let minibatch = train_set.select(rows);
            lr = schedule.rate(settings.lr, run.step, total);
            let losses = match run.model.train_step(&batch_of(&minibatch), lr) {
                Ok(losses) => losses,
                Err(BackendError::NonFinite { what }) => {
                    let cause = bad_term(&run.model, &minibatch).unwrap_or(what);
                    let step = run.step + 1;
                    return Err(run.diverged(step, cause));
                }
                Err(e) => return Err(e.into()),
            };
            run.step += 1;
            sum += losses.total;
            count += 1;
            progress.step(run.step, total, losses.total);
        }
        let validation = if val_set.rows > 0 {
            &val_set
        } else {
            &train_set
        };
        let val_loss = run.model.evaluate(&batch_of(validation))?.total;
        if !val_loss.is_finite() {
            let cause =
                bad_term(&run.model, validation).unwrap_or_else(|| "validation loss".into());
            let step = run.step;
            return Err(run.diverged(step, format!("{cause} on the validation set")));
        }
        let record = Record {
            step: run.step,
            train_loss: sum / count as f64,
            val_loss,
            lr,
        };
        run.history.push(record);
        progress.validated(&record);
        if val_loss < run.best.val_loss {
            run.best = Checkpoint {
                val_loss,
                step: run.step,
                parameters: run.model.named_parameters(),
            };
        }
    }
    run.finish()
}

fn batch_of(table: &Table) -> Batch<'_> {
    Batch {
        x: &table.x,
        y: &table.y,
        rows: table.rows,
    }
}

/// Names the first loss term that is not finite on `table`, with its value.
fn bad_term(model: &Model, table: &Table) -> Option<String> {
    let losses = model.evaluate(&batch_of(table)).ok()?;
    let (name, value) = losses.terms.into_iter().find(|(_, v)| !v.is_finite())?;
    Some(format!("loss term `{name}` is {value}"))
}

struct Checkpoint {
    val_loss: f64,
    step: usize,
    parameters: Vec<NamedTensor>,
}

/// The state of a run in progress.
struct Run {
    model: Model,
    standardizer: Standardizer,
    history: Vec<Record>,
    best: Checkpoint,
    start: Instant,
    step: usize,
}

impl Run {
    /// Restores the best checkpoint and hands the run over.
    fn finish(mut self) -> Result<Outcome, TrainError> {
        self.model.load_parameters(&self.best.parameters)?;
        Ok(Outcome {
            model: self.model,
            standardizer: self.standardizer,
            history: self.history,
            best_step: self.best.step,
            steps: self.step,
            seconds: self.start.elapsed().as_secs_f64(),
        })
    }

    /// The error for a loss that went bad at `step`, keeping the last good checkpoint.
    fn diverged(self, step: usize, cause: String) -> TrainError {
        match self.finish() {
            Ok(partial) => TrainError::Diverged {
                step,
                cause,
                partial: Box::new(partial),
            },
            Err(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{tiny_graph, tiny_splits};
    use super::*;

    #[derive(Default)]
    struct Recorder {
        steps: Vec<(usize, f64)>,
        records: Vec<Record>,
    }

    impl Progress for Recorder {
        fn step(&mut self, step: usize, total: usize, loss: f64) {
            assert!(step <= total);
            self.steps.push((step, loss));
        }
        fn validated(&mut self, record: &Record) {
            self.records.push(*record);
        }
    }

    #[test]
    fn same_seed_gives_bit_identical_histories() {
        let (graph, splits) = (tiny_graph(), tiny_splits());
        let (mut a, mut b) = (Recorder::default(), Recorder::default());
        let first = train(&graph, &splits, &mut a).unwrap();
        train(&graph, &splits, &mut b).unwrap();
        let bits = |r: &Recorder| {
            r.steps
                .iter()
                .map(|(s, l)| (*s, l.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&a), bits(&b));
        assert_eq!(a.records, b.records);
        // 40 rows in batches of 16 make epochs of 3 steps; 20 steps end mid-epoch.
        assert_eq!(a.steps.len(), 20);
        let validated: Vec<usize> = a.records.iter().map(|r| r.step).collect();
        assert_eq!(validated, [3, 6, 9, 12, 15, 18, 20]);
        let best = a
            .records
            .iter()
            .min_by(|x, y| x.val_loss.total_cmp(&y.val_loss))
            .unwrap();
        assert_eq!(first.best_step, best.step);
        assert!(a.records.last().unwrap().train_loss < a.records[0].train_loss);

        let mut other = graph.clone();
        other.train.seed = 1;
        let mut c = Recorder::default();
        train(&other, &splits, &mut c).unwrap();
        assert_ne!(bits(&a), bits(&c));
    }

    #[test]
    fn the_kept_model_is_the_best_validation_checkpoint() {
        let (graph, splits) = (tiny_graph(), tiny_splits());
        let mut recorder = Recorder::default();
        let outcome = train(&graph, &splits, &mut recorder).unwrap();
        let best = recorder
            .records
            .iter()
            .find(|r| r.step == outcome.best_step)
            .unwrap();
        let val = outcome.standardizer.apply(&splits.val);
        let loss = outcome.model.evaluate(&batch_of(&val)).unwrap().total;
        assert_eq!(loss.to_bits(), best.val_loss.to_bits());
    }

    #[test]
    fn cosine_schedule_reaches_the_records() {
        let mut graph = tiny_graph();
        graph.train.schedule = "cosine".into();
        let mut recorder = Recorder::default();
        train(&graph, &tiny_splits(), &mut recorder).unwrap();
        let expected = Schedule::Cosine.rate(graph.train.lr, 19, 20);
        assert_eq!(recorder.records.last().unwrap().lr, expected);
        graph.train.schedule = "warmup".into();
        let err = train(&graph, &tiny_splits(), &mut ()).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown learning-rate schedule `warmup`"),
            "{err}"
        );
    }

    #[test]
    fn a_diverging_run_names_step_and_term_and_keeps_the_last_good_checkpoint() {
        let mut graph = tiny_graph();
        // Adam moves every weight by about `lr` on the first step: 1e30 overflows f32 at once,
        // so the second minibatch's loss is infinite.
        graph.train.lr = 1e30;
        let err = train(&graph, &tiny_splits(), &mut ()).unwrap_err();
        let TrainError::Diverged {
            step,
            cause,
            partial,
        } = err
        else {
            panic!("expected divergence, got {err}");
        };
        assert_eq!(step, 2, "{cause}");
        assert_eq!(cause, "loss term `mse` is inf");
        assert_eq!((partial.best_step, partial.steps), (0, 1));

        // With full batches the first validation catches it, after step 1.
        graph.train.batch = None;
        let err = train(&graph, &tiny_splits(), &mut ()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "training diverged at step 1: loss term `mse` is inf on the validation set; \
             the checkpoint of step 0 is kept"
        );
        let x = tiny_splits().test.x;
        assert!(partial
            .predictor()
            .predict(&x, x.len() / 6)
            .unwrap()
            .iter()
            .all(|v| v.is_finite()));
    }
}
