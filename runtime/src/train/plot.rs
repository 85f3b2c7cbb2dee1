//! What a person looks at while training runs: the losses drawn as lines into a PNG (no plotting
//! crate: a few lines of rasterising suffice), and sample triptychs blurred | deblurred | sharp.

use crate::image_io::to_rgb8;
use image::{Rgb, RgbImage};
use ir::Tensor;
use std::path::Path;

const W: u32 = 640;
const H: u32 = 240;
const COLOURS: [[u8; 3]; 4] = [[200, 40, 40], [40, 90, 200], [30, 150, 60], [160, 110, 20]];

/// One panel per series (each with its own vertical range, as the critic and the generator losses
/// differ by orders of magnitude), stacked; the horizontal axis is the step.
pub fn losses_png(path: &Path, series: &[(&str, Vec<(u64, f32)>)]) -> Result<(), String> {
    let panels = series.len().max(1) as u32;
    let mut img = RgbImage::from_pixel(W, H * panels, Rgb([255, 255, 255]));
    for (k, (_, points)) in series.iter().enumerate() {
        let top = k as u32 * H;
        let colour = Rgb(COLOURS[k % COLOURS.len()]);
        for x in 0..W {
            img.put_pixel(x, top + H - 1, Rgb([180, 180, 180]));
        }
        let finite: Vec<&(u64, f32)> = points.iter().filter(|p| p.1.is_finite()).collect();
        let (Some(first), Some(last)) = (finite.first(), finite.last()) else {
            continue;
        };
        let (lo, hi) = finite.iter().fold((f32::MAX, f32::MIN), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
        let span_y = (hi - lo).max(1e-12);
        let span_x = (last.0 - first.0).max(1) as f32;
        let at = |p: &(u64, f32)| {
            let x = (p.0 - first.0) as f32 / span_x * (W - 9) as f32 + 4.0;
            let y = top as f32 + 4.0 + (1.0 - (p.1 - lo) / span_y) * (H - 9) as f32;
            (x, y)
        };
        for pair in finite.windows(2) {
            line(&mut img, at(pair[0]), at(pair[1]), colour);
        }
        if finite.len() == 1 {
            let (x, y) = at(finite[0]);
            img.put_pixel(x as u32, y as u32, colour);
        }
    }
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| e.to_string())
}

fn line(img: &mut RgbImage, a: (f32, f32), b: (f32, f32), c: Rgb<u8>) {
    let n = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
    for i in 0..=n {
        let t = i as f32 / n as f32;
        let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        if x >= 0.0 && y >= 0.0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, c);
        }
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
