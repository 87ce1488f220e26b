//! The `latent` method (Krippendorf & Syvaeri 2020; Caselles-Dupré et al.
//! 2019): for pairs (x, x′) whose transformation acts nonlinearly on the
//! observations, learn an encoder E: Rᵐ → Rᵈ, a decoder D: Rᵈ → Rᵐ and
//! generators G₁…G_k acting linearly on the codes, with one coefficient
//! vector tₚ per pair as in the `operator` method.
//!
//! With zₚ = E(xₚ), z′ₚ = E(x′ₚ) and Mₚ = exp(Σᵢ tₚᵢ Ĝᵢ), the objective is
//!
//! ℓ = (1/N) Σₚ [‖D(zₚ) − xₚ‖² + ‖D(z′ₚ) − x′ₚ‖²]   reconstruction
//!   + (1/N) Σₚ ‖Mₚzₚ − z′ₚ‖²                       transport
//!   + (1/N) Σₚ ‖D(Mₚzₚ) − x′ₚ‖²                    prediction
//!   + ‖S − I‖²_F,  S = (1/2N) Σ (zzᵀ + z′z′ᵀ)        whitening
//!   + λ Σ_{i<j} ⟨Ĝᵢ, Ĝⱼ⟩²                          duplicates
//!
//! **Why whitening guards against collapse.** Reconstruction alone does not
//! keep the codes from collapsing: shrinking every code by ε and growing the
//! decoder's first weights by 1/ε keeps the reconstruction and scales the
//! transport term by ε², so the fit drifts towards E ≡ 0 where every G
//! transports perfectly. Pinning the codes' second moment at the identity
//! fixes that scale. It also fixes most of the latent basis, which any
//! invertible linear map could otherwise change (absorbed by E and D, with G
//! conjugated): only orthogonal maps keep S = I, and they keep an
//! antisymmetric G antisymmetric. When the data are spread invariantly under
//! a compact flow, the invariant inner product is the whitened one, so the
//! learned generator comes out antisymmetric and the analysis can name its
//! algebra. The moment is taken about the origin rather than the mean
//! because the flows fix the origin: subtracting a mean would not commute
//! with them. Batch-normalising the codes would fix the scale too, but would
//! make each code depend on the whole batch, and the validation codes on the
//! validation batch.
//!
//! The networks are the backend's dense [`Mlp`]; the chain rule between
//! them is written out here: the decoder's input gradient at Mₚzₚ gives
//! ∂ℓ/∂Mₚ and ∂ℓ/∂zₚ, [`expm_vjp`] turns ∂ℓ/∂Mₚ into ∂ℓ/∂Aₚ, which the
//! `operator` method's [`UnitGenerators`] carries to t and G, and the codes'
//! gradient runs back through the encoder. Validation pairs get coefficients
//! of their own, fitted to the transport and prediction terms with the
//! networks and generators held fixed.

use super::expm::{expm, expm_vjp};
use super::fit::{Fit, LossPoint};
use super::operator::{check_pairs, descend, Layout, UnitGenerators};
use super::DiscoverError;
use crate::backend::physics::Init;
use crate::backend::{zeroed, Mlp, MlpCache, MlpScratch};
use crate::data::Table;
use crate::plan::{Activation, ModelGraph, Op};
use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

/// Weight of the whitening term ‖S − I‖²_F.
const WHITENING_WEIGHT: f64 = 1.0;

/// Settings of one latent fit.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentConfig {
    /// How many generators to learn.
    pub generators: usize,
    /// The size d of the codes, on which the generators act.
    pub dim: usize,
    /// The encoder's hidden widths; the decoder has them in reverse order.
    pub hidden: Vec<usize>,
    /// The activation of every hidden layer.
    pub act: Activation,
    /// Full-batch Adam steps.
    pub steps: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Weight λ of the penalty against duplicate generators.
    pub duplicate_weight: f64,
    pub seed: u64,
}

