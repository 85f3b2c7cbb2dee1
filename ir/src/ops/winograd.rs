//! Winograd's minimal filtering (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks"): a stride-1 3x3 conv computed as F(m x m, 3 x 3). Each m x m tile of the output
//! comes from the (m + 2) x (m + 2) input patch over it, and for A = (m + 2)^2:
//! `y_tile = AT [ sum_c (G g_c GT) .* (BT d_c B) ] A`, so the conv's C x 9 multiply-adds per
//! output become C x A / m^2 (4 for m = 4: 2.25 per output instead of 9) in A independent
//! matrix products over the channels, plus transforms that are linear in the data.
//!
//! The compiler rewrites a conv into the four ops here after autodiff (`compiler/src/winograd.rs`):
//! - `WinogradWeight`: w [O, C, 3, 3] -> U [A, O, C, 1], `U[a] = G w GT`; or, `transposed`, a
//!   stride-1 transposed conv's w [C, O, 3, 3], flipped: that conv is a conv2d of the flipped
//!   weight with padding 2 - pad (without out_pad);
//! - `WinogradInput`: x [N, C, H, W] -> V [A, C, N, T] over the T = th x tw tiles (zero padding
//!   `pad`, tile t = ty * tw + tx at output row ty * m), `V[a] = BT d B`;
//! - `WinogradGemm`: U, V -> M [A, O, N, T], `M[a] = U[a] V[a]` (A GEMMs over the channels);
//! - `WinogradOutput`: M [, bias] -> y [N, O, height, width], `y = AT M A (+ bias)`.
//!
//! Autodiff never sees them: differentiate the conv.

use super::check;
use crate::{shape4, Graph, NodeId, Shape, Tensor};
use num_traits::Float;

/// The transform matrices of F(m x m, 3 x 3): BT is (m+2) x (m+2), G (m+2) x 3, AT m x (m+2).
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradTransforms {
    pub bt: Vec<Vec<f64>>,
    pub g: Vec<Vec<f64>>,
    pub at: Vec<Vec<f64>>,
}

impl WinogradTransforms {
    /// The tiles with matrices here: F(2, 3), exact in floats, and F(4, 3) (points 0, +-1,
    /// +-2, infinity), whose f32 error over 256 channels stays near 2e-5 of the output.
    pub const TILES: [usize; 2] = [2, 4];

    pub fn of(tile: usize) -> Result<Self, String> {
        let rows = |r: &[&[f64]]| r.iter().map(|row| row.to_vec()).collect();
        match tile {
            2 => Ok(WinogradTransforms {
                bt: rows(&[
                    &[1., 0., -1., 0.],
                    &[0., 1., 1., 0.],
                    &[0., -1., 1., 0.],
                    &[0., 1., 0., -1.],
                ]),
                g: rows(&[
                    &[1., 0., 0.],
                    &[0.5, 0.5, 0.5],
                    &[0.5, -0.5, 0.5],
                    &[0., 0., 1.],
                ]),
                at: rows(&[&[1., 1., 1., 0.], &[0., 1., -1., -1.]]),
            }),
            4 => Ok(WinogradTransforms {
                bt: rows(&[
                    &[4., 0., -5., 0., 1., 0.],
                    &[0., -4., -4., 1., 1., 0.],
                    &[0., 4., -4., -1., 1., 0.],
                    &[0., -2., -1., 2., 1., 0.],
                    &[0., 2., -1., -2., 1., 0.],
                    &[0., 4., 0., -5., 0., 1.],
                ]),
                g: rows(&[
                    &[1. / 4., 0., 0.],
                    &[-1. / 6., -1. / 6., -1. / 6.],
                    &[-1. / 6., 1. / 6., -1. / 6.],
                    &[1. / 24., 1. / 12., 1. / 6.],
                    &[1. / 24., -1. / 12., 1. / 6.],
                    &[0., 0., 1.],
                ]),
                at: rows(&[
                    &[1., 1., 1., 1., 1., 0.],
                    &[0., 1., -1., 2., -2., 0.],
                    &[0., 1., 1., 4., 4., 0.],
                    &[0., 1., -1., 8., -8., 1.],
                ]),
            }),
            _ => Err(format!(
                "winograd: expected an output tile of {:?}, found {tile}",
                Self::TILES
            )),
        }
    }

