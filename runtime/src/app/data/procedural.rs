//! Sharp RGB images drawn from a seed, so that training runs on a fresh machine with nothing to
//! download. Each image layers what deblurring has to learn: a smooth or textured background
//! (gradients, fractal value noise), patches of periodic texture (stripes, checkers, dots),
//! anti-aliased shapes with hard edges in every direction (discs, ellipses, rotated boxes,
//! triangles, rings, bars), text-like rows of thin strokes, and a little grain.
//! Everything comes from `(seed, index)`: the same pair gives the same image at the same size.

use super::rng_for;
use ir::Tensor;
use rand::Rng;
use std::f32::consts::PI;

/// Keeps the images' random stream apart from the blur's, which also uses `(seed, index)`.
const SALT: u64 = 0x9e37_79b9_7f4a_7c15;

type Rgb = [f32; 3];

/// Image `index` of `seed`: `[1, 3, h, w]` in [-1, 1].
pub fn image(h: usize, w: usize, seed: u64, index: u64) -> Tensor<f32> {
    let rng = &mut rng_for(seed ^ SALT, index);
    let mut c = Canvas {
        h,
        w,
        px: vec![[0.0; 3]; h * w],
    };
    let scale = h.min(w).max(1) as f32;
    background(&mut c, rng);
    for _ in 0..rng.random_range(0..3) {
        texture_patch(&mut c, scale, rng);
    }
    for _ in 0..rng.random_range(6..20) {
        let shape = Shape::random(h as f32, w as f32, scale, rng);
        let col = colour(rng);
        // Some shapes are shaded across their extent, as lit objects are.
        let shade = rng.random_range(-0.3f32..0.3);
        let dir = rng.random_range(0.0..2.0 * PI);
        c.fill(&shape, |x, y| {
            let t = ((x - w as f32 / 2.0) * dir.cos() + (y - h as f32 / 2.0) * dir.sin()) / scale;
            col.map(|v| (v * (1.0 + shade * t)).clamp(0.0, 1.0))
        });
    }
    for _ in 0..rng.random_range(0..3) {
        text(&mut c, scale, rng);
    }
    let grain = rng.random_range(0.0f32..0.02);
    let mut data = vec![0.0; 3 * h * w];
    for (i, p) in c.px.iter().enumerate() {
        for ch in 0..3 {
            let v = p[ch] + grain * (rng.random::<f32>() - 0.5);
            data[ch * h * w + i] = v.clamp(0.0, 1.0) * 2.0 - 1.0;
        }
    }
    Tensor::new(&[1, 3, h, w], data)
}

struct Canvas {
    h: usize,
    w: usize,
    px: Vec<Rgb>,
}

impl Canvas {
    /// Paint `shape` over the canvas with the colour `col(x, y)`, anti-aliased by coverage
    /// `clamp(0.5 - distance, 0, 1)` of the signed distance in pixels.
    fn fill(&mut self, shape: &Shape, col: impl Fn(f32, f32) -> Rgb) {
        let (x0, y0, x1, y1) = shape.bbox();
        let xs = x0.floor().max(0.0) as usize..(x1.ceil().max(0.0) as usize).min(self.w);
        for y in y0.floor().max(0.0) as usize..(y1.ceil().max(0.0) as usize).min(self.h) {
            for x in xs.clone() {
                let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                let a = (0.5 - shape.sdf(fx, fy)).clamp(0.0, 1.0);
                if a > 0.0 {
                    let (p, c) = (&mut self.px[y * self.w + x], col(fx, fy));
                    for ch in 0..3 {
                        p[ch] += a * (c[ch] - p[ch]);
                    }
                }
            }
        }
    }
}

fn colour(rng: &mut impl Rng) -> Rgb {
    // Mostly saturated-ish colours, sometimes greys, as in photographs.
    if rng.random::<f32>() < 0.25 {
        let g = rng.random::<f32>();
        [g, g, g]
    } else {
        [rng.random(), rng.random(), rng.random()]
    }
}