/// The terms of the objective, each a mean over the pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatentTerms {
    /// ‖D(E(x)) − x‖² + ‖D(E(x′)) − x′‖².
    pub reconstruction: f64,
    /// ‖exp(Σ tᵢĜᵢ)E(x) − E(x′)‖².
    pub transport: f64,
    /// ‖D(exp(Σ tᵢĜᵢ)E(x)) − x′‖².
    pub prediction: f64,
    /// ‖S − I‖²_F for the codes' second moment S: keeps the codes from collapsing.
    pub whitening: f64,
}

/// Invariants of one generator under a change of latent basis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spectrum {
    /// Eigenvalues as `[re, im]`, by descending imaginary part.
    pub eigenvalues: Vec<[f64; 2]>,
    /// |tr G| / ‖G‖_F: zero for a generator that keeps volumes.
    pub trace_ratio: f64,
    /// ‖Re λ‖ / ‖Im λ‖ over the eigenvalues: zero for a generator of
    /// rotations (purely imaginary eigenvalues), infinite for a real spectrum.
    pub real_to_imaginary: f64,
}

impl Spectrum {
    /// The spectrum of a square matrix.
    ///
    /// ```
    /// use nalgebra::DMatrix;
    /// use symc::discover::Spectrum;
    /// // The oscillator's flow q̇ = p, ṗ = −4q has eigenvalues ±2i.
    /// let s = Spectrum::new(&DMatrix::from_row_slice(2, 2, &[0.0, 1.0, -4.0, 0.0]));
    /// assert!((s.eigenvalues[0][1] - 2.0).abs() < 1e-12);
    /// assert!(s.real_to_imaginary < 1e-12 && s.trace_ratio == 0.0);
    /// ```
    pub fn new(g: &DMatrix<f64>) -> Spectrum {
        let mut eigenvalues: Vec<[f64; 2]> = g
            .clone()
            .complex_eigenvalues()
            .iter()
            .map(|l| [l.re, l.im])
            .collect();
        eigenvalues.sort_by(|a, b| b[1].total_cmp(&a[1]));
        let norm = |part: usize| eigenvalues.iter().map(|l| l[part] * l[part]).sum::<f64>();
        Spectrum {
            trace_ratio: g.trace().abs() / g.norm().max(f64::MIN_POSITIVE),
            real_to_imaginary: match (norm(0), norm(1)) {
                (re, _) if re == 0.0 => 0.0,
                (_, im) if im == 0.0 => f64::INFINITY,
                (re, im) => (re / im).sqrt(),
            },
            eigenvalues,
        }
    }
}

/// What the latent method measures besides its loss history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatentSummary {
    /// The objective's terms on the training pairs at the last step.
    pub terms: LatentTerms,
    /// Mean ‖x′ − x‖² over the validation pairs: predicting no change.
    pub baseline: f64,
    /// Mean ‖D(exp(Σᵢ t̄ᵢĜᵢ)E(x)) − x′‖² over the validation pairs with t̄ the
    /// training coefficients' mean: a prediction that does not look at x′,
    /// meaningful when every pair is moved by the same transformation.
    pub shared_prediction: f64,
    /// The training coefficients' mean t̄ and standard deviation, per generator.
    pub coefficient_mean: Vec<f64>,
    pub coefficient_std: Vec<f64>,
    /// The spectrum of Σᵢ t̄ᵢĜᵢ, the generator of the mean transformation. It
    /// carries the scale that normalising G removes: for pairs a fixed time
    /// step Δt apart it is the true generator's spectrum times Δt (±iωΔt
    /// for the oscillator), whatever the latent basis.
    pub mean_flow: Spectrum,
    /// The learned generators' spectra (the latent basis is arbitrary;
    /// spectra up to scale are not).
    pub spectra: Vec<Spectrum>,
}

/// A latent fit: the generators and their history, and the summary.
#[derive(Debug, Clone)]
pub struct LatentFit {
    /// The generators and the prediction error as the method's loss.
    pub fit: Fit,
    /// The terms, baselines and spectra of the last step.
    pub summary: LatentSummary,
}