    /// The input patch's side, m + 2.
    pub fn alpha(&self) -> usize {
        self.bt.len()
    }
}

/// w [O, C, 3, 3] -> U [A, O, C, 1]; `transposed`: w [C, O, 3, 3] (a transposed conv's),
/// flipped in both spatial dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradWeight {
    pub tile: usize,
    pub transposed: bool,
}

/// x [N, C, H, W] -> V [A, C, N, T], the patches of a 3x3 conv with zero padding `pad`.
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradInput {
    pub tile: usize,
    pub pad: usize,
}

/// U [A, O, C, 1], V [A, C, N, T] -> M [A, O, N, T].
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradGemm;

/// M [A, O, N, T] (and bias [O] if `bias`) -> y [N, O, height, width].
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradOutput {
    pub tile: usize,
    pub height: usize,
    pub width: usize,
    pub bias: bool,
}

/// Tiles of side `m` over an `h` x `w` output: (rows, columns).
pub fn winograd_tiles(m: usize, h: usize, w: usize) -> (usize, usize) {
    (h.div_ceil(m), w.div_ceil(m))
}

fn compile_time_only(op: &str) -> Result<Vec<Option<NodeId>>, String> {
    Err(format!(
        "{op}: not differentiable: a compile-time form of conv2d (differentiate the conv2d)"
    ))
}

fn cast<T: Float>(v: f64) -> T {
    T::from(v).unwrap_or_else(T::nan)
}

impl WinogradWeight {
    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "winograd_weight";
        check::arity(OP, inputs, 1, "weight")?;
        let a = WinogradTransforms::of(self.tile)?.alpha();
        match check::rank4(OP, "a weight", "[O, C, 3, 3]", inputs[0])? {
            [c, o, 3, 3] if self.transposed => Ok(vec![a * a, o, c, 1]),
            [o, c, 3, 3] => Ok(vec![a * a, o, c, 1]),
            s => Err(format!(
                "{OP}: expected a 3x3 weight [O, C, 3, 3], found {s:?}"
            )),
        }
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let tf = WinogradTransforms::of(self.tile).expect("checked by the shape rule");
        let a = tf.alpha();
        let [_, o, c, _] = shape4(out_shape);
        let w = inputs[0];
        let mut u = Tensor::zeros(out_shape);
        for (oo, cc) in (0..o).flat_map(|oo| (0..c).map(move |cc| (oo, cc))) {
            for (i, j) in (0..a).flat_map(|i| (0..a).map(move |j| (i, j))) {
                let mut s = T::zero();
                for (r, q) in (0..3).flat_map(|r| (0..3).map(move |q| (r, q))) {
                    let tap = match self.transposed {
                        true => w.at4(cc, oo, 2 - r, 2 - q),
                        false => w.at4(oo, cc, r, q),
                    };
                    s = s + cast::<T>(tf.g[i][r] * tf.g[j][q]) * tap;
                }
                u.data[((i * a + j) * o + oo) * c + cc] = s;
            }
        }
        u
    }

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> Result<Vec<Option<NodeId>>, String> {
        compile_time_only("winograd_weight")
    }
}

