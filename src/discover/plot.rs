//! A heatmap of one generator as a PNG.

use super::DiscoverError;
use crate::train::plot::FONT;
use nalgebra::DMatrix;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::Path;

fn plot_error(e: impl std::fmt::Display) -> DiscoverError {
    DiscoverError::Plot(e.to_string())
}

/// Blue for negative entries, white for zero, red for positive, on a scale
/// symmetric about zero so that equal magnitudes get equal strength.
fn colour(value: f64, scale: f64) -> RGBColor {
    let s = if scale > 0.0 {
        (value / scale).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let fade = |c: f64| (255.0 * (1.0 - s.abs() * (1.0 - c / 255.0))) as u8;
    if s >= 0.0 {
        RGBColor(255, fade(40.0), fade(40.0))
    } else {
        RGBColor(fade(40.0), fade(90.0), 255)
    }
}

/// Draws `m` as a grid of coloured cells, each labelled with its value, to `path`.
pub(crate) fn draw_heatmap(
    title: &str,
    m: &DMatrix<f64>,
    path: &Path,
) -> Result<(), DiscoverError> {
    register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| plot_error("the bundled font is unreadable"))?;
    let (rows, cols) = m.shape();
    let cell = (480 / rows.max(cols)).max(40) as i32;
    let (width, height) = (cols as i32 * cell + 40, rows as i32 * cell + 80);
    let root = BitMapBackend::new(path, (width as u32, height as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    root.draw_text(title, &("sans-serif", 20).into_text_style(&root), (20, 15))
        .map_err(plot_error)?;
    let scale = m.amax();
    let label = ("sans-serif", (cell / 4).clamp(10, 22)).into_text_style(&root);
    for r in 0..rows {
        for c in 0..cols {
            let (x, y) = (20 + c as i32 * cell, 60 + r as i32 * cell);
            let value = m[(r, c)];
            root.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                colour(value, scale).filled(),
            ))
            .map_err(plot_error)?;
            root.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                BLACK.mix(0.3),
            ))
            .map_err(plot_error)?;
            root.draw_text(
                &format!("{value:.2}"),
                &label,
                (x + cell / 6, y + cell / 2 - cell / 8),
            )
            .map_err(plot_error)?;
        }
    }
    root.present().map_err(plot_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_signed_and_saturate() {
        assert_eq!(colour(0.0, 1.0), RGBColor(255, 255, 255));
        assert_eq!(colour(1.0, 1.0), RGBColor(255, 40, 40));
        assert_eq!(colour(-5.0, 1.0), RGBColor(40, 90, 255));
        let half = colour(0.5, 1.0);
        assert!(half.1 > 40 && half.1 < 255);
    }
}
