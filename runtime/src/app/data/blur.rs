//! The synthetic motion blur of docs/spec.md: Boracchi & Foi's random camera trajectory as DeblurGAN
//! draws it, turned into a point-spread function (PSF) and convolved with a sharp image.
//!
//! Decisions beyond DeblurGAN's script (docs/spec.md asks for the first three):
//! - the PSF sums to 1 and is centred on its centroid: the trajectory's positions are shifted so
//!   that their mean falls on the centre pixel of an odd-sized kernel. Bilinear splatting keeps
//!   the mean exactly, so the kernel's centroid IS its centre and the blurred image is not
//!   shifted against the sharp one. The kernel is sized to its support (not cut to the 64-pixel
//!   canvas), so the shift never clips it;
//! - the convolution is a true convolution (`out(y, x) = sum k(dy, dx) img(y - dy, x - dx)`, the
//!   kernel NOT flipped: a delta image blurs into the kernel itself), per channel, in float on
//!   the stored pixel values (no sRGB decoding, like GoPro's `blur` set), with REPLICATED edges
//!   (a pixel past the border takes the border's value), then clipped to the value range;
//! - optional Gaussian noise of standard deviation `noise` on the [0, 1] scale (default 0: none),
//!   added after the blur and clipped again.
//!
//! Images are `[.., H, W]` tensors in [-1, 1]; as the kernel sums to 1, convolving there and
//! clipping to [-1, 1] is exactly convolving in [0, 1] and clipping to [0, 1].

use ir::Tensor;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use std::f64::consts::PI;

/// Positions per trajectory.
pub const T: usize = 2000;
/// The canvas the trajectory is centred in, in pixels.
pub const CANVAS: f64 = 64.0;
/// The trajectory's total length in pixels.
pub const L: f64 = 60.0;
const ANXIETY: [f64; 6] = [0.01, 0.009, 0.008, 0.007, 0.005, 0.003];
/// The parts of the exposure a PSF may integrate over, one drawn at random.
pub const EXPOSURES: [f64; 3] = [0.1, 0.5, 1.0];

/// A camera path: `T` positions `(x, y)` (the real and imaginary parts of docs/spec.md's `x_t`),
/// centred in the 64-pixel canvas.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    pub points: Vec<[f64; 2]>,
}

impl Trajectory {
    /// docs/spec.md's random trajectory, step for step.
    pub fn random(rng: &mut impl Rng) -> Trajectory {
        let e = ANXIETY[rng.random_range(0..ANXIETY.len())];
        let c = rng.random_range(0.0..0.7);
        let p_big = rng.random_range(0.0..0.2);
        let g = rng.random_range(0.0..10.0);
        let th = rng.random_range(0.0..2.0 * PI);
        let s = L / (T - 1) as f64;
        let mut v = C::polar(e, th);
        let mut x = C(0.0, 0.0);
        let mut points = Vec::with_capacity(T);
        points.push(x);
        for _ in 1..T {
            let mut dv = C(0.0, 0.0);
            if rng.random::<f64>() < p_big * e {
                dv = dv + v * C::polar(2.0, PI + rng.random_range(-0.5..0.5));
            }
            let (n1, n2): (f64, f64) = (StandardNormal.sample(rng), StandardNormal.sample(rng));
            dv = dv + (C(g * n1, g * n2) - x * c) * (e * s);
            v = v + dv;
            let norm = v.abs();
            // A step that cancels out exactly keeps the initial heading rather than dividing by 0.
            v = if norm > 0.0 && norm.is_finite() {
                v * (s / norm)
            } else {
                C::polar(s, th)
            };
            x = x + v;
            points.push(x);
        }
        // Centre the bounding box in the canvas.
        let (lo, hi) = bounds(&points);
        let shift = C(
            CANVAS / 2.0 - (lo.0 + hi.0) / 2.0,
            CANVAS / 2.0 - (lo.1 + hi.1) / 2.0,
        );
        Trajectory {
            points: points
                .into_iter()
                .map(|p| [(p + shift).0, (p + shift).1])
                .collect(),
        }
    }