impl WinogradInput {
    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "winograd_input";
        check::arity(OP, inputs, 1, "x")?;
        let a = WinogradTransforms::of(self.tile)?.alpha();
        let [n, c, h, w] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        let (oh, ow) = (h + 2 * self.pad, w + 2 * self.pad);
        if oh < 3 || ow < 3 {
            return Err(format!(
                "{OP}: expected a padded input of at least 3x3, found {oh}x{ow}"
            ));
        }
        let (th, tw) = winograd_tiles(self.tile, oh - 2, ow - 2);
        Ok(vec![a * a, c, n, th * tw])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let tf = WinogradTransforms::of(self.tile).expect("checked by the shape rule");
        let (a, m) = (tf.alpha(), self.tile);
        let x = inputs[0];
        let [n, c, h, w] = shape4(&x.shape);
        let (_, tw) = winograd_tiles(m, h + 2 * self.pad - 2, w + 2 * self.pad - 2);
        let t_count = out_shape[3];
        let at = |nn: usize, cc: usize, r: usize, q: usize| -> T {
            let (r, q) = (r.checked_sub(self.pad), q.checked_sub(self.pad));
            match (r, q) {
                (Some(r), Some(q)) if r < h && q < w => x.at4(nn, cc, r, q),
                _ => T::zero(),
            }
        };
        let mut v = Tensor::zeros(out_shape);
        for (nn, cc, t) in
            (0..n).flat_map(|nn| (0..c).flat_map(move |cc| (0..t_count).map(move |t| (nn, cc, t))))
        {
            let (r0, q0) = ((t / tw) * m, (t % tw) * m);
            for (i, j) in (0..a).flat_map(|i| (0..a).map(move |j| (i, j))) {
                let mut s = T::zero();
                for (k, l) in (0..a).flat_map(|k| (0..a).map(move |l| (k, l))) {
                    let coef = tf.bt[i][k] * tf.bt[j][l];
                    if coef != 0.0 {
                        s = s + cast::<T>(coef) * at(nn, cc, r0 + k, q0 + l);
                    }
                }
                v.data[(((i * a + j) * c + cc) * n + nn) * t_count + t] = s;
            }
        }
        v
    }

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> Result<Vec<Option<NodeId>>, String> {
        compile_time_only("winograd_input")
    }
}

impl WinogradGemm {
    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "winograd_gemm";
        check::arity(OP, inputs, 2, "u, v")?;
        let [a, o, c, _] = check::rank4(OP, "transformed weights", "[A, O, C, 1]", inputs[0])?;
        let [va, vc, n, t] = check::rank4(OP, "transformed inputs", "[A, C, N, T]", inputs[1])?;
        if (va, vc) != (a, c) || inputs[0][3] != 1 {
            return Err(format!(
                "{OP}: expected inputs [{a}, {c}, N, T] for weights [{a}, {o}, {c}, 1], found {:?} and {:?}",
                inputs[1], inputs[0]
            ));
        }
        Ok(vec![a, o, n, t])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let (u, v) = (inputs[0], inputs[1]);
        let [a, o, n, t] = shape4(out_shape);
        let c = u.shape[2];
        let mut y = Tensor::zeros(out_shape);
        for (aa, oo) in (0..a).flat_map(|aa| (0..o).map(move |oo| (aa, oo))) {
            for cc in 0..c {
                let w = u.data[(aa * o + oo) * c + cc];
                let row = &v.data[((aa * c + cc) * n) * t..((aa * c + cc) * n + n) * t];
                let out = &mut y.data[((aa * o + oo) * n) * t..((aa * o + oo) * n + n) * t];
                out.iter_mut().zip(row).for_each(|(y, &x)| *y = *y + w * x);
            }
        }
        y
    }

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> Result<Vec<Option<NodeId>>, String> {
        compile_time_only("winograd_gemm")
    }
}

