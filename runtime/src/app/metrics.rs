//! Image quality metrics, computed as the deblurring literature reports them: on RGB 8-bit images
//! (after rounding to 0..=255), data range 255.
//!
//! - [`psnr`]: `10 log10(255² / MSE)` with the MSE over all three channels; identical images give
//!   `f64::INFINITY` (printed `inf`; JSON has no infinity, so callers serialise it as `null`).
//! - [`ssim`]: exactly scikit-image's `structural_similarity(a, b, channel_axis=-1,
//!   gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)`: a Gaussian
//!   window (sigma 1.5, truncated at radius `int(3.5 * sigma + 0.5) = 5`, so 11x11) applied as
//!   scipy's `gaussian_filter` in 'reflect' mode (`d c b a | a b c d`), K1 = 0.01, K2 = 0.03,
//!   the SSIM map cropped by 5 pixels on each side before its mean, per channel, then averaged.
//!   tests/metrics.rs holds the scikit-image numbers this is checked against.

use crate::image_io::quantize;
use ir::Tensor;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricError {
    #[error("images differ in size: {0}x{1} against {2}x{3} (width x height)")]
    Size(usize, usize, usize, usize),
    #[error("SSIM needs images of at least {min}x{min} pixels (its window); this one is {w}x{h}")]
    TooSmall { w: usize, h: usize, min: usize },
    #[error("{0}")]
    Shape(String),
}

/// An RGB 8-bit image, planar (channel, row, column): what the metrics compare.
#[derive(Debug, Clone, PartialEq)]
pub struct Rgb8 {
    pub width: usize,
    pub height: usize,
    /// `3 * height * width` levels, channel-major.
    pub data: Vec<u8>,
}

impl Rgb8 {
    /// An image tensor `[1, 3, H, W]` in [-1, 1], rounded as it would be written to a PNG.
    pub fn from_tensor(t: &Tensor<f32>) -> Result<Rgb8, MetricError> {
        let [1, 3, h, w] = t.shape[..] else {
            return Err(MetricError::Shape(format!(
                "image tensor has shape {:?}; an image is [1, 3, H, W]",
                t.shape
            )));
        };
        Ok(Rgb8 {
            width: w,
            height: h,
            data: t.data.iter().map(|&x| quantize(x)).collect(),
        })
    }

    fn channel(&self, c: usize) -> &[u8] {
        let n = self.width * self.height;
        &self.data[c * n..(c + 1) * n]
    }
}

fn same_size(a: &Rgb8, b: &Rgb8) -> Result<(), MetricError> {
    if (a.width, a.height) != (b.width, b.height) {
        return Err(MetricError::Size(a.width, a.height, b.width, b.height));
    }
    Ok(())
}

/// Peak signal-to-noise ratio in dB, peak 255, over all channels; `INFINITY` when identical.
pub fn psnr(a: &Rgb8, b: &Rgb8) -> Result<f64, MetricError> {
    same_size(a, b)?;
    let sse: f64 = (a.data.iter().zip(&b.data))
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    let mse = sse / a.data.len() as f64;
    Ok(10.0 * (255.0 * 255.0 / mse).log10())
}

const SIGMA: f64 = 1.5;
/// scikit-image's `truncate=3.5`: radius `int(3.5 * sigma + 0.5)`.
const RADIUS: usize = (3.5 * SIGMA + 0.5) as usize;
const WIN: usize = 2 * RADIUS + 1;

/// Mean structural similarity, per channel then averaged (see the module comment).
pub fn ssim(a: &Rgb8, b: &Rgb8) -> Result<f64, MetricError> {
    same_size(a, b)?;
    let (w, h) = (a.width, a.height);
    if w < WIN || h < WIN {
        return Err(MetricError::TooSmall { w, h, min: WIN });
    }
    let window = gaussian_window();
    let total: f64 = (0..3)
        .map(|c| ssim_channel(a.channel(c), b.channel(c), w, h, &window))
        .sum();
    Ok(total / 3.0)
}

fn gaussian_window() -> [f64; WIN] {
    let mut k = [0.0; WIN];
    for (i, v) in k.iter_mut().enumerate() {
        let x = i as f64 - RADIUS as f64;
        *v = (-0.5 * x * x / (SIGMA * SIGMA)).exp();
    }
    let sum: f64 = k.iter().sum();
    k.map(|v| v / sum)
}

fn ssim_channel(a: &[u8], b: &[u8], w: usize, h: usize, k: &[f64; WIN]) -> f64 {
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let x: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    let y: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    let prod = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(u, v)| u * v).collect::<Vec<_>>();
    let blur = |v: &[f64]| gaussian_filter(v, w, h, k);
    let (ux, uy) = (blur(&x), blur(&y));
    let (uxx, uyy, uxy) = (
        blur(&prod(&x, &x)),
        blur(&prod(&y, &y)),
        blur(&prod(&x, &y)),
    );
    // Only the pixels at least RADIUS from every border enter the mean (scikit-image's crop).
    let mut sum = 0.0;
    for r in RADIUS..h - RADIUS {
        for col in RADIUS..w - RADIUS {
            let i = r * w + col;
            let (mx, my) = (ux[i], uy[i]);
            let vx = uxx[i] - mx * mx;
            let vy = uyy[i] - my * my;
            let vxy = uxy[i] - mx * my;
            sum += (2.0 * mx * my + c1) * (2.0 * vxy + c2)
                / ((mx * mx + my * my + c1) * (vx + vy + c2));
        }
    }
    sum / ((h - 2 * RADIUS) * (w - 2 * RADIUS)) as f64
}

/// scipy's `gaussian_filter`: the 1-D window along rows (axis 0) then columns, 'reflect' borders.
fn gaussian_filter(v: &[f64], w: usize, h: usize, k: &[f64; WIN]) -> Vec<f64> {
    let mut tmp = vec![0.0; v.len()];
    for r in 0..h {
        for c in 0..w {
            tmp[r * w + c] = (0..WIN)
                .map(|t| k[t] * v[reflect(r as isize + t as isize - RADIUS as isize, h) * w + c])
                .sum();
        }
    }
    let mut out = vec![0.0; v.len()];
    for r in 0..h {
        for c in 0..w {
            out[r * w + c] = (0..WIN)
                .map(|t| k[t] * tmp[r * w + reflect(c as isize + t as isize - RADIUS as isize, w)])
                .sum();
        }
    }
    out
}

/// scipy's 'reflect' (half-sample symmetric, the edge repeated: `d c b a | a b c d`), for any
/// offset, however far outside.
fn reflect(i: isize, n: usize) -> usize {
    let period = 2 * n as isize;
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - 1 - m }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_repeats_the_edge() {
        let got: Vec<usize> = (-4..7).map(|i| reflect(i, 3)).collect();
        assert_eq!(got, vec![2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0]);
    }

    #[test]
    fn window_is_11_wide_and_normalised() {
        let k = gaussian_window();
        assert_eq!(WIN, 11);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert_eq!(k[0], k[10]);
    }
}
