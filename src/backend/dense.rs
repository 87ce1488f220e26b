//! A graph that is a plain multilayer perceptron trained on squared error —
//! `Input → Linear → σ → … → Linear`, one activation kind, every layer with a
//! bias — runs on the CPU as one fused network instead of on dfdx's tape.
//!
//! The tape costs such a network more than its products do: every layer
//! allocates and zeroes its output and gradients each step and copies its
//! input to the host. Here the forward cache and the gradients live in
//! buffers reused across steps, and a large batch runs as two halves, one per
//! thread, each doing its whole forward and backward pass without waiting on
//! the other. The split depends only on the batch size, so a step gives the
//! same bits on any number of threads.
//!
//! Parameters keep the layered runner's names (`n{node}.weight`, `n{node}.bias`),
//! shapes and initial values, so runs and weight files are interchangeable
//! between the two.

use super::flat::TensorTable;
use super::physics::{zeroed, Mlp, MlpCache, MlpScratch};
use super::{AdamW, BackendError, Batch, Layered, LossBreakdown, NamedTensor, PAR_LEN, SPLIT_ROWS};
use crate::plan::{Activation, LossKind, ModelGraph, Op, Task};
use dfdx::prelude::*;
use rayon::prelude::*;

/// The fused network with its loss weights and step buffers.
#[derive(Debug)]
pub(crate) struct DenseChain {
    mlp: Mlp,
    table: TensorTable,
    /// The weights of the graph's `mse` terms, in order.
    weights: Vec<f64>,
    halves: [Half; 2],
    grad: Vec<f32>,
}

/// One half batch's forward cache, outputs and parameter gradient.
#[derive(Debug, Default)]
struct Half {
    cache: MlpCache,
    scratch: MlpScratch,
    residual: Vec<f32>,
    grad: Vec<f32>,
}

impl Half {
    /// Forward and backward on `batch` for a loss `weight`·Σ(f − y)² / `count`;
    /// returns Σ(f − y)² over its rows.
    fn run(&mut self, mlp: &Mlp, batch: &Batch<'_>, weight: f32, count: usize) -> f64 {
        let Batch { x, y, rows } = *batch;
        let grad = zeroed(&mut self.grad, mlp.params.len());
        let scale = 2.0 * weight / count as f32;
        mlp.squared_error(
            (x, y, rows),
            scale,
            &mut self.cache,
            &mut self.scratch,
            &mut self.residual,
            grad,
        )
    }
}

impl DenseChain {
    /// The fused network of `graph` when the graph is such a chain, starting
    /// from the parameters the layered runner draws from `seed`; `None` for
    /// any other graph.
    pub(crate) fn from_graph(graph: &ModelGraph, seed: u64) -> Result<Option<Self>, BackendError> {
        let Some((sizes, act)) = chain(graph) else {
            return Ok(None);
        };
        let weights: Vec<f64> = graph.losses.iter().map(|t| t.weight).collect();
        let initial = Layered::new(graph, Cpu::seed_from_u64(seed), seed)?.named_parameters();
        let mut params = Vec::with_capacity(graph.parameters);
        let mut tensors = Vec::with_capacity(initial.len());
        for t in initial {
            let start = params.len();
            params.extend_from_slice(&t.data);
            tensors.push((t.name, t.shape, start..params.len()));
        }
        Ok(Some(DenseChain {
            grad: vec![0.0; params.len()],
            mlp: Mlp { sizes, act, params },
            table: TensorTable::new(tensors),
            weights,
            halves: Default::default(),
        }))
    }