impl WinogradOutput {
    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "winograd_output";
        let (count, names) = match self.bias {
            true => (2, "m, bias"),
            false => (1, "m"),
        };
        check::arity(OP, inputs, count, names)?;
        let alpha = WinogradTransforms::of(self.tile)?.alpha();
        let [a, o, n, t] = check::rank4(OP, "products", "[A, O, N, T]", inputs[0])?;
        let (th, tw) = winograd_tiles(self.tile, self.height, self.width);
        if a != alpha * alpha || t != th * tw {
            return Err(format!(
                "{OP}: expected products [{}, O, N, {}] for a {}x{} output in tiles of {}, found {:?}",
                alpha * alpha,
                th * tw,
                self.height,
                self.width,
                self.tile,
                inputs[0]
            ));
        }
        if let Some(b) = inputs.get(1).filter(|b| **b != [o]) {
            return Err(format!(
                "{OP}: expected a bias [{o}] (one per output channel), found {b:?}"
            ));
        }
        Ok(vec![n, o, self.height, self.width])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let tf = WinogradTransforms::of(self.tile).expect("checked by the shape rule");
        let (a, m) = (tf.alpha(), self.tile);
        let mm = inputs[0];
        let [_, o, n, t_count] = shape4(&mm.shape);
        let (_, tw) = winograd_tiles(m, self.height, self.width);
        let mut y = Tensor::zeros(out_shape);
        for (nn, oo, t) in
            (0..n).flat_map(|nn| (0..o).flat_map(move |oo| (0..t_count).map(move |t| (nn, oo, t))))
        {
            let bias = inputs.get(1).map_or(T::zero(), |b| b.data[oo]);
            for (p, q) in (0..m).flat_map(|p| (0..m).map(move |q| (p, q))) {
                let (r, col) = ((t / tw) * m + p, (t % tw) * m + q);
                if r >= self.height || col >= self.width {
                    continue;
                }
                let mut s = bias;
                for (i, j) in (0..a).flat_map(|i| (0..a).map(move |j| (i, j))) {
                    let coef = tf.at[p][i] * tf.at[q][j];
                    if coef != 0.0 {
                        let v = mm.data[(((i * a + j) * o + oo) * n + nn) * t_count + t];
                        s = s + cast::<T>(coef) * v;
                    }
                }
                y.data[((nn * o + oo) * self.height + r) * self.width + col] = s;
            }
        }
        y
    }

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> Result<Vec<Option<NodeId>>, String> {
        compile_time_only("winograd_output")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Conv2d;
    use crate::Op;

    /// The four ops in a row give the direct conv's result (the CPU references of both).
    fn check_against_direct(tile: usize, [n, c, h, w]: [usize; 4], o: usize, pad: usize) {
        let wave =
            |len: usize, k: f64| -> Vec<f64> { (0..len).map(|i| ((i as f64) * k).sin()).collect() };
        let x = Tensor::new(&[n, c, h, w], wave(n * c * h * w, 0.37));
        let wt = Tensor::new(&[o, c, 3, 3], wave(o * c * 9, 1.13));
        let b = Tensor::new(&[o], wave(o, 0.7));
        let conv = Op::Conv2d(Conv2d {
            stride: 1,
            pad,
            bias: true,
        });
        let y_shape = conv.infer_shape(&[&x.shape, &wt.shape, &b.shape]).unwrap();
        let direct = conv.cpu(&[&x, &wt, &b], &y_shape);
        let run = |op: Op, ins: &[&Tensor<f64>]| {
            let shapes: Vec<&[usize]> = ins.iter().map(|t| t.shape.as_slice()).collect();
            let shape = op.infer_shape(&shapes).unwrap();
            op.cpu(ins, &shape)
        };
        let weight = WinogradWeight {
            tile,
            transposed: false,
        };
        let u = run(Op::WinogradWeight(weight), &[&wt]);
        let v = run(Op::WinogradInput(WinogradInput { tile, pad }), &[&x]);
        let m = run(Op::WinogradGemm(WinogradGemm), &[&u, &v]);
        let out = WinogradOutput {
            tile,
            height: y_shape[2],
            width: y_shape[3],
            bias: true,
        };
        let y = run(Op::WinogradOutput(out), &[&m, &b]);
        assert_eq!(y.shape, direct.shape);
        for (k, (a, b)) in y.data.iter().zip(&direct.data).enumerate() {
            assert!((a - b).abs() < 1e-9, "tile {tile}: element {k}: {a} vs {b}");
        }
    }

    #[test]
    fn the_four_ops_compute_the_direct_conv() {
        for tile in WinogradTransforms::TILES {
            // Padding 1, an output that the tiles divide and one they do not (7x5), a batch.
            check_against_direct(tile, [2, 3, 8, 8], 4, 1);
            check_against_direct(tile, [1, 2, 7, 5], 3, 1);
            // No padding: a 9x6 input gives a 7x4 output.
            check_against_direct(tile, [1, 2, 9, 6], 2, 0);
        }
    }

    /// A stride-1 transposed conv is the conv2d of its flipped weight with padding 2 - pad.
    #[test]
    fn a_transposed_weight_gives_the_transposed_conv() {
        use crate::ops::ConvTranspose2d;
        let wave =
            |len: usize, k: f64| -> Vec<f64> { (0..len).map(|i| ((i as f64) * k).sin()).collect() };
        let (c, o, pad) = (3, 2, 1);
        let x = Tensor::new(&[1, c, 6, 5], wave(c * 30, 0.41));
        let wt = Tensor::new(&[c, o, 3, 3], wave(c * o * 9, 0.93));
        let op = Op::ConvTranspose2d(ConvTranspose2d {
            stride: 1,
            pad,
            out_pad: 0,
            bias: false,
        });
        let shape = op.infer_shape(&[&x.shape, &wt.shape]).unwrap();
        let direct = op.cpu(&[&x, &wt], &shape);
        let tile = 4;
        let weight = WinogradWeight {
            tile,
            transposed: true,
        };
        let u = weight.cpu(&[&wt], &weight.shape(&[&wt.shape]).unwrap());
        let input = WinogradInput { tile, pad: 2 - pad };
        let v = input.cpu(&[&x], &input.shape(&[&x.shape]).unwrap());
        let m = WinogradGemm.cpu(
            &[&u, &v],
            &WinogradGemm.shape(&[&u.shape, &v.shape]).unwrap(),
        );
        let out = WinogradOutput {
            tile,
            height: shape[2],
            width: shape[3],
            bias: false,
        };
        let y = out.cpu(&[&m], &shape);
        for (k, (a, b)) in y.data.iter().zip(&direct.data).enumerate() {
            assert!((a - b).abs() < 1e-9, "element {k}: {a} vs {b}");
        }
    }

    #[test]
    fn shape_rules_say_what_they_expected() {
        let op = Op::WinogradWeight(WinogradWeight {
            tile: 3,
            transposed: false,
        });
        assert_eq!(
            op.infer_shape(&[&[4, 2, 3, 3]]).unwrap_err(),
            "winograd: expected an output tile of [2, 4], found 3"
        );
        let op = Op::WinogradWeight(WinogradWeight {
            tile: 4,
            transposed: false,
        });
        assert_eq!(
            op.infer_shape(&[&[4, 2, 5, 5]]).unwrap_err(),
            "winograd_weight: expected a 3x3 weight [O, C, 3, 3], found [4, 2, 5, 5]"
        );
        let op = Op::WinogradGemm(WinogradGemm);
        assert_eq!(
            op.infer_shape(&[&[36, 8, 4, 1], &[36, 5, 1, 16]]).unwrap_err(),
            "winograd_gemm: expected inputs [36, 4, N, T] for weights [36, 8, 4, 1], found [36, 5, 1, 16] and [36, 8, 4, 1]"
        );
        let op = Op::WinogradOutput(WinogradOutput {
            tile: 4,
            height: 8,
            width: 9,
            bias: false,
        });
        assert_eq!(op.infer_shape(&[&[36, 8, 1, 6]]).unwrap(), vec![1, 8, 8, 9]);
        assert_eq!(
            op.infer_shape(&[&[36, 8, 1, 4]]).unwrap_err(),
            "winograd_output: expected products [36, O, N, 6] for a 8x9 output in tiles of 4, found [36, 8, 1, 4]"
        );
    }
}
