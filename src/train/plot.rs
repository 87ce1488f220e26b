//! The plots of a run folder as PNGs: the loss curves, and for dynamics
//! models the phase portraits and energies of rollouts.

use super::dynamics::Rollouts;
use super::{Record, TrainError};
use crate::data::systems::System;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::Path;

/// DejaVu Sans (Bitstream Vera licence, see `assets/fonts/LICENSE-DejaVu.txt`):
/// bundled so that plots render the same on machines without system fonts.
pub(crate) const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn plot_error(e: impl std::fmt::Display) -> TrainError {
    TrainError::Invalid(format!("cannot draw a plot: {e}"))
}

/// A white 800×500 canvas at `path`, with the bundled font registered.
fn canvas(path: &Path) -> Result<DrawingArea<BitMapBackend<'_>, Shift>, TrainError> {
    // Registering only parses the font's tables; it is cheap enough to do per plot.
    register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| plot_error("the bundled font is unreadable"))?;
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    Ok(root)
}

/// Draws the legend of `chart` and writes `root` out.
fn finish<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
    root: &DrawingArea<BitMapBackend<'a>, Shift>,
) -> Result<(), TrainError> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}

/// Draws training and validation loss, titled `title`, against the step, on a log scale, to `path`
/// (whose extension must be `.png`).
pub(crate) fn draw_losses(title: &str, history: &[Record], path: &Path) -> Result<(), TrainError> {
    let losses = history.iter().flat_map(|r| [r.train_loss, r.val_loss]);
    let positive: Vec<f64> = losses.filter(|v| *v > 0.0 && v.is_finite()).collect();
    let low = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let high = positive.iter().copied().fold(0.0, f64::max);
    let (low, high) = if positive.is_empty() {
        (1e-3, 1.0)
    } else {
        (low / 1.5, high * 1.5)
    };
    let last = history.last().map_or(1, |r| r.step.max(1));

    let root = canvas(path)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0..last, (low..high).log_scale())
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss (standardised)")
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .light_line_style(TRANSPARENT)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(plot_error)?;
    let curves = [
        (
            "train",
            BLUE,
            history
                .iter()
                .map(|r| (r.step, r.train_loss))
                .collect::<Vec<_>>(),
        ),
        (
            "validation",
            RED,
            history.iter().map(|r| (r.step, r.val_loss)).collect(),
        ),
    ];
    for (label, colour, points) in curves {
        chart
            .draw_series(LineSeries::new(
                points.into_iter().filter(|(_, v)| *v > 0.0),
                colour.stroke_width(2),
            ))
            .map_err(plot_error)?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    finish(&mut chart, &root)
}

/// Draws one plot of a dynamics model's rollouts.
pub(crate) type Drawing = fn(&str, &Rollouts, &dyn System, &Path) -> Result<(), TrainError>;

/// Rollouts shown per plot: enough to see a pattern, few enough to tell apart.
const SHOWN: usize = 4;

/// One curve: thin and pale for the true system, thick for the learned field.
struct Curve {
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    learned: bool,
}

/// The true and learned curves of the first [`SHOWN`] rollouts, `at` giving
/// a point of a state at a time index.
fn curves(r: &Rollouts, at: impl Fn(&[f64], usize) -> (f64, f64)) -> Vec<Curve> {
    let mut out = Vec::new();
    for start in 0..r.starts.min(SHOWN) {
        let colour = Palette99::pick(start).to_rgba();
        let colour = RGBColor(colour.0, colour.1, colour.2);
        for learned in [false, true] {
            let points = (0..r.times.len())
                .map(|k| at(r.state(learned, k, start), k))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            out.push(Curve {
                points,
                colour,
                learned,
            });
        }
    }
    out
}

/// Draws `curves` with linear axes fitted to them.
fn draw_curves(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    curves: &[Curve],
) -> Result<(), TrainError> {
    let bounds = |f: fn(&(f64, f64)) -> f64| {
        let values = curves.iter().flat_map(|c| c.points.iter().map(f));
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if lo < hi {
            let pad = 0.05 * (hi - lo);
            (lo - pad, hi + pad)
        } else if lo.is_finite() {
            (lo - 1.0, lo + 1.0)
        } else {
            (0.0, 1.0)
        }
    };
    let (x, y) = (bounds(|p| p.0), bounds(|p| p.1));
    let root = canvas(path)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .light_line_style(TRANSPARENT)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(plot_error)?;
    for (i, curve) in curves.iter().enumerate() {
        let (colour, width) = if curve.learned {
            (curve.colour.to_rgba(), 2)
        } else {
            (curve.colour.mix(0.45), 1)
        };
        let style = ShapeStyle::from(colour).stroke_width(width);
        let series = chart
            .draw_series(LineSeries::new(curve.points.iter().copied(), style))
            .map_err(plot_error)?;
        // One legend entry per kind of line, from the first rollout.
        if i < 2 {
            let label = if curve.learned { "learned" } else { "true" };
            series
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        }
    }
    finish(&mut chart, &root)
}

/// The first coordinate against its momentum (or velocity) along rollouts.
pub(crate) fn draw_phase(
    model: &str,
    r: &Rollouts,
    _system: &dyn System,
    path: &Path,
) -> Result<(), TrainError> {
    let n = r.dim / 2;
    let curves = curves(r, |x, _| (x[0], x[n]));
    let title = format!("{model}: phase portrait");
    draw_curves(path, &title, ("q₁", "p₁ (or q̇₁)"), &curves)
}

/// The system's true energy along the rollouts.
pub(crate) fn draw_energy(
    model: &str,
    r: &Rollouts,
    system: &dyn System,
    path: &Path,
) -> Result<(), TrainError> {
    let curves = curves(r, |x, k| (r.times[k], system.energy(x)));
    let title = format!("{model}: energy along rollouts");
    draw_curves(path, &title, ("t", "energy"), &curves)
}