    pub(crate) fn tensor_lengths(&self) -> impl Iterator<Item = usize> + '_ {
        self.table.lengths()
    }

    pub(crate) fn parameter_count(&self) -> usize {
        self.mlp.params.len()
    }

    fn out_dim(&self) -> usize {
        self.mlp.sizes[self.mlp.layers()]
    }

    /// Checks `rows` inputs in `x` and, when given, their targets `y`.
    fn check(&self, x: &[f32], y: Option<&[f32]>, rows: usize) -> Result<(), BackendError> {
        let mismatch = |what: &str, expected: usize, found: usize| BackendError::ShapeMismatch {
            what: what.into(),
            expected,
            found,
        };
        if rows == 0 {
            return Err(mismatch("batch rows (must be positive)", 1, 0));
        }
        let inp = rows * self.mlp.sizes[0];
        if x.len() != inp {
            return Err(mismatch("input values", inp, x.len()));
        }
        match y {
            Some(y) if y.len() != rows * self.out_dim() => Err(mismatch(
                "regression targets",
                rows * self.out_dim(),
                y.len(),
            )),
            _ => Ok(()),
        }
    }

    pub(crate) fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>, BackendError> {
        self.check(x, None, rows)?;
        Ok(self.mlp.eval(x, rows))
    }

    /// The loss terms for mean squared error `mse`.
    fn breakdown(&self, mse: f64) -> LossBreakdown {
        let terms: Vec<(String, f64)> = self
            .weights
            .iter()
            .map(|w| ("mse".into(), w * mse))
            .collect();
        LossBreakdown {
            total: terms.iter().map(|(_, v)| v).sum(),
            terms,
        }
    }

    pub(crate) fn evaluate(&self, batch: &Batch<'_>) -> Result<LossBreakdown, BackendError> {
        self.check(batch.x, Some(batch.y), batch.rows)?;
        let pred = self.mlp.eval(batch.x, batch.rows);
        let sse: f64 = pred
            .iter()
            .zip(batch.y)
            .map(|(p, y)| f64::from((p - y) * (p - y)))
            .sum();
        Ok(self.breakdown(sse / pred.len() as f64))
    }

    /// One AdamW step; the losses returned are those before it. A non-finite
    /// loss or gradient is an error and leaves the parameters unchanged.
    pub(crate) fn train_step(
        &mut self,
        batch: &Batch<'_>,
        lr: f64,
        adam: &mut AdamW,
    ) -> Result<LossBreakdown, BackendError> {
        let Batch { x, y, rows } = *batch;
        self.check(x, Some(y), rows)?;
        let out = self.out_dim();
        let weight = self.weights.iter().sum::<f64>() as f32;
        let count = rows * out;
        let mlp = &self.mlp;
        let [first, second] = &mut self.halves;
        let sse = if rows >= SPLIT_ROWS {
            // Each half divides by the whole batch's count, so their gradients add up unweighted.
            let [(b0, _), (b1, _)] = batch.halves();
            let (a, b) = rayon::join(
                || first.run(mlp, &b0, weight, count),
                || second.run(mlp, &b1, weight, count),
            );
            (self.grad.par_chunks_mut(PAR_LEN))
                .zip(first.grad.par_chunks(PAR_LEN))
                .zip(second.grad.par_chunks(PAR_LEN))
                .for_each(|((g, a), b)| {
                    (g.iter_mut().zip(a).zip(b)).for_each(|((g, a), b)| *g = a + b)
                });
            a + b
        } else {
            let sse = first.run(mlp, batch, weight, count);
            self.grad.copy_from_slice(&first.grad);
            sse
        };
        let breakdown = self.breakdown(sse / count as f64);
        if !breakdown.total.is_finite() {
            return Err(BackendError::NonFinite {
                what: "loss".into(),
            });
        }
        self.table
            .step(&mut self.mlp.params, &self.grad, lr, adam)?;
        Ok(breakdown)
    }

    pub(crate) fn named_parameters(&self) -> Vec<NamedTensor> {
        self.table.named(&self.mlp.params)
    }

    pub(crate) fn load_parameters(&mut self, tensors: &[NamedTensor]) -> Result<(), BackendError> {
        self.table.load(&mut self.mlp.params, tensors)
    }
}

