//! Training: the loop over the backend's optimiser steps, checkpoints, run
//! folders, reports and the measured symmetry certificate.
//!
//! [`train`] runs a compiled graph on its data the way EMLP's data-efficiency
//! study does: seeded minibatch shuffles, one validation per epoch (a pass over
//! the training set), and the parameters of the best validation loss kept as the
//! result. Inputs and targets are standardised first by
//! [`Standardizer`](crate::data::Standardizer), a map that keeps the symmetry;
//! every reported error is measured back in the data's own units. A symmetry
//! honoured by `=> augment(samples = k)` adds to every minibatch k copies of
//! it, each row moved by its own random group element g: inputs by ρ_in(g),
//! regression targets by ρ_out(g).
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

use crate::backend::{BackendError, Batch, DeviceKind, Model, NamedTensor};
use crate::data::{DataError, Splits, Standardizer, Table};
use crate::group::Group;
use crate::plan::{GroupDef, ModelGraph, Port, Strategy, Task};
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

/// Trains `graph` on `splits` with the settings of `graph.train`, on the CPU.
///
/// Same graph, data and seed give bit-identical histories: the backend is
/// deterministic on the CPU and the shuffles come from `graph.train.seed`.
pub fn train(
    graph: &ModelGraph,
    splits: &Splits,
    progress: &mut dyn Progress,
) -> Result<Outcome, TrainError> {
    train_on(graph, splits, DeviceKind::Cpu, progress)
}

/// [`train`] with the model on `device`. The initial parameters, shuffles and
/// augmentations are drawn on the host from the same seed whatever the device.
pub fn train_on(
    graph: &ModelGraph,
    splits: &Splits,
    device: DeviceKind,
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
    let model = Model::new_on(graph, settings.seed, device)?;
    let augmenters = Augmenter::all(graph)?;
    // A stream of its own, so augmenting leaves the shuffles as they were.
    let mut augment_rng = StdRng::seed_from_u64(settings.seed ^ AUGMENT_STREAM);
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
            let mut minibatch = train_set.select(rows);
            for a in &augmenters {
                minibatch = a.augment(&minibatch, &mut augment_rng)?;
            }
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

/// Distinguishes the augmentation stream's seed from the shuffles'.
const AUGMENT_STREAM: u64 = 0x0061_7567_6d65_6e74;

/// Adds randomly transformed copies of a minibatch, for one `augment` clause.
struct Augmenter {
    inputs: Vec<Port>,
    outputs: Vec<Port>,
    /// Regression targets move with the group; class labels do not.
    moves_targets: bool,
    def: GroupDef,
    group: Group,
    copies: usize,
}

impl Augmenter {
    /// One augmenter per `=> augment(...)` clause on a group of `graph`.
    fn all(graph: &ModelGraph) -> Result<Vec<Augmenter>, TrainError> {
        let mut out = Vec::new();
        for plan in &graph.symmetries {
            let Strategy::Augment { samples } = plan.strategy else {
                continue;
            };
            let def = graph
                .groups
                .iter()
                .find(|g| g.name == plan.symmetry)
                .ok_or_else(|| {
                    TrainError::Invalid(format!(
                        "`{}` => augment: only a declared group can transform the data",
                        plan.symmetry
                    ))
                })?;
            out.push(Augmenter {
                inputs: graph.inputs.clone(),
                outputs: graph.outputs.clone(),
                moves_targets: graph.task == Task::Regression,
                group: equivariance::rebuild(def)?,
                def: def.clone(),
                copies: samples,
            });
        }
        Ok(out)
    }

    /// `table` followed by `copies` transformed copies of it.
    fn augment(&self, table: &Table, rng: &mut StdRng) -> Result<Table, TrainError> {
        let mut out = table.clone();
        for _ in 0..self.copies {
            for i in 0..table.rows {
                let g = self.group.sample(rng);
                let rho_in = equivariance::block_action(&self.inputs, &self.def, &g)?;
                out.x.extend(act(&rho_in, table.x_row(i))?);
                let y = &table.y[i * table.y_dim..(i + 1) * table.y_dim];
                if self.moves_targets {
                    let rho_out = equivariance::block_action(&self.outputs, &self.def, &g)?;
                    out.y.extend(act(&rho_out, y)?);
                } else {
                    out.y.extend_from_slice(y);
                }
            }
        }
        out.rows = table.rows * (self.copies + 1);
        Ok(out)
    }
}

/// `m·v`, in f64 and back.
fn act(m: &nalgebra::DMatrix<f64>, v: &[f32]) -> Result<Vec<f32>, TrainError> {
    if m.ncols() != v.len() {
        return Err(TrainError::Invalid(format!(
            "a group action on {} components met a row of {}",
            m.ncols(),
            v.len()
        )));
    }
    let v = nalgebra::DVector::from_iterator(v.len(), v.iter().map(|&x| x as f64));
    Ok((m * v).iter().map(|&x| x as f32).collect())
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
    fn augmentation_appends_rotated_copies_of_each_minibatch() {
        let mut graph = tiny_graph();
        graph.symmetries[0].strategy = Strategy::Augment { samples: 2 };
        let augmenters = Augmenter::all(&graph).unwrap();
        assert_eq!(augmenters.len(), 1);
        let table = tiny_splits().train.select(&[0, 1, 2, 3]);
        let mut rng = StdRng::seed_from_u64(0);
        let out = augmenters[0].augment(&table, &mut rng).unwrap();
        assert_eq!((out.rows, out.x.len(), out.y.len()), (12, 72, 12));
        assert_eq!(out.x[..24], table.x[..]);
        // O(3) keeps |a|², |b|² and a·b of each row, and the invariant target.
        let invariants = |r: &[f32]| {
            let dot = |u: &[f32], v: &[f32]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f32>();
            [
                dot(&r[..3], &r[..3]),
                dot(&r[3..], &r[3..]),
                dot(&r[..3], &r[3..]),
            ]
        };
        for copy in 1..3 {
            for i in 0..4 {
                let (row, moved) = (table.x_row(i), out.x_row(copy * 4 + i));
                assert!(row.iter().zip(moved).any(|(a, b)| (a - b).abs() > 1e-3));
                for (a, b) in invariants(row).iter().zip(invariants(moved)) {
                    assert!((a - b).abs() < 1e-4 * (1.0 + a.abs()), "{a} vs {b}");
                }
                assert_eq!(out.y[copy * 4 + i], table.y[i]);
            }
        }
        let outcome = train(&graph, &tiny_splits(), &mut ()).unwrap();
        assert_eq!(outcome.steps, graph.train.steps);
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