    /// The sum of the step lengths.
    pub fn length(&self) -> f64 {
        self.points
            .windows(2)
            .map(|w| (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]))
            .sum()
    }
}

/// A PSF: `size x size` weights (odd `size`, centre at `size / 2`), row-major, summing to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    pub size: usize,
    pub weights: Vec<f32>,
}

impl Kernel {
    /// A random trajectory over a random part (1/10, 1/2 or all) of the exposure.
    pub fn random(rng: &mut impl Rng) -> Kernel {
        Kernel::random_scaled(rng, 1.0)
    }

    /// As [`Kernel::random`] (the same draws), with the trajectory scaled by `scale` about its
    /// start: 0.25 gives 15-pixel paths, a blur as strong on a 64-pixel image as docs/spec.md's is on
    /// a 256-pixel crop.
    pub fn random_scaled(rng: &mut impl Rng, scale: f64) -> Kernel {
        let mut traj = Trajectory::random(rng);
        for p in traj.points.iter_mut() {
            *p = [p[0] * scale, p[1] * scale];
        }
        let part = EXPOSURES[rng.random_range(0..EXPOSURES.len())];
        Kernel::from_trajectory(&traj, part)
    }

    /// The positions of the first `part` of the trajectory splatted bilinearly, centred on their
    /// mean (see the module comment) and normalised to sum 1.
    pub fn from_trajectory(traj: &Trajectory, part: f64) -> Kernel {
        let n = ((traj.points.len() as f64 * part).round() as usize).clamp(1, traj.points.len());
        let pts = &traj.points[..n];
        let mean = pts.iter().fold([0.0; 2], |m, p| [m[0] + p[0], m[1] + p[1]]);
        let mean = [mean[0] / n as f64, mean[1] / n as f64];
        let reach = pts
            .iter()
            .map(|p| (p[0] - mean[0]).abs().max((p[1] - mean[1]).abs()))
            .fold(0.0, f64::max);
        let r = reach.ceil() as usize + 1;
        let size = 2 * r + 1;
        let mut acc = vec![0.0f64; size * size];
        for p in pts {
            let (x, y) = (p[0] - mean[0] + r as f64, p[1] - mean[1] + r as f64);
            let (x0, y0) = (x.floor(), y.floor());
            let (fx, fy) = (x - x0, y - y0);
            let (x0, y0) = (x0 as usize, y0 as usize);
            acc[y0 * size + x0] += (1.0 - fx) * (1.0 - fy);
            acc[y0 * size + x0 + 1] += fx * (1.0 - fy);
            acc[(y0 + 1) * size + x0] += (1.0 - fx) * fy;
            acc[(y0 + 1) * size + x0 + 1] += fx * fy;
        }
        let total: f64 = acc.iter().sum();
        Kernel {
            size,
            weights: acc.iter().map(|&w| (w / total) as f32).collect(),
        }
    }

    /// The weighted mean position `(x, y)` of the kernel, in pixels from its top-left corner.
    pub fn centroid(&self) -> (f64, f64) {
        let (mut cx, mut cy, mut sum) = (0.0, 0.0, 0.0);
        for (i, &w) in self.weights.iter().enumerate() {
            let w = w as f64;
            cx += w * (i % self.size) as f64;
            cy += w * (i / self.size) as f64;
            sum += w;
        }
        (cx / sum, cy / sum)
    }

    /// For viewing: grey 8-bit, the largest weight white.
    pub fn to_gray8(&self) -> image::GrayImage {
        let max = self
            .weights
            .iter()
            .cloned()
            .fold(0.0f32, f32::max)
            .max(f32::MIN_POSITIVE);
        let s = self.size as u32;
        image::GrayImage::from_fn(s, s, |x, y| {
            let w = self.weights[(y * s + x) as usize];
            image::Luma([(w / max * 255.0).round().clamp(0.0, 255.0) as u8])
        })
    }
}

