//! The loss curve of a run as a PNG.

use super::{Record, TrainError};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::Path;

/// DejaVu Sans (Bitstream Vera licence, see `assets/fonts/LICENSE-DejaVu.txt`):
/// bundled so that plots render the same on machines without system fonts.
pub(crate) const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn plot_error(e: impl std::fmt::Display) -> TrainError {
    TrainError::Invalid(format!("cannot draw the loss plot: {e}"))
}

/// Draws training and validation loss, titled `title`, against the step, on a log scale, to `path`
/// (whose extension must be `.png`).
pub(crate) fn draw_losses(title: &str, history: &[Record], path: &Path) -> Result<(), TrainError> {
    // Registering only parses the font's tables; it is cheap enough to do per plot.
    register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| plot_error("the bundled font is unreadable"))?;
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

    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
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
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}
