//! What a person looks at while training runs: the losses drawn into a PNG with plotters (one
//! titled panel per series, with a value axis and a step axis), and sample triptychs
//! blurred | deblurred | sharp.

use crate::image_io::to_rgb8;
use image::{Rgb, RgbImage};
use ir::Tensor;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::OnceLock;

/// The size of one panel; panels are stacked, one per series.
pub const PANEL_W: u32 = 640;
pub const PANEL_H: u32 = 240;
const COLOURS: [RGBColor; 4] = [
    RGBColor(200, 40, 40),
    RGBColor(40, 90, 200),
    RGBColor(30, 150, 60),
    RGBColor(160, 110, 20),
];
/// The name the labels' font is registered under with plotters. The font (Hack) ships inside the
/// `epaint_default_fonts` crate, so no system font is needed: CI machines have none.
const FONT: &str = "irdc-plot";

fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    (REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::HACK_REGULAR)
            .map_err(|_| "the plot's built-in font (Hack) does not parse".to_string())
    }))
    .clone()
}

/// One panel of the plot: a title and one or more lines (a legend names them when there are
/// several: validation PSNR of the deblurred images against the blurred baseline).
pub struct Panel<'a> {
    pub title: &'a str,
    pub lines: Vec<(&'a str, Vec<(u64, f32)>)>,
}

/// One panel per series (each with its own vertical range, as the critic and the generator losses
/// differ by orders of magnitude), stacked: titled with the series' name, a value axis with up to
/// five ticks, and a step axis. The image is `PANEL_W` x (`PANEL_H` per series). Non-finite values
/// are left out.
pub fn losses_png(path: &Path, series: &[(&str, Vec<(u64, f32)>)]) -> Result<(), String> {
    let panels: Vec<Panel> = (series.iter())
        .map(|(name, points)| Panel {
            title: name,
            lines: vec![(*name, points.clone())],
        })
        .collect();
    panels_png(path, &panels)
}

/// [`losses_png`] with panels of several lines each.
pub fn panels_png(path: &Path, panels: &[Panel]) -> Result<(), String> {
    register_font()?;
    let (w, h) = (PANEL_W, PANEL_H * panels.len().max(1) as u32);
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (k, (p, area)) in panels.iter().zip(&areas).enumerate() {
            panel(area, p, k).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    let img =
        RgbImage::from_raw(w, h, pixels).ok_or("the plot's pixel buffer has the wrong size")?;
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| e.to_string())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawError<'a> = DrawingAreaErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

/// Panel `k`: its lines take the colours from `k` on.
fn panel<'a>(area: &Area<'a>, p: &Panel, k: usize) -> Result<(), DrawError<'a>> {
    let lines: Vec<Vec<(u64, f64)>> = (p.lines.iter())
        .map(|(_, points)| {
            (points.iter())
                .filter(|p| p.1.is_finite())
                .map(|&(step, v)| (step, v as f64))
                .collect()
        })
        .collect();
    let all: Vec<(u64, f64)> = lines.iter().flatten().copied().collect();
    let first = all.iter().map(|p| p.0).min();
    let last = all.iter().map(|p| p.0).max();
    let steps = match (first, last) {
        (Some(a), Some(b)) => a..b.max(a + 1),
        _ => 0..1,
    };
    let (lo, hi) = value_range(&all);
    let mut chart = ChartBuilder::on(area)
        .caption(p.title, (FONT, 16))
        .margin(8)
        .x_label_area_size(34)
        .y_label_area_size(64)
        .build_cartesian_2d(steps, lo..hi)?;
    // Decimals enough to tell the ticks apart; scientific notation for very large or small values.
    let decimals = (2.0 - (hi - lo).log10().floor()).clamp(0.0, 6.0) as usize;
    let big = lo.abs().max(hi.abs());
    let y_label = |v: &f64| match big {
        b if !(1e-3..1e5).contains(&b) => format!("{v:.2e}"),
        _ => format!("{v:.decimals$}"),
    };
    chart
        .configure_mesh()
        .x_labels(6)
        .y_labels(5)
        .x_desc("step")
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .light_line_style(WHITE)
        .y_label_formatter(&y_label)
        .draw()?;
    for (i, (points, (name, _))) in lines.iter().zip(&p.lines).enumerate() {
        let colour = COLOURS[(k + i) % COLOURS.len()];
        let drawn = chart.draw_series(LineSeries::new(points.iter().copied(), colour))?;
        if p.lines.len() > 1 {
            drawn.label(*name).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
        }
        if let [only] = points.as_slice() {
            chart.draw_series([Circle::new(*only, 2, colour.filled())])?;
        }
    }
    if p.lines.len() > 1 {
        chart
            .configure_series_labels()
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
    }
    Ok(())
}

/// The drawn range of values: a margin around them, and a range the ticks can label when the
/// series is flat or empty.
fn value_range(points: &[(u64, f64)]) -> (f64, f64) {
    let (lo, hi) = (points.iter()).fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    if points.is_empty() {
        (0.0, 1.0)
    } else if hi - lo <= 1e-9 * hi.abs().max(1.0) {
        let pad = 0.5 * hi.abs().max(1e-3);
        (lo - pad, hi + pad)
    } else {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    }
}