/// The layer widths and activation of `graph` when it is a chain this module
/// runs: not a classifier, only `mse` loss terms, and nodes `Input`, then
/// `Linear` (with bias) and one activation kind alternating, ending in a
/// `Linear` that is the output.
fn chain(graph: &ModelGraph) -> Option<(Vec<usize>, Activation)> {
    if matches!(graph.task, Task::Classification { .. })
        || graph.losses.is_empty()
        || graph.losses.iter().any(|t| t.kind != LossKind::Mse)
    {
        return None;
    }
    let (first, rest) = graph.nodes.split_first()?;
    if first.op != Op::Input {
        return None;
    }
    let mut sizes = vec![first.out_dim];
    let mut act = None;
    let mut previous = first.id;
    // Whether the last node is a `Linear`, which the next must activate unless it is the output.
    let mut open = false;
    for node in rest {
        if node.inputs != [previous] {
            return None;
        }
        match node.op {
            Op::Linear {
                inp,
                out,
                bias: true,
                ..
            } if !open && inp == *sizes.last()? => {
                sizes.push(out);
                open = true;
            }
            Op::Activation { kind } if open && act.map_or(true, |a| a == kind) => {
                act = Some(kind);
                open = false;
            }
            _ => return None,
        }
        previous = node.id;
    }
    // A lone `Linear` has no activation; the network never applies the one named here.
    (open && previous == graph.output).then_some((sizes, act.unwrap_or(Activation::Tanh)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{graph, mlp, regression_data};
    use super::*;
    use crate::plan::{LinearInit, Node};

    fn net(act: Activation) -> ModelGraph {
        mlp(2, &[6, 4], 3, act, Task::Regression, LossKind::Mse)
    }

    /// Rows of inputs and of three targets.
    fn data(rows: usize) -> (Vec<f32>, Vec<f32>) {
        let (x, y) = regression_data(rows);
        let y3 = y.iter().flat_map(|v| [*v, v.cos(), -0.5 * v]).collect();
        (x, y3)
    }

    #[test]
    fn starts_from_the_layered_parameters_and_computes_the_same_function() {
        let g = net(Activation::Swish);
        let chain = DenseChain::from_graph(&g, 4).unwrap().expect("a plain MLP");
        let layered = Layered::new(&g, Cpu::seed_from_u64(4), 4).unwrap();
        assert_eq!(chain.named_parameters(), layered.named_parameters());
        let (x, y) = data(9);
        let (a, b) = (
            chain.forward(&x, 9).unwrap(),
            layered.forward(&x, 9).unwrap(),
        );
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
        let batch = Batch {
            x: &x,
            y: &y,
            rows: 9,
        };
        let (a, b) = (
            chain.evaluate(&batch).unwrap(),
            layered.evaluate(&batch).unwrap(),
        );
        assert_eq!(a.terms[0].0, b.terms[0].0);
        assert!((a.total - b.total).abs() < 1e-5 * b.total, "{a:?} vs {b:?}");
    }

    /// The gradient of one step (taken with lr = 0, so nothing moves) against
    /// central differences of the loss, for a batch run whole and one split in halves.
    #[test]
    fn gradients_match_finite_differences_whole_and_split() {
        let g = net(Activation::Softplus);
        for rows in [20, SPLIT_ROWS + 3] {
            let mut chain = DenseChain::from_graph(&g, 1).unwrap().unwrap();
            let (x, y) = data(rows);
            let batch = Batch { x: &x, y: &y, rows };
            let mut adam = AdamW::new(chain.tensor_lengths(), 0.0, None);
            chain.train_step(&batch, 0.0, &mut adam).unwrap();
            let grad = chain.grad.clone();
            let h = 1e-2;
            for i in 0..chain.mlp.params.len() {
                let keep = chain.mlp.params[i];
                let mut at = |v: f32| {
                    chain.mlp.params[i] = v;
                    chain.evaluate(&batch).unwrap().total
                };
                let fd = (at(keep + h) - at(keep - h)) / (2.0 * f64::from(h));
                chain.mlp.params[i] = keep;
                let analytic = f64::from(grad[i]);
                assert!(
                    (fd - analytic).abs() < 2e-3 * (1.0 + fd.abs()),
                    "{rows} rows, θ[{i}]: {fd} vs {analytic}"
                );
            }
        }
    }

    #[test]
    fn the_split_gives_the_whole_batch_gradient() {
        let g = net(Activation::Tanh);
        let rows = 2 * SPLIT_ROWS;
        let (x, y) = data(rows);
        let mut chain = DenseChain::from_graph(&g, 2).unwrap().unwrap();
        let mut adam = AdamW::new(chain.tensor_lengths(), 0.0, None);
        let batch = Batch { x: &x, y: &y, rows };
        let split = chain.train_step(&batch, 0.0, &mut adam).unwrap();
        let mut whole = Half::default();
        let sse = whole.run(&chain.mlp, &batch, 1.0, rows * 3);
        assert!((split.total - sse / (rows * 3) as f64).abs() < 1e-9 * split.total);
        for (a, b) in chain.grad.iter().zip(&whole.grad) {
            assert!((a - b).abs() <= 1e-6 * (1e-3 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn a_step_gives_the_same_bits_on_any_number_of_threads() {
        let g = net(Activation::Swish);
        let rows = SPLIT_ROWS + 40;
        let (x, y) = data(rows);
        let batch = Batch { x: &x, y: &y, rows };
        let run = |threads: usize| {
            crate::backend::kernels::on_threads(threads, || {
                let mut chain = DenseChain::from_graph(&g, 3).unwrap().unwrap();
                let mut adam = AdamW::new(chain.tensor_lengths(), 0.01, None);
                let losses: Vec<u64> = (0..3)
                    .map(|_| {
                        chain
                            .train_step(&batch, 1e-2, &mut adam)
                            .unwrap()
                            .total
                            .to_bits()
                    })
                    .collect();
                let params: Vec<u32> = chain.mlp.params.iter().map(|v| v.to_bits()).collect();
                (losses, params)
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }

    #[test]
    fn other_graphs_are_left_to_the_layered_runner() {
        let plain = net(Activation::Tanh);
        assert!(chain(&plain).is_some());
        let classifier = mlp(
            2,
            &[4],
            3,
            Activation::Tanh,
            Task::Classification { classes: 3 },
            LossKind::CrossEntropy,
        );
        let mut no_bias = plain.clone();
        no_bias.nodes[3].op = Op::Linear {
            inp: 6,
            out: 4,
            bias: false,
            init: LinearInit::Uniform,
        };
        let mut mixed = plain.clone();
        mixed.nodes[4].op = Op::Activation {
            kind: Activation::Relu,
        };
        let mut penalised = plain.clone();
        penalised.losses.push(crate::plan::LossTerm {
            kind: LossKind::LieDerivative { group: "G".into() },
            weight: 0.1,
        });
        let mut ends_in_activation = net(Activation::Tanh);
        let last = ends_in_activation.nodes.len();
        ends_in_activation.nodes.push(Node::new(
            last,
            Op::Activation {
                kind: Activation::Tanh,
            },
            vec![last - 1],
            3,
            0,
        ));
        ends_in_activation.output = last;
        let single = graph(
            2,
            vec![
                Node::new(0, Op::Input, vec![], 2, 0),
                Node::new(
                    1,
                    Op::Linear {
                        inp: 2,
                        out: 1,
                        bias: true,
                        init: LinearInit::Uniform,
                    },
                    vec![0],
                    1,
                    3,
                ),
            ],
            Task::Regression,
            LossKind::Mse,
            0.0,
        );
        assert!(chain(&single).is_some());
        for (what, g) in [
            ("classifier", classifier),
            ("no bias", no_bias),
            ("mixed activations", mixed),
            ("penalty term", penalised),
            ("activation last", ends_in_activation),
        ] {
            assert!(chain(&g).is_none(), "{what}");
        }
    }
}