/// The encoder's hidden widths and activation as the planner laid the
/// autoencoder out: after the input, `Linear` and `Activation` nodes up to
/// the first `Linear` that no activation follows, the code.
pub(super) fn encoder_shape(graph: &ModelGraph) -> Result<(Vec<usize>, Activation), DiscoverError> {
    let mut hidden = Vec::new();
    let mut act = Activation::Tanh;
    let mut layers = graph.nodes.iter().skip(1).map(|n| &n.op).peekable();
    while let Some(Op::Linear { out, .. }) = layers.next() {
        match layers.peek() {
            Some(Op::Activation { kind }) => {
                hidden.push(*out);
                act = *kind;
                layers.next();
            }
            _ => return Ok((hidden, act)),
        }
    }
    Err(DiscoverError::Invalid(format!(
        "model `{}` has no autoencoder for the latent method; plan it from a spec with `net mlp(...)`",
        graph.model
    )))
}

/// Learns an autoencoder and `config.generators` generators acting on its
/// codes from the pairs of `train`, reporting each step's prediction error
/// (training and validation) to `progress`.
///
/// ```
/// use symc::data::Table;
/// use symc::discover::{fit_latent, LatentConfig};
/// use symc::plan::Activation;
/// // Points of a circle seen through x ↦ (x₀, x₁, x₀x₁), each pair a quarter
/// // radian apart.
/// let see = |a: f32| [a.cos(), a.sin(), a.cos() * a.sin()];
/// let table = |phases: &[f32]| Table {
///     x: phases.iter().flat_map(|&a| see(a)).collect(),
///     y: phases.iter().flat_map(|&a| see(a + 0.25)).collect(),
///     rows: phases.len(), x_dim: 3, y_dim: 3,
/// };
/// let train = table(&(0..40).map(|i| i as f32 * 0.157).collect::<Vec<_>>());
/// let val = table(&[0.3, 2.0, 4.1]);
/// let config = LatentConfig {
///     generators: 1, dim: 2, hidden: vec![8], act: Activation::Tanh,
///     steps: 300, lr: 0.02, duplicate_weight: 1.0, seed: 0,
/// };
/// let found = fit_latent(&train, &val, &config, &mut |_| {}).unwrap();
/// let last = found.fit.history.last().unwrap();
/// assert!(last.train < found.fit.history[0].train);
/// assert_eq!(found.summary.spectra[0].eigenvalues.len(), 2);
/// ```
pub fn fit_latent(
    train: &Table,
    val: &Table,
    config: &LatentConfig,
    progress: &mut dyn FnMut(&LossPoint),
) -> Result<LatentFit, DiscoverError> {
    let d = config.dim;
    check_pairs(train, val, config.generators, d)?;
    if val.rows == 0 {
        return Err(DiscoverError::Invalid(
            "the latent method measures its flow on validation pairs; give the data some".into(),
        ));
    }
    if config.hidden.contains(&0) {
        return Err(DiscoverError::Invalid("hidden layers need a width".into()));
    }
    let m = train.x_dim;
    let sizes: Vec<usize> = std::iter::once(m)
        .chain(config.hidden.iter().copied())
        .chain([d])
        .collect();
    let reversed: Vec<usize> = sizes.iter().rev().copied().collect();
    let mut model = Model {
        layout: Layout {
            n: d,
            k: config.generators,
            train: train.rows,
        },
        pairs: train.rows + val.rows,
        encoder: Mlp::new(sizes, config.act, Init::Uniform, config.seed),
        decoder: Mlp::new(
            reversed,
            config.act,
            Init::Uniform,
            config.seed.wrapping_add(1),
        ),
        duplicate_weight: config.duplicate_weight,
    };
    let mut theta = model.layout.initial(
        train.rows + val.rows,
        &mut StdRng::seed_from_u64(config.seed),
    );
    theta.extend(model.encoder.params.iter().map(|&v| f64::from(v)));
    theta.extend(model.decoder.params.iter().map(|&v| f64::from(v)));
    let (train_set, val_set) = (Set::new(train, 0), Set::new(val, train.rows));
    let mut work = Work::default();
    let mut terms = LatentTerms::default();
    let history = descend(
        &mut theta,
        config.steps,
        config.lr,
        progress,
        |theta, grad, step| {
            let point;
            (point, terms) = model.gradient(theta, &train_set, &val_set, grad, step, &mut work);
            point
        },
    )?;
    model.load(&theta);
    let generators = UnitGenerators::new(&model.layout, &theta);
    let k = model.layout.k;
    let coefficients: Vec<Vec<f64>> = (0..k)
        .map(|i| {
            (0..train.rows)
                .map(|p| theta[model.layout.coefficients(p) + i])
                .collect()
        })
        .collect();
    let mean: Vec<f64> = coefficients
        .iter()
        .map(|t| t.iter().sum::<f64>() / train.rows as f64)
        .collect();
    let std: Vec<f64> = coefficients
        .iter()
        .zip(&mean)
        .map(|(t, mean)| {
            let var = t.iter().map(|t| (t - mean).powi(2)).sum::<f64>();
            (var / train.rows as f64).sqrt()
        })
        .collect();
    let unit = generators.unit().to_vec();
    let mean_flow = generators.algebra(&mean);
    let summary = LatentSummary {
        terms,
        baseline: val_set.baseline(),
        shared_prediction: model.shared_prediction(&mean_flow, &val_set),
        mean_flow: Spectrum::new(&mean_flow),
        coefficient_mean: mean,
        coefficient_std: std,
        spectra: unit.iter().map(Spectrum::new).collect(),
    };
    Ok(LatentFit {
        fit: Fit {
            generators: unit,
            history,
        },
        summary,
    })
}