/// `img` (`[.., H, W]`, values in [-1, 1]) convolved with `k`: the whole image.
pub fn blur(img: &Tensor<f32>, k: &Kernel) -> Tensor<f32> {
    let n = img.shape.len();
    let (h, w) = (img.shape[n - 2], img.shape[n - 1]);
    blur_window(img, k, 0, 0, h, w)
}

/// The `h x w` window at `(y0, x0)` of `blur(img, k)`, computed without blurring the rest: the
/// pixels past the window come from the image (the edges replicated only at the image's border).
pub fn blur_window(
    img: &Tensor<f32>,
    k: &Kernel,
    y0: usize,
    x0: usize,
    h: usize,
    w: usize,
) -> Tensor<f32> {
    let n = img.shape.len();
    let (ih, iw) = (img.shape[n - 2], img.shape[n - 1]);
    let r = (k.size / 2) as isize;
    // Only the non-zero taps: a motion PSF touches a few hundred of its pixels.
    let taps: Vec<(isize, isize, f32)> = (k.weights.iter().enumerate())
        .filter(|(_, &wt)| wt > 0.0)
        .map(|(i, &wt)| ((i / k.size) as isize - r, (i % k.size) as isize - r, wt))
        .collect();
    let planes = img.data.len() / (ih * iw).max(1);
    let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
    // For each column offset, the source column of every output column (replicated edges).
    let mut out = vec![0.0f32; planes * h * w];
    for p in 0..planes {
        let src = &img.data[p * ih * iw..(p + 1) * ih * iw];
        let dst = &mut out[p * h * w..(p + 1) * h * w];
        for &(dy, dx, wt) in &taps {
            for y in 0..h {
                let row = &src[clamp((y0 + y) as isize - dy, ih) * iw..][..iw];
                let acc = &mut dst[y * w..(y + 1) * w];
                for (x, a) in acc.iter_mut().enumerate() {
                    *a += wt * row[clamp((x0 + x) as isize - dx, iw)];
                }
            }
        }
    }
    for v in &mut out {
        *v = v.clamp(-1.0, 1.0);
    }
    let mut shape = img.shape.clone();
    shape[n - 2] = h;
    shape[n - 1] = w;
    Tensor::new(&shape, out)
}

/// Add Gaussian noise of standard deviation `sigma` on the [0, 1] scale (so `2 sigma` on the
/// [-1, 1] scale of `t`), then clip.
pub fn add_noise(t: &mut Tensor<f32>, sigma: f32, rng: &mut impl Rng) {
    if sigma <= 0.0 {
        return;
    }
    for v in &mut t.data {
        let n: f32 = StandardNormal.sample(rng);
        *v = (*v + 2.0 * sigma * n).clamp(-1.0, 1.0);
    }
}

fn bounds(points: &[C]) -> ((f64, f64), (f64, f64)) {
    points.iter().fold(
        (
            (f64::INFINITY, f64::INFINITY),
            (f64::NEG_INFINITY, f64::NEG_INFINITY),
        ),
        |(lo, hi), p| {
            (
                (lo.0.min(p.0), lo.1.min(p.1)),
                (hi.0.max(p.0), hi.1.max(p.1)),
            )
        },
    )
}

/// Just enough complex arithmetic to write docs/spec.md's recurrence as it reads.
#[derive(Debug, Clone, Copy)]
struct C(f64, f64);

impl C {
    fn polar(r: f64, th: f64) -> C {
        C(r * th.cos(), r * th.sin())
    }
    fn abs(self) -> f64 {
        self.0.hypot(self.1)
    }
}

impl std::ops::Add for C {
    type Output = C;
    fn add(self, o: C) -> C {
        C(self.0 + o.0, self.1 + o.1)
    }
}