/// blurred | deblurred | sharp side by side, each `[1, 3, H, W]` in [-1, 1].
pub fn triptych_png(path: &Path, images: [&Tensor<f32>; 3]) -> Result<(), String> {
    let parts: Vec<RgbImage> = images
        .iter()
        .map(|t| to_rgb8(t).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let (w, h) = parts[0].dimensions();
    let mut out = RgbImage::from_pixel(3 * w + 4, h, Rgb([255, 255, 255]));
    for (i, p) in parts.iter().enumerate() {
        image::imageops::replace(&mut out, p, (i as u32 * (w + 2)) as i64, 0);
    }
    out.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text and axes are black; the series' colours each have a channel >= 150.
    fn dark(img: &RgbImage, x: u32, y: u32) -> bool {
        img.get_pixel(x, y).0.iter().all(|&c| c < 100)
    }

    /// Groups of consecutive rows of the box `xs` x `ys` that hold a dark pixel: lines of text.
    fn text_rows(img: &RgbImage, xs: std::ops::Range<u32>, ys: std::ops::Range<u32>) -> usize {
        let inked: Vec<bool> = ys.map(|y| xs.clone().any(|x| dark(img, x, y))).collect();
        inked.windows(2).filter(|w| w[1] && !w[0]).count() + usize::from(inked[0])
    }

    fn draw(name: &str, series: &[(&str, Vec<(u64, f32)>)]) -> RgbImage {
        let path =
            std::env::temp_dir().join(format!("irdc-plot-{}-{name}.png", std::process::id()));
        losses_png(&path, series).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        std::fs::remove_file(&path).unwrap();
        img
    }

    // A panel's layout (see `panel`): the title in its top 24 rows, the value labels in its left
    // 64 columns, the x axis at 42 rows from its bottom, step labels and "step" below it.
    #[test]
    fn each_panel_has_a_title_value_ticks_and_a_step_axis() {
        let critic: Vec<(u64, f32)> = (1..=150)
            .map(|s| (s, -2.0 + (s as f32 * 0.1).sin()))
            .collect();
        let mut generator: Vec<(u64, f32)> = (1..=150).map(|s| (s, 120.0 / s as f32)).collect();
        generator[40].1 = f32::NAN; // left out, not drawn
        let img = draw("two", &[("critic", critic), ("generator", generator)]);
        assert_eq!(img.dimensions(), (PANEL_W, 2 * PANEL_H));
        for k in 0..2 {
            let top = k * PANEL_H;
            // The title: one line of text centred above the plot.
            assert_eq!(
                text_rows(&img, 200..440, top..top + 24),
                1,
                "title of panel {k}"
            );
            // The value axis: 3 to 5 tick labels left of the axis line.
            let ticks = text_rows(&img, 0..60, top + 24..top + PANEL_H - 34);
            assert!(
                (3..=5).contains(&ticks),
                "panel {k} has {ticks} value ticks"
            );
            // The step axis: tick labels, then "step" under them.
            assert_eq!(
                text_rows(&img, 80..PANEL_W, top + PANEL_H - 36..top + PANEL_H),
                2,
                "step axis of panel {k}"
            );
        }
        // The titles say different names.
        let band = |k: u32| -> Vec<bool> {
            (0..24)
                .flat_map(|y| (0..PANEL_W).map(move |x| (x, k * PANEL_H + y)))
                .map(|(x, y)| dark(&img, x, y))
                .collect()
        };
        assert_ne!(band(0), band(1));
    }

    #[test]
    fn a_panel_of_two_lines_draws_both_and_a_legend() {
        let path = std::env::temp_dir().join(format!("irdc-plot-{}-val.png", std::process::id()));
        let deblurred: Vec<(u64, f32)> = (1..=5).map(|s| (s * 10, 20.0 + s as f32)).collect();
        let blurred: Vec<(u64, f32)> = (1..=5).map(|s| (s * 10, 19.0)).collect();
        let panels = [Panel {
            title: "validation PSNR (dB)",
            lines: vec![("deblurred", deblurred), ("blurred", blurred)],
        }];
        panels_png(&path, &panels).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(img.dimensions(), (PANEL_W, PANEL_H));
        for c in &COLOURS[..2] {
            let n = img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count();
            assert!(n > 50, "colour {c:?}: {n} pixels");
        }
    }

    #[test]
    fn flat_single_and_empty_series_still_get_labelled_axes() {
        let img = draw(
            "odd",
            &[
                ("flat", vec![(1, 3.0), (2, 3.0)]),
                ("one", vec![(7, 0.5)]),
                ("none", vec![(1, f32::NAN)]),
            ],
        );
        assert_eq!(img.dimensions(), (PANEL_W, 3 * PANEL_H));
        for k in 0..3 {
            let top = k * PANEL_H;
            let ticks = text_rows(&img, 0..60, top + 24..top + PANEL_H - 34);
            assert!(
                (3..=5).contains(&ticks),
                "panel {k} has {ticks} value ticks"
            );
        }
        assert_eq!(value_range(&[]), (0.0, 1.0));
        assert_eq!(value_range(&[(1, 3.0), (2, 3.0)]), (1.5, 4.5));
        assert_eq!(value_range(&[(1, 0.0), (2, 10.0)]), (-0.5, 10.5));
    }
}