/// One set of pairs: [X; X′] stacked as the encoder reads them.
struct Set {
    both: Vec<f32>,
    rows: usize,
    size: usize,
    /// The index of the first pair's coefficients in the layout.
    first: usize,
}

impl Set {
    fn new(table: &Table, first: usize) -> Set {
        Set {
            both: [table.x.as_slice(), table.y.as_slice()].concat(),
            rows: table.rows,
            size: table.x_dim,
            first,
        }
    }

    /// Row `p` of X (`p < N`) or of X′ (`N ≤ p < 2N`).
    fn row(&self, p: usize) -> &[f32] {
        &self.both[p * self.size..(p + 1) * self.size]
    }

    fn baseline(&self) -> f64 {
        (0..self.rows)
            .map(|p| squared_distance(self.row(self.rows + p), self.row(p)))
            .sum::<f64>()
            / self.rows as f64
    }
}

fn squared_distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(a, b)| f64::from(a - b).powi(2)).sum()
}

/// The networks, the parameter layout around them, and the fixed weights.
struct Model {
    layout: Layout,
    /// Training and validation pairs: the networks' parameters follow their coefficients.
    pairs: usize,
    encoder: Mlp,
    decoder: Mlp,
    duplicate_weight: f64,
}

/// Buffers reused from step to step.
#[derive(Default)]
struct Work {
    encoder: MlpCache,
    decoder: MlpCache,
    scratch: MlpScratch,
    encoder_grad: Vec<f32>,
    decoder_grad: Vec<f32>,
}

impl Model {
    /// Offset of the networks' parameters in θ: the encoder's, then the decoder's.
    fn networks(&self) -> usize {
        self.layout.coefficients(self.pairs)
    }

    /// Copies the networks' parameters out of θ.
    fn load(&mut self, theta: &[f64]) {
        let encoder = self.networks();
        let decoder = encoder + self.encoder.params.len();
        let copy = |to: &mut [f32], from: &[f64]| {
            to.iter_mut().zip(from).for_each(|(t, f)| *t = *f as f32)
        };
        copy(&mut self.encoder.params, &theta[encoder..]);
        copy(&mut self.decoder.params, &theta[decoder..]);
    }

