//! The matrices of Winograd's minimal filtering for a 3-tap filter along one dimension, for
//! the three convs the compiler rewrites (`WinogradKind`); the 2D algorithms of
//! `ops/winograd/` are their tensor products. Along a dimension, a tile's `patch` inputs d
//! give its outputs as `y = AT [(G g) .* (BT d)]`: A products where the direct conv does 3 per
//! output (stride 1) or per input (the stride-2 ones).
//!
//! The stride-2 ones split the filter by parity (polyphase). A stride-2 conv's output
//! `y[r] = g0 d[2r] + g1 d[2r + 1] + g2 d[2r + 2]` is the middle tap on the odd inputs, one
//! product each, plus the outer taps on the even inputs, a 2-tap correlation: F(m, 2), m + 1
//! products for m outputs. A stride-2 transposed conv with padding 1 (as the conv2d of its
//! flipped weight g) has even outputs `y[2r] = g1 d[r]` and odd ones
//! `y[2r + 1] = g0 d[r] + g2 d[r + 1]`: the same two parts. Either way 2m + 1 products for m
//! outputs (or m inputs) instead of 3m, (2m + 1)^2 instead of 9 m^2 in 2D.

/// Which 3x3 conv a Winograd algorithm computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WinogradKind {
    /// A stride-1 conv: F(m, 3), m outputs from m + 2 inputs.
    Stride1,
    /// A stride-2 conv: m outputs from 2m + 1 inputs.
    Stride2,
    /// A stride-2 transposed conv with padding 1: 2m outputs from m + 1 inputs.
    Upsample2,
}

impl WinogradKind {
    /// The conv's output length along a dimension of `input` elements with zero padding `pad`
    /// on both sides (an upsampling takes none: its patches start at the tile's first input,
    /// and its output is the transposed conv's with out_pad 1; out_pad 0 drops the last).
    pub fn output_len(self, input: usize, pad: usize) -> Option<usize> {
        match self {
            WinogradKind::Stride1 => (input + 2 * pad).checked_sub(2),
            WinogradKind::Stride2 => (input + 2 * pad).checked_sub(3).map(|v| v / 2 + 1),
            WinogradKind::Upsample2 => Some(2 * input).filter(|_| pad == 0),
        }
    }
}

/// The matrices of one dimension: BT is A x patch, G A x 3, AT outputs x A; tile t's patch
/// starts `step` inputs after tile t - 1's.
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradTransforms {
    pub bt: Vec<Vec<f64>>,
    pub g: Vec<Vec<f64>>,
    pub at: Vec<Vec<f64>>,
    pub step: usize,
}

impl WinogradTransforms {
    /// The m with matrices here. F(4, 3) (points 0, +-1, +-2, infinity) has an f32 error near
    /// 2e-5 of the output over 256 channels; F(4, 2) (points 0, +-1, 2, infinity) about 3e-7.
    pub const TILES: [usize; 2] = [2, 4];

    pub fn of(tile: usize, kind: WinogradKind) -> Result<Self, String> {
        if !Self::TILES.contains(&tile) {
            return Err(format!(
                "winograd: expected an output tile of {:?}, found {tile}",
                Self::TILES
            ));
        }
        Ok(match kind {
            WinogradKind::Stride1 => three_tap(tile),
            WinogradKind::Stride2 | WinogradKind::Upsample2 => polyphase(tile, kind),
        })
    }

    /// Products per dimension (the 2D algorithm does A^2).
    pub fn alpha(&self) -> usize {
        self.bt.len()
    }

    /// Inputs per dimension of a tile's patch.
    pub fn patch(&self) -> usize {
        self.bt[0].len()
    }

    /// Outputs per dimension of a tile.
    pub fn out_tile(&self) -> usize {
        self.at.len()
    }
}

/// BT, G and AT of one algorithm.
type Matrices = (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<Vec<f64>>);

fn rows(r: &[&[f64]]) -> Vec<Vec<f64>> {
    r.iter().map(|row| row.to_vec()).collect()
}