fn background(c: &mut Canvas, rng: &mut impl Rng) {
    let (a, b) = (colour(rng), colour(rng));
    let (h, w) = (c.h as f32, c.w as f32);
    match rng.random_range(0..3) {
        0 => {
            let th = rng.random_range(0.0..2.0 * PI);
            let (dx, dy) = (th.cos(), th.sin());
            let span = w * dx.abs() + h * dy.abs();
            c.paint(|x, y| mix(a, b, ((x - w / 2.0) * dx + (y - h / 2.0) * dy) / span + 0.5));
        }
        1 => {
            let (cx, cy) = (rng.random::<f32>() * w, rng.random::<f32>() * h);
            let r = w.max(h);
            c.paint(|x, y| mix(a, b, ((x - cx).hypot(y - cy) / r).min(1.0)));
        }
        _ => {
            let noise = ValueNoise::new(c.h, c.w, rng.random_range(8.0..48.0), rng);
            c.paint(|x, y| mix(a, b, noise.at(x, y)));
        }
    }
}

impl Canvas {
    fn paint(&mut self, f: impl Fn(f32, f32) -> Rgb) {
        for (i, p) in self.px.iter_mut().enumerate() {
            *p = f((i % self.w) as f32 + 0.5, (i / self.w) as f32 + 0.5);
        }
    }
}

fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    let t = t.clamp(0.0, 1.0);
    [0, 1, 2].map(|i| a[i] + t * (b[i] - a[i]))
}

/// Stripes, checkers or dots of two colours inside a random shape.
fn texture_patch(c: &mut Canvas, scale: f32, rng: &mut impl Rng) {
    let shape = Shape::random(c.h as f32, c.w as f32, scale * 1.5, rng);
    let (a, b) = (colour(rng), colour(rng));
    let period = rng.random_range(3.0f32..(scale / 6.0).max(4.0));
    let th = rng.random_range(0.0..PI);
    let (cs, sn) = (th.cos(), th.sin());
    let kind = rng.random_range(0..3);
    c.fill(&shape, |x, y| {
        let (u, v) = ((x * cs + y * sn) / period, (-x * sn + y * cs) / period);
        let on = match kind {
            0 => u.rem_euclid(1.0) < 0.5,
            1 => (u.floor() + v.floor()) as i64 % 2 == 0,
            _ => (u.rem_euclid(1.0) - 0.5).hypot(v.rem_euclid(1.0) - 0.5) < 0.3,
        };
        if on {
            a
        } else {
            b
        }
    });
}

/// Rows of glyph-like groups of thin strokes, like printed text seen from afar.
fn text(c: &mut Canvas, scale: f32, rng: &mut impl Rng) {
    let size = rng.random_range(5.0f32..(scale / 10.0).max(6.0));
    let thick = rng.random_range(0.8f32..(size / 5.0).max(1.0));
    let ink = colour(rng);
    let (x0, y0) = (
        rng.random::<f32>() * c.w as f32 * 0.7,
        rng.random::<f32>() * c.h as f32 * 0.8,
    );
    let (rows, cols) = (rng.random_range(1..5), rng.random_range(3..14));
    for r in 0..rows {
        let y = y0 + r as f32 * size * 1.6;
        for k in 0..cols {
            if rng.random::<f32>() < 0.15 {
                continue; // a space between words
            }
            let x = x0 + k as f32 * size * 0.8;
            for _ in 0..rng.random_range(1..4) {
                let p = |rng: &mut dyn rand::RngCore| {
                    (
                        x + rng.random::<f32>() * size * 0.6,
                        y + rng.random::<f32>() * size,
                    )
                };
                let (a, b) = (p(rng), p(rng));
                c.fill(
                    &Shape::Segment {
                        a,
                        b,
                        half: thick / 2.0,
                    },
                    |_, _| ink,
                );
            }
        }
    }
}