    /// Adds ∂ℓ/∂θ to `grad` (zero on entry) and returns the prediction
    /// errors at θ and the training terms.
    fn gradient(
        &mut self,
        theta: &[f64],
        train: &Set,
        val: &Set,
        grad: &mut [f64],
        step: usize,
        work: &mut Work,
    ) -> (LossPoint, LatentTerms) {
        self.load(theta);
        let mut generators = UnitGenerators::new(&self.layout, theta);
        let terms = self.pass(theta, train, true, &mut generators, grad, work);
        let held_out = self.pass(theta, val, false, &mut generators, grad, work);
        generators.finish(self.duplicate_weight, grad);
        let point = LossPoint {
            step,
            train: terms.prediction,
            val: held_out.prediction,
        };
        (point, terms)
    }

    /// The objective on one set of pairs. Its gradient goes to the set's
    /// coefficients, and for the training set to the generators (through
    /// `generators`) and to the networks.
    fn pass(
        &self,
        theta: &[f64],
        set: &Set,
        trains: bool,
        generators: &mut UnitGenerators,
        grad: &mut [f64],
        work: &mut Work,
    ) -> LatentTerms {
        let (n, d, k) = (set.rows, self.layout.n, self.layout.k);
        let scale = 1.0 / n as f64;
        let codes = self.encoder.forward(&set.both, 2 * n, &mut work.encoder);
        let code = |p: usize| {
            DVector::from_iterator(d, codes[p * d..(p + 1) * d].iter().map(|&v| f64::from(v)))
        };
        let mut flows = Vec::with_capacity(n);
        let mut decoder_in = codes.clone();
        for p in 0..n {
            let at = self.layout.coefficients(set.first + p);
            let a = generators.algebra(&theta[at..at + k]);
            let flow = expm(&a);
            let moved = &flow * code(p);
            decoder_in.extend(moved.iter().map(|&v| v as f32));
            flows.push((a, flow, moved));
        }
        let decoded = self.decoder.forward(&decoder_in, 3 * n, &mut work.decoder);
        let mut terms = LatentTerms::default();
        // Rows: D(z) against x, D(z′) against x′, D(Mz) against x′.
        let m = set.size;
        let mut d_decoded = vec![0.0f32; decoded.len()];
        for row in 0..3 * n {
            let target = set.row(if row < 2 * n { row } else { row - n });
            let out = &decoded[row * m..(row + 1) * m];
            let loss = if row < 2 * n {
                &mut terms.reconstruction
            } else {
                &mut terms.prediction
            };
            *loss += scale * squared_distance(out, target);
            for ((g, o), t) in d_decoded[row * m..].iter_mut().zip(out).zip(target) {
                *g = (2.0 * scale) as f32 * (o - t);
            }
        }
        let mut d_decoder_in = vec![0.0f32; decoder_in.len()];
        let decoder_grad = zeroed(&mut work.decoder_grad, self.decoder.params.len());
        self.decoder.backward(
            &decoder_in,
            3 * n,
            &work.decoder,
            &d_decoded,
            &mut work.scratch,
            decoder_grad,
            Some(&mut d_decoder_in),
        );
        let upstream = |row: usize| {
            DVector::from_iterator(
                d,
                d_decoder_in[row * d..(row + 1) * d]
                    .iter()
                    .map(|&v| f64::from(v)),
            )
        };
        let mut d_codes = vec![0.0f64; 2 * n * d];
        for (p, (a, flow, moved)) in flows.iter().enumerate() {
            let (z, z_next) = (code(p), code(n + p));
            let miss = moved - &z_next;
            terms.transport += scale * miss.norm_squared();
            // ∂ℓ/∂(Mz): through the decoder and through the transport term.
            let d_moved = upstream(2 * n + p) + &miss * (2.0 * scale);
            let d_flow = &d_moved * z.transpose();
            let at = self.layout.coefficients(set.first + p);
            generators.pull(theta, at, &expm_vjp(a, &d_flow), trains, grad);
            if trains {
                let d_z = upstream(p) + flow.transpose() * &d_moved;
                let d_z_next = upstream(n + p) - &miss * (2.0 * scale);
                d_codes[p * d..(p + 1) * d].copy_from_slice(d_z.as_slice());
                d_codes[(n + p) * d..(n + p + 1) * d].copy_from_slice(d_z_next.as_slice());
            }
        }
        let moment = (0..2 * n).fold(DMatrix::zeros(d, d), |s, p| {
            let z = code(p);
            s + &z * z.transpose()
        }) * (scale / 2.0);
        let excess = moment - DMatrix::identity(d, d);
        terms.whitening = WHITENING_WEIGHT * excess.norm_squared();
        if !trains {
            return terms;
        }
        // ∂‖S − I‖²/∂z = (2/N)(S − I)z for each of the 2N codes.
        for p in 0..2 * n {
            let d_z = &excess * code(p) * (2.0 * WHITENING_WEIGHT * scale);
            d_codes[p * d..(p + 1) * d]
                .iter_mut()
                .zip(d_z.iter())
                .for_each(|(g, w)| *g += w);
        }
        let d_codes: Vec<f32> = d_codes.iter().map(|&v| v as f32).collect();
        let encoder_grad = zeroed(&mut work.encoder_grad, self.encoder.params.len());
        self.encoder.backward(
            &set.both,
            2 * n,
            &work.encoder,
            &d_codes,
            &mut work.scratch,
            encoder_grad,
            None,
        );
        let networks = work.encoder_grad.iter().chain(&work.decoder_grad);
        for (g, w) in grad[self.networks()..].iter_mut().zip(networks) {
            *g += f64::from(*w);
        }
        terms
    }