/// Lavin & Gray's F(2, 3) and F(4, 3).
fn three_tap(tile: usize) -> WinogradTransforms {
    let (bt, g, at) = match tile {
        2 => (
            rows(&[
                &[1., 0., -1., 0.],
                &[0., 1., 1., 0.],
                &[0., -1., 1., 0.],
                &[0., 1., 0., -1.],
            ]),
            rows(&[
                &[1., 0., 0.],
                &[0.5, 0.5, 0.5],
                &[0.5, -0.5, 0.5],
                &[0., 0., 1.],
            ]),
            rows(&[&[1., 1., 1., 0.], &[0., 1., -1., -1.]]),
        ),
        _ => (
            rows(&[
                &[4., 0., -5., 0., 1., 0.],
                &[0., -4., -4., 1., 1., 0.],
                &[0., 4., -4., -1., 1., 0.],
                &[0., -2., -1., 2., 1., 0.],
                &[0., 2., -1., -2., 1., 0.],
                &[0., 4., 0., -5., 0., 1.],
            ]),
            rows(&[
                &[1. / 4., 0., 0.],
                &[-1. / 6., -1. / 6., -1. / 6.],
                &[-1. / 6., 1. / 6., -1. / 6.],
                &[1. / 24., 1. / 12., 1. / 6.],
                &[1. / 24., -1. / 12., 1. / 6.],
                &[0., 0., 1.],
            ]),
            rows(&[
                &[1., 1., 1., 1., 1., 0.],
                &[0., 1., -1., 2., -2., 0.],
                &[0., 1., 1., 4., 4., 0.],
                &[0., 1., -1., 8., -8., 1.],
            ]),
        ),
    };
    WinogradTransforms {
        bt,
        g,
        at,
        step: tile,
    }
}

/// A stride-2 kind as m direct products of the middle tap and F(m, 2) of the outer two (see
/// the module's comment): products 0..m are the direct ones, m..=2m F(m, 2)'s.
fn polyphase(m: usize, kind: WinogradKind) -> WinogradTransforms {
    let (bt2, g2, at2) = two_tap(m);
    let alpha = 2 * m + 1;
    let unit = |len: usize, i: usize| -> Vec<f64> { (0..len).map(|j| f64::from(j == i)).collect() };
    let mut g: Vec<Vec<f64>> = (0..m).map(|_| vec![0., 1., 0.]).collect();
    g.extend(g2.iter().map(|r| vec![r[0], 0., r[1]]));
    let (bt, at, step) = match kind {
        // Inputs d[0..=2m]: the middle tap reads the odd ones, the outer taps the even ones.
        WinogradKind::Stride2 => {
            let mut bt: Vec<Vec<f64>> = (0..m).map(|r| unit(alpha, 2 * r + 1)).collect();
            bt.extend(bt2.iter().map(|row| {
                let mut spread = vec![0.; alpha];
                row.iter().enumerate().for_each(|(j, &c)| spread[2 * j] = c);
                spread
            }));
            let at = (0..m)
                .map(|r| {
                    let mut row = unit(alpha, r);
                    row[m..].copy_from_slice(&at2[r]);
                    row
                })
                .collect();
            (bt, at, 2 * m)
        }
        // Inputs d[0..=m]: even outputs are the middle tap's products, odd ones F(m, 2)'s.
        _ => {
            let mut bt: Vec<Vec<f64>> = (0..m).map(|r| unit(m + 1, r)).collect();
            bt.extend(bt2);
            let at = (0..2 * m)
                .map(|o| match o % 2 {
                    0 => unit(alpha, o / 2),
                    _ => [vec![0.; m], at2[o / 2].clone()].concat(),
                })
                .collect();
            (bt, at, m)
        }
    };
    WinogradTransforms { bt, g, at, step }
}