/// Shapes by their signed distance in pixels (negative inside).
enum Shape {
    Disc {
        c: (f32, f32),
        r: f32,
    },
    Ellipse {
        c: (f32, f32),
        a: f32,
        b: f32,
        th: f32,
    },
    Box {
        c: (f32, f32),
        hw: f32,
        hh: f32,
        th: f32,
    },
    Ring {
        c: (f32, f32),
        r: f32,
        half: f32,
    },
    Segment {
        a: (f32, f32),
        b: (f32, f32),
        half: f32,
    },
    Triangle([(f32, f32); 3]),
}

impl Shape {
    fn random(h: f32, w: f32, scale: f32, rng: &mut impl Rng) -> Shape {
        let c = (rng.random::<f32>() * w, rng.random::<f32>() * h);
        let mut size = || rng.random_range(0.02..0.3f32) * scale + 1.0;
        let (s1, s2, s3) = (size(), size(), size());
        let th = rng.random_range(0.0..PI);
        match rng.random_range(0..6) {
            0 => Shape::Disc { c, r: s1 },
            1 => Shape::Ellipse {
                c,
                a: s1,
                b: s2,
                th,
            },
            2 => Shape::Box {
                c,
                hw: s1,
                hh: s2,
                th,
            },
            3 => Shape::Ring {
                c,
                r: s1,
                half: (s2 * 0.15).max(0.7),
            },
            4 => Shape::Segment {
                a: c,
                b: (c.0 + s1 * th.cos() * 2.0, c.1 + s1 * th.sin() * 2.0),
                half: (s3 * 0.1).max(0.6),
            },
            _ => {
                let v = |k: f32| (c.0 + s1 * (th + k).cos(), c.1 + s2 * (th + k).sin());
                Shape::Triangle([
                    v(0.0),
                    v(rng.random_range(1.2..2.8)),
                    v(rng.random_range(3.5..5.5)),
                ])
            }
        }
    }

    fn sdf(&self, x: f32, y: f32) -> f32 {
        match *self {
            Shape::Disc { c, r } => (x - c.0).hypot(y - c.1) - r,
            Shape::Ellipse { c, a, b, th } => {
                let (u, v) = rotate(x - c.0, y - c.1, th);
                ((u / a).hypot(v / b) - 1.0) * a.min(b)
            }
            Shape::Box { c, hw, hh, th } => {
                let (u, v) = rotate(x - c.0, y - c.1, th);
                let (dx, dy) = (u.abs() - hw, v.abs() - hh);
                dx.max(0.0).hypot(dy.max(0.0)) + dx.max(dy).min(0.0)
            }
            Shape::Ring { c, r, half } => ((x - c.0).hypot(y - c.1) - r).abs() - half,
            Shape::Segment { a, b, half } => {
                let (px, py, bx, by) = (x - a.0, y - a.1, b.0 - a.0, b.1 - a.1);
                let t = ((px * bx + py * by) / (bx * bx + by * by).max(1e-6)).clamp(0.0, 1.0);
                (px - t * bx).hypot(py - t * by) - half
            }
            Shape::Triangle(v) => {
                // The largest signed distance to the three edges' lines (exact inside, a close
                // enough bound outside for anti-aliasing). Orientation-independent via `sign`.
                let area =
                    (v[1].0 - v[0].0) * (v[2].1 - v[0].1) - (v[1].1 - v[0].1) * (v[2].0 - v[0].0);
                let sign = if area < 0.0 { -1.0 } else { 1.0 };
                (0..3)
                    .map(|i| {
                        let (p, q) = (v[i], v[(i + 1) % 3]);
                        let (ex, ey) = (q.0 - p.0, q.1 - p.1);
                        -sign * (ex * (y - p.1) - ey * (x - p.0)) / ex.hypot(ey).max(1e-6)
                    })
                    .fold(f32::NEG_INFINITY, f32::max)
            }
        }
    }