    /// The validation prediction error with one flow exp(A) for every pair.
    fn shared_prediction(&self, a: &DMatrix<f64>, set: &Set) -> f64 {
        let (n, d) = (set.rows, self.layout.n);
        let codes = self.encoder.eval(&set.both[..n * set.size], n);
        let flow = expm(a);
        let moved: Vec<f32> = codes
            .chunks_exact(d)
            .flat_map(|z| {
                let z = DVector::from_iterator(d, z.iter().map(|&v| f64::from(v)));
                (&flow * z).iter().map(|&v| v as f32).collect::<Vec<_>>()
            })
            .collect();
        let decoded = self.decoder.eval(&moved, n);
        (0..n)
            .map(|p| squared_distance(&decoded[p * set.size..(p + 1) * set.size], set.row(n + p)))
            .sum::<f64>()
            / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn table(rng: &mut StdRng, rows: usize, m: usize) -> Table {
        let mut random = |len: usize| (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        Table {
            x: random(rows * m),
            y: random(rows * m),
            rows,
            x_dim: m,
            y_dim: m,
        }
    }

    /// The hand-written gradient of the whole objective — generators
    /// (through the normalisation and the duplicate penalty), coefficients,
    /// encoder and decoder — against central differences. The networks run
    /// in f32, so the differences take a wide step and a loose bound.
    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = StdRng::seed_from_u64(11);
        let (train, val) = (table(&mut rng, 3, 3), table(&mut rng, 2, 3));
        let (train, val) = (Set::new(&train, 0), Set::new(&val, 3));
        let (d, k) = (2, 2);
        let mut model = Model {
            layout: Layout { n: d, k, train: 3 },
            pairs: 5,
            encoder: Mlp::new(vec![3, 4, d], Activation::Tanh, Init::Uniform, 1),
            decoder: Mlp::new(vec![d, 4, 3], Activation::Tanh, Init::Uniform, 2),
            duplicate_weight: 0.7,
        };
        let networks = model.encoder.params.len() + model.decoder.params.len();
        let len = model.networks() + networks;
        let theta: Vec<f64> = (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut work = Work::default();
        let mut grad = vec![0.0; len];
        model.gradient(&theta, &train, &val, &mut grad, 0, &mut work);
        // The training objective moves everything but the validation
        // coefficients; those descend the validation pairs' flow terms.
        let objective = |model: &mut Model, theta: &[f64], work: &mut Work| {
            model.load(theta);
            let mut generators = UnitGenerators::new(&model.layout, theta);
            let mut scratch = vec![0.0; theta.len()];
            let t = model.pass(theta, &train, true, &mut generators, &mut scratch, work);
            let v = model.pass(theta, &val, false, &mut generators, &mut scratch, work);
            let unit: Vec<_> = (0..k)
                .map(|i| model.layout.generator(theta, i).normalize())
                .collect();
            let duplicates = 0.7 * unit[0].dot(&unit[1]).powi(2);
            let training = t.reconstruction + t.transport + t.prediction + t.whitening;
            (training + duplicates, v.transport + v.prediction)
        };
        let val_coefficients = model.layout.coefficients(3)..model.networks();
        let h = 1e-3;
        for index in 0..len {
            let (mut plus, mut minus) = (theta.clone(), theta.clone());
            plus[index] += h;
            minus[index] -= h;
            let (train_plus, val_plus) = objective(&mut model, &plus, &mut work);
            let (train_minus, val_minus) = objective(&mut model, &minus, &mut work);
            let fd = if val_coefficients.contains(&index) {
                (val_plus - val_minus) / (2.0 * h)
            } else {
                (train_plus - train_minus) / (2.0 * h)
            };
            assert!(
                (fd - grad[index]).abs() < 2e-3 * (1.0 + fd.abs()),
                "θ[{index}]: {fd} vs {}",
                grad[index]
            );
        }
    }

    /// A small observed oscillator (ω = 2, Δt = 0.3): the latent flow found
    /// is a rotation (eigenvalues ±iω up to scale, trace zero), the mean
    /// transformation turns by ωΔt = 0.6, and it predicts held-out pairs far
    /// better than predicting no change.
    #[test]
    fn recovers_a_rotation_like_latent_generator() {
        let params = [
            ("train", 120.0),
            ("val", 40.0),
            ("test", 0.0),
            ("noise", 0.01),
        ];
        let params = params.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let splits = crate::data::builtin("observed_oscillator_pairs", &params).unwrap();
        let config = LatentConfig {
            generators: 1,
            dim: 2,
            hidden: vec![16],
            act: Activation::Tanh,
            steps: 1500,
            lr: 1e-2,
            duplicate_weight: 1.0,
            seed: 0,
        };
        let found = fit_latent(&splits.train, &splits.val, &config, &mut |_| {}).unwrap();
        let summary = &found.summary;
        let spectrum = &summary.spectra[0];
        assert!(spectrum.real_to_imaginary < 0.1, "{summary:?}");
        assert!(spectrum.trace_ratio < 0.1, "{summary:?}");
        let turn = summary.mean_flow.eigenvalues[0][1];
        assert!((turn - 0.6).abs() < 0.06, "{summary:?}");
        assert!(
            summary.shared_prediction < 0.2 * summary.baseline,
            "{summary:?}"
        );
    }

    #[test]
    fn reads_the_encoder_from_the_planned_autoencoder() {
        let spec = r#"
model seen {
  data     builtin.observed_oscillator_pairs(train = 10, val = 5, test = 0)
  input    x: R^6
  output   x_later: R^6
  symmetry learn(dim = 2) => latent
  net      mlp(hidden = [12, 8], act = softplus)
}
"#;
        let graph = &crate::compile(spec, "seen.sym", ".".as_ref())
            .unwrap()
            .graphs[0];
        assert_eq!(
            encoder_shape(graph).unwrap(),
            (vec![12, 8], Activation::Softplus)
        );
        // 6 → 12 → 8 → 2 → 8 → 12 → 6.
        assert_eq!(
            graph.parameters,
            2 * (6 * 12 + 12 * 8 + 8 * 2) + 12 + 8 + 2 + 8 + 12 + 6
        );
    }

    #[test]
    fn refuses_a_graph_without_an_autoencoder() {
        let spec = r#"
model turn {
  data     builtin.rotation2_pairs(train = 10, val = 5, test = 0)
  input    x: R^2
  output   x_turned: R^2
  symmetry learn(generators = 1) => operator
}
"#;
        let graph = &crate::compile(spec, "turn.sym", ".".as_ref())
            .unwrap()
            .graphs[0];
        assert!(matches!(
            encoder_shape(graph),
            Err(DiscoverError::Invalid(_))
        ));
    }
}