/// F(m, 2), `y[i] = g0 d[i] + g1 d[i + 1]` for i < m from d[0..=m], by Toom-Cook: the linear
/// convolution of a 2-term and an m-term polynomial evaluated at m finite points and
/// infinity, `s = C^-1 [(E_2 g) .* (E_m h)]`, transposed into a correlation:
/// `BT = C^-T`, `G = E_2`, `AT = E_m^T`. Each row of BT is scaled to integers (its smallest
/// nonzero entry to 1), G's row by the inverse, so the input transform is mostly adds.
fn two_tap(m: usize) -> Matrices {
    let points: &[f64] = match m {
        2 => &[0., 1.],
        _ => &[0., 1., -1., 2.],
    };
    let alpha = m + 1;
    // Row i of an evaluation matrix: the powers 0..n of point i; the last row picks the
    // leading coefficient (the point at infinity).
    let eval = |n: usize| -> Vec<Vec<f64>> {
        let mut e: Vec<Vec<f64>> = (points.iter())
            .map(|&p| (0..n).map(|k| p.powi(k as i32)).collect())
            .collect();
        e.push((0..n).map(|k| f64::from(k == n - 1)).collect());
        e
    };
    let c_inv = invert(eval(alpha));
    let mut bt: Vec<Vec<f64>> = (0..alpha)
        .map(|i| (0..alpha).map(|j| c_inv[j][i]).collect())
        .collect();
    let mut g = eval(2);
    let e_m = eval(m);
    let at = (0..m)
        .map(|i| (0..alpha).map(|j| e_m[j][i]).collect())
        .collect();
    for (b, g) in bt.iter_mut().zip(&mut g) {
        let smallest = (b.iter().map(|v| v.abs()))
            .filter(|v| *v > 1e-9)
            .fold(f64::INFINITY, f64::min);
        b.iter_mut().for_each(|v| *v = snap(*v / smallest));
        g.iter_mut().for_each(|v| *v *= smallest);
    }
    (bt, g, at)
}

/// Round-off of the inversion removed from entries that are integers.
fn snap(v: f64) -> f64 {
    match (v - v.round()).abs() < 1e-9 {
        true => v.round(),
        false => v,
    }
}

/// The inverse of a small invertible matrix, by Gauss-Jordan elimination with partial pivoting.
fn invert(mut a: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let n = a.len();
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(i == j)).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .expect("a non-empty column");
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col];
        a[col].iter_mut().for_each(|v| *v /= p);
        inv[col].iter_mut().for_each(|v| *v /= p);
        for row in (0..n).filter(|&r| r != col) {
            let f = a[row][col];
            for k in 0..n {
                a[row][k] -= f * a[col][k];
                inv[row][k] -= f * inv[col][k];
            }
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each 1D algorithm against its direct conv (the upsampling's as the conv2d of the
    /// flipped weight), in f64.
    #[test]
    fn each_kind_computes_its_conv_along_a_dimension() {
        let g = [0.7, -1.3, 2.1];
        for (tile, kind) in TILE_KINDS {
            let tf = WinogradTransforms::of(tile, kind).unwrap();
            let d: Vec<f64> = (0..tf.patch()).map(|i| (i as f64 * 1.7).sin()).collect();
            let gg: Vec<f64> = tf.g.iter().map(|r| dot(r, &g)).collect();
            let bd: Vec<f64> = tf.bt.iter().map(|r| dot(r, &d)).collect();
            let prod: Vec<f64> = gg.iter().zip(&bd).map(|(a, b)| a * b).collect();
            let y: Vec<f64> = tf.at.iter().map(|r| dot(r, &prod)).collect();
            let direct: Vec<f64> = match kind {
                WinogradKind::Stride1 => (0..tile).map(|r| dot(&g, &d[r..r + 3])).collect(),
                WinogradKind::Stride2 => (0..tile).map(|r| dot(&g, &d[2 * r..2 * r + 3])).collect(),
                WinogradKind::Upsample2 => (0..2 * tile)
                    .map(|o| match o % 2 {
                        0 => g[1] * d[o / 2],
                        _ => g[0] * d[o / 2] + g[2] * d[o / 2 + 1],
                    })
                    .collect(),
            };
            assert_eq!(y.len(), direct.len(), "{kind:?} {tile}");
            for (a, b) in y.iter().zip(&direct) {
                assert!(
                    (a - b).abs() < 1e-12,
                    "{kind:?} {tile}: {y:?} vs {direct:?}"
                );
            }
        }
    }

    #[test]
    fn two_tap_input_transforms_are_integers() {
        let (bt, _, _) = two_tap(4);
        assert!(bt.iter().flatten().all(|v| *v == v.round()), "{bt:?}");
        assert_eq!(bt[0], [2., -1., -2., 1., 0.]);
    }

    const TILE_KINDS: [(usize, WinogradKind); 6] = [
        (2, WinogradKind::Stride1),
        (4, WinogradKind::Stride1),
        (2, WinogradKind::Stride2),
        (4, WinogradKind::Stride2),
        (2, WinogradKind::Upsample2),
        (4, WinogradKind::Upsample2),
    ];

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }
}