    /// `(x0, y0, x1, y1)` enclosing the shape (and its anti-aliased rim).
    fn bbox(&self) -> (f32, f32, f32, f32) {
        let around =
            |c: (f32, f32), r: f32| (c.0 - r - 1.0, c.1 - r - 1.0, c.0 + r + 1.0, c.1 + r + 1.0);
        match *self {
            Shape::Disc { c, r } => around(c, r),
            Shape::Ellipse { c, a, b, .. } => around(c, a.max(b)),
            Shape::Box { c, hw, hh, .. } => around(c, hw.hypot(hh)),
            Shape::Ring { c, r, half } => around(c, r + half),
            Shape::Segment { a, b, half } => (
                a.0.min(b.0) - half - 1.0,
                a.1.min(b.1) - half - 1.0,
                a.0.max(b.0) + half + 1.0,
                a.1.max(b.1) + half + 1.0,
            ),
            Shape::Triangle(v) => {
                let xs = v.map(|p| p.0);
                let ys = v.map(|p| p.1);
                let lo = |a: [f32; 3]| a.iter().cloned().fold(f32::INFINITY, f32::min) - 1.0;
                let hi = |a: [f32; 3]| a.iter().cloned().fold(f32::NEG_INFINITY, f32::max) + 1.0;
                (lo(xs), lo(ys), hi(xs), hi(ys))
            }
        }
    }
}

fn rotate(x: f32, y: f32, th: f32) -> (f32, f32) {
    let (c, s) = (th.cos(), th.sin());
    (x * c + y * s, -x * s + y * c)
}

/// Fractal value noise in [0, 1]: three octaves of smoothly interpolated random lattices.
struct ValueNoise {
    octaves: Vec<(f32, usize, Vec<f32>)>,
}

impl ValueNoise {
    fn new(h: usize, w: usize, cell: f32, rng: &mut impl Rng) -> ValueNoise {
        let octaves = (0..3)
            .map(|o| {
                let cell = (cell / (1 << o) as f32).max(2.0);
                let (gw, gh) = (
                    (w as f32 / cell) as usize + 2,
                    (h as f32 / cell) as usize + 2,
                );
                (
                    cell,
                    gw,
                    (0..gw * gh).map(|_| rng.random::<f32>()).collect(),
                )
            })
            .collect();
        ValueNoise { octaves }
    }

    fn at(&self, x: f32, y: f32) -> f32 {
        let mut sum = 0.0;
        let mut weight = 0.0;
        for (o, (cell, gw, grid)) in self.octaves.iter().enumerate() {
            let (u, v) = (x / cell, y / cell);
            let (i, j) = (u as usize, v as usize);
            let s = |t: f32| t * t * (3.0 - 2.0 * t);
            let (fx, fy) = (s(u.fract()), s(v.fract()));
            let g = |a: usize, b: usize| grid[b * gw + a];
            let top = g(i, j) + fx * (g(i + 1, j) - g(i, j));
            let bottom = g(i, j + 1) + fx * (g(i + 1, j + 1) - g(i, j + 1));
            let amp = 0.5f32.powi(o as i32);
            sum += amp * (top + fy * (bottom - top));
            weight += amp;
        }
        sum / weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_varied_and_not_constant() {
        let a = image(40, 56, 3, 0);
        assert_eq!(a.shape, [1, 3, 40, 56]);
        assert_eq!(a, image(40, 56, 3, 0));
        assert_ne!(a, image(40, 56, 4, 0));
        assert_ne!(a, image(40, 56, 3, 1));
        for i in 0..8 {
            let t = image(32, 32, 0, i);
            assert!(t.data.iter().all(|v| (-1.0..=1.0).contains(v)));
            let mean = t.data.iter().sum::<f32>() / t.data.len() as f32;
            let var = t.data.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / t.data.len() as f32;
            assert!(var > 1e-3, "image {i} is nearly constant (variance {var})");
        }
    }
}
