//! The augmentation of docs/spec.md: a crop window and a horizontal flip, applied alike to the
//! blurred and the sharp image. Images smaller than the crop are first reflect-padded (mirror
//! without repeating the edge pixel, numpy's `reflect`), not upscaled: upscaling would change the
//! blur's scale, padding only adds a mirrored border.

use ir::Tensor;
use rand::Rng;

/// A window of an image: rows `y..y + h`, columns `x..x + w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub y: usize,
    pub x: usize,
    pub h: usize,
    pub w: usize,
}

/// `[H, W]` of an image tensor `[1, C, H, W]` (or `[C, H, W]`).
pub fn hw(t: &Tensor<f32>) -> (usize, usize) {
    let n = t.shape.len();
    (t.shape[n - 2], t.shape[n - 1])
}

/// Planes (channels times batch) of an image tensor.
fn planes(t: &Tensor<f32>) -> usize {
    let (h, w) = hw(t);
    t.data.len() / (h * w).max(1)
}

/// Index `i` folded into `0..n` by mirroring at both ends (any distance, any `n >= 1`).
pub fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// `t` reflect-padded to at least `min_h x min_w`, the padding split evenly on both sides.
pub fn pad_to(t: &Tensor<f32>, min_h: usize, min_w: usize) -> Tensor<f32> {
    let (h, w) = hw(t);
    if h >= min_h && w >= min_w {
        return t.clone();
    }
    let (nh, nw) = (h.max(min_h), w.max(min_w));
    let (top, left) = (((nh - h) / 2) as isize, ((nw - w) / 2) as isize);
    let mut data = Vec::with_capacity(planes(t) * nh * nw);
    for p in 0..planes(t) {
        let plane = &t.data[p * h * w..(p + 1) * h * w];
        for y in 0..nh {
            let row = &plane[reflect(y as isize - top, h) * w..][..w];
            data.extend((0..nw).map(|x| row[reflect(x as isize - left, w)]));
        }
    }
    let mut shape = t.shape.clone();
    let n = shape.len();
    shape[n - 2] = nh;
    shape[n - 1] = nw;
    Tensor::new(&shape, data)
}

/// The crop window of an `h x w` image (already padded to at least `crop`): random for
/// training, the centre for evaluation (so held-out scores don't depend on the seed's luck);
/// the whole image when `crop` is `None`.
pub fn window(h: usize, w: usize, crop: Option<usize>, random: bool, rng: &mut impl Rng) -> Window {
    let Some(c) = crop else {
        return Window { y: 0, x: 0, h, w };
    };
    let (ch, cw) = (c.min(h), c.min(w));
    let (y, x) = if random {
        (rng.random_range(0..=h - ch), rng.random_range(0..=w - cw))
    } else {
        ((h - ch) / 2, (w - cw) / 2)
    };
    Window { y, x, h: ch, w: cw }
}

/// The pixels of `t` inside `win`.
pub fn cut(t: &Tensor<f32>, win: Window) -> Tensor<f32> {
    let (h, w) = hw(t);
    let mut data = Vec::with_capacity(planes(t) * win.h * win.w);
    for p in 0..planes(t) {
        for y in win.y..win.y + win.h {
            data.extend_from_slice(&t.data[(p * h + y) * w + win.x..][..win.w]);
        }
    }
    let mut shape = t.shape.clone();
    let n = shape.len();
    shape[n - 2] = win.h;
    shape[n - 1] = win.w;
    Tensor::new(&shape, data)
}

/// `t` mirrored left to right.
pub fn flip(t: &Tensor<f32>) -> Tensor<f32> {
    let (_, w) = hw(t);
    let mut out = t.clone();
    for row in out.data.chunks_mut(w.max(1)) {
        row.reverse();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_mirrors_without_repeating_the_edge() {
        let got: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(reflect(-5, 1), 0);
    }

    #[test]
    fn pad_reflects_evenly_and_cut_flip_are_exact() {
        let t = Tensor::new(&[1, 1, 2, 3], vec![1., 2., 3., 4., 5., 6.]);
        let p = pad_to(&t, 2, 5);
        assert_eq!(p.shape, [1, 1, 2, 5]);
        assert_eq!(p.data, [2., 1., 2., 3., 2., 5., 4., 5., 6., 5.]);
        let win = Window {
            y: 1,
            x: 1,
            h: 1,
            w: 2,
        };
        assert_eq!(cut(&t, win).data, [5., 6.]);
        assert_eq!(flip(&t).data, [3., 2., 1., 6., 5., 4.]);
    }
}
