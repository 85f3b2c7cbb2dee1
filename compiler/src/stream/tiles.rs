//! Windows over an image, and moving a value's part in a window to and from the whole value.

use ir::Tensor;

/// A window along one axis, in image pixels: it starts at `start` (the window's size is the
/// plan's) and its results are kept for `keep`, the part its neighbours do not cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub keep: (usize, usize),
}

/// The fewest windows of `window` pixels covering `0..size`, spread evenly, each keeping what
/// lies at least `halo` from its inner edges (overlaps split in the middle). Windows never leave
/// the image: at its edges a window pads as the whole image does, so only inner edges need a
/// halo. Every position is a multiple of `align`, as `size`, `window` and `halo` are.
pub fn spans(size: usize, window: usize, halo: usize, align: usize) -> Vec<Span> {
    let (size, window, halo) = (size / align, window / align, halo / align);
    if size <= window {
        return vec![Span {
            start: 0,
            keep: (0, size * align),
        }];
    }
    let core = window - 2 * halo;
    let steps = (size - window).div_ceil(core);
    let starts: Vec<usize> = (0..=steps).map(|i| i * (size - window) / steps).collect();
    // Each boundary halfway through the overlap of two neighbours, which is at least 2 halos.
    let mut bounds = vec![0];
    bounds.extend(starts.windows(2).map(|s| (s[0] + s[1] + window) / 2));
    bounds.push(size);
    (starts.iter().zip(bounds.windows(2)))
        .map(|(&start, keep)| Span {
            start: start * align,
            keep: (keep[0] * align, keep[1] * align),
        })
        .collect()
}

/// Rows `y0..y0 + h` and columns `x0..x0 + w` of every plane of `t` `[N, C, H, W]`.
pub fn cut(t: &Tensor<f32>, (y0, x0): (usize, usize), (h, w): (usize, usize)) -> Tensor<f32> {
    let [n, c, th, tw] = ir::shape4(&t.shape);
    let mut out = Vec::with_capacity(n * c * h * w);
    for plane in t.data.chunks(th * tw) {
        for y in y0..y0 + h {
            out.extend_from_slice(&plane[y * tw + x0..y * tw + x0 + w]);
        }
    }
    Tensor::new(&[n, c, h, w], out)
}

/// Write rows `from.0..from.0 + h`, columns `from.1..from.1 + w` of every plane of `part` into
/// `whole` at `to`.
pub fn paste(
    whole: &mut Tensor<f32>,
    to: (usize, usize),
    part: &Tensor<f32>,
    from: (usize, usize),
    (h, w): (usize, usize),
) {
    let [_, _, ph, pw] = ir::shape4(&part.shape);
    let [_, _, th, tw] = ir::shape4(&whole.shape);
    let planes = whole
        .data
        .chunks_mut(th * tw)
        .zip(part.data.chunks(ph * pw));
    for (dst, src) in planes {
        for y in 0..h {
            let d = (to.0 + y) * tw + to.1;
            let s = (from.0 + y) * pw + from.1;
            dst[d..d + w].copy_from_slice(&src[s..s + w]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_image_once_and_stay_inside_it() {
        let cases = [
            (40, 16, 4, 4),
            (16, 16, 4, 4),
            (100, 36, 8, 4),
            (64, 20, 0, 4),
            (96, 32, 8, 8),
        ];
        for (size, window, halo, align) in cases {
            let spans = spans(size, window, halo, align);
            let mut next = 0;
            for s in &spans {
                assert_eq!(s.keep.0, next, "{size} {window} {halo}: {spans:?}");
                assert!(s.start + window <= size);
                // Kept results are at least `halo` from an inner edge of the window.
                assert!(s.keep.0 == 0 || s.keep.0 >= s.start + halo);
                assert!(s.keep.1 == size || s.keep.1 + halo <= s.start + window);
                assert!(s.start % align == 0 && s.keep.0 % align == 0);
                next = s.keep.1;
            }
            assert_eq!(next, size);
            // The fewest windows: one less could not cover the image.
            let core = window - 2 * halo;
            assert!(size <= window || (spans.len() - 2) * core + window < size);
        }
    }

    #[test]
    fn cut_and_paste_move_the_same_pixels() {
        let t = Tensor::new(&[1, 2, 3, 4], (0..24).map(|v| v as f32).collect());
        let part = cut(&t, (1, 1), (2, 2));
        assert_eq!(part.data, vec![5., 6., 9., 10., 17., 18., 21., 22.]);
        let mut whole = Tensor::zeros(&[1, 2, 3, 4]);
        paste(&mut whole, (0, 2), &part, (1, 0), (1, 2));
        assert_eq!(whole.data[2..4], [9., 10.]);
        assert_eq!(whole.data[14..16], [21., 22.]);
    }
}