impl std::ops::Sub for C {
    type Output = C;
    fn sub(self, o: C) -> C {
        C(self.0 - o.0, self.1 - o.1)
    }
}

impl std::ops::Mul for C {
    type Output = C;
    fn mul(self, o: C) -> C {
        C(self.0 * o.0 - self.1 * o.1, self.0 * o.1 + self.1 * o.0)
    }
}

impl std::ops::Mul<f64> for C {
    type Output = C;
    fn mul(self, k: f64) -> C {
        C(self.0 * k, self.1 * k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::rng_for;

    #[test]
    fn trajectory_has_t_points_length_l_and_fits_the_canvas() {
        for seed in 0..5 {
            let t = Trajectory::random(&mut rng_for(seed, 0));
            assert_eq!(t.points.len(), T);
            assert!((t.length() - L).abs() < 1e-6, "length {}", t.length());
            for p in &t.points {
                assert!(
                    p.iter().all(|&c| (0.0..CANVAS).contains(&c)),
                    "{p:?} off the canvas"
                );
            }
        }
    }

    #[test]
    fn psf_sums_to_one_is_non_negative_and_centred() {
        for seed in 0..20 {
            let k = Kernel::random(&mut rng_for(seed, 3));
            assert_eq!(k.size % 2, 1);
            assert!(k.weights.iter().all(|&w| w >= 0.0));
            let sum: f64 = k.weights.iter().map(|&w| w as f64).sum();
            assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
            let (cx, cy) = k.centroid();
            let c = (k.size / 2) as f64;
            assert!(
                (cx - c).abs() < 0.5 && (cy - c).abs() < 0.5,
                "centroid {cx},{cy} vs {c}"
            );
        }
    }

    #[test]
    fn psf_is_deterministic_per_seed_and_differs_across_seeds() {
        let a = Kernel::random(&mut rng_for(7, 1));
        assert_eq!(a, Kernel::random(&mut rng_for(7, 1)));
        assert_ne!(a, Kernel::random(&mut rng_for(8, 1)));
        assert_ne!(a, Kernel::random(&mut rng_for(7, 2)));
    }

    #[test]
    fn blur_keeps_a_constant_image_and_its_shape() {
        let k = Kernel::random(&mut rng_for(1, 0));
        let img = Tensor::new(&[1, 3, 5, 9], vec![0.3; 3 * 5 * 9]);
        let b = blur(&img, &k);
        assert_eq!(b.shape, [1, 3, 5, 9]);
        assert!(b.data.iter().all(|v| (v - 0.3).abs() < 1e-5));
    }

    #[test]
    fn blurring_a_delta_gives_the_kernel_unflipped() {
        let k = Kernel::random(&mut rng_for(2, 0));
        let (s, r) = (k.size + 4, k.size / 2);
        // A unit delta on zeros: no value reaches the clip, so the blur is plainly linear.
        let mut img = Tensor::zeros(&[1, 1, s, s]);
        let (cy, cx) = (s / 2, s / 2);
        img.data[cy * s + cx] = 1.0;
        let b = blur(&img, &k);
        for ky in 0..k.size {
            for kx in 0..k.size {
                let got = b.data[(cy + ky - r) * s + (cx + kx - r)];
                assert!((got - k.weights[ky * k.size + kx]).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn a_window_of_the_blur_is_the_blur_of_the_whole() {
        let k = Kernel::random(&mut rng_for(4, 0));
        let data = (0..2 * 13 * 17)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let img = Tensor::new(&[1, 2, 13, 17], data);
        let whole = blur(&img, &k);
        let part = blur_window(&img, &k, 3, 5, 6, 9);
        for c in 0..2 {
            for y in 0..6 {
                for x in 0..9 {
                    assert_eq!(
                        part.data[(c * 6 + y) * 9 + x],
                        whole.data[(c * 13 + y + 3) * 17 + x + 5]
                    );
                }
            }
        }
    }
}
