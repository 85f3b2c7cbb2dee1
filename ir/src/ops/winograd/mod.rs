//! Winograd's minimal filtering (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks"): a 3x3 conv computed as F(m x m, 3 x 3) (stride 1), or as its polyphase forms for
//! a stride-2 conv and a stride-2 transposed conv (`WinogradKind`, `winograd_transforms.rs`).
//! Each tile of the output comes from the input patch under it, and with A products per
//! dimension: `y_tile = AT [ sum_c (G g_c GT) .* (BT d_c B) ] A`, so the conv's C x 9
//! multiply-adds per output become C x A^2 per tile (F(4, 3): 36 for 16 outputs, 2.25 per output
//! instead of 9; the stride-2 ones 81 where the direct conv does 144) in A^2 independent matrix
//! products over the channels, plus transforms that are linear in the data.
//!
//! The compiler rewrites a conv into the four ops here after autodiff (`compiler/src/winograd.rs`):
//! - `WinogradWeight`: w [O, C, 3, 3] -> U [A^2, O, C, 1], `U[a] = G w GT`; or, `transposed`, a
//!   transposed conv's w [C, O, 3, 3], flipped: a stride-1 transposed conv is the conv2d of the
//!   flipped weight with padding 2 - pad (without out_pad), and `Upsample2` is written for it;
//! - `WinogradInput`: x [N, C, H, W] -> V [A^2, C, N, T] over the T = th x tw tiles (tile
//!   t = ty * tw + tx, its patch from input row ty * step - pad), `V[a] = BT d B`;
//! - `WinogradGemm`: U, V -> M [A^2, O, N, T], `M[a] = U[a] V[a]` (GEMMs over the channels);
//! - `WinogradOutput`: M [, bias] -> y [N, O, height, width], `y = AT M A (+ bias)`.
//!
//! Autodiff never sees them: differentiate the conv.

use super::check;
use super::properties::Properties;
use super::properties::{elements, Flops};
use super::reach::Spatial;
use super::vjp::VjpResult;
pub use super::winograd_transforms::{WinogradKind, WinogradTransforms};
use crate::{shape4, Graph, NodeId, Shape, Tensor};
use num_traits::Float;

/// w [O, C, 3, 3] -> U [A, O, C, 1]; `transposed`: w [C, O, 3, 3] (a transposed conv's),
/// flipped in both spatial dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradWeight {
    pub tile: usize,
    pub kind: WinogradKind,
    pub transposed: bool,
}

/// x [N, C, H, W] -> V [A, C, N, T], the patches of a 3x3 conv with zero padding `pad`
/// (`WinogradKind::output_len`).
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradInput {
    pub tile: usize,
    pub kind: WinogradKind,
    pub pad: usize,
}

/// U [A, O, C, 1], V [A, C, N, T] -> M [A, O, N, T].
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradGemm;

/// M [A, O, N, T] (and bias [O] if `bias`) -> y [N, O, height, width].
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradOutput {
    pub tile: usize,
    pub kind: WinogradKind,
    pub height: usize,
    pub width: usize,
    pub bias: bool,
}

/// Tiles of `m` x `m` outputs over an `h` x `w` output: (rows, columns).
pub fn winograd_tiles(m: usize, h: usize, w: usize) -> (usize, usize) {
    (h.div_ceil(m), w.div_ceil(m))
}

fn compile_time_only(op: &str) -> VjpResult {
    Err(format!(
        "{op}: not differentiable: a compile-time form of conv2d (differentiate the conv2d)"
    ))
}

fn cast<T: Float>(v: f64) -> T {
    T::from(v).unwrap_or_else(T::nan)
}

impl WinogradWeight {
    pub const PROPERTIES: Properties = Properties::INTERNAL;

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "winograd_weight";
        check::arity(OP, inputs, 1, "weight")?;
        let a = WinogradTransforms::of(self.tile, self.kind)?.alpha();
        match check::rank4(OP, "a weight", "[O, C, 3, 3]", inputs[0])? {
            [c, o, 3, 3] if self.transposed => Ok(vec![a * a, o, c, 1]),
            [o, c, 3, 3] => Ok(vec![a * a, o, c, 1]),
            s => Err(format!(
                "{OP}: expected a 3x3 weight [O, C, 3, 3], found {s:?}"
            )),
        }
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let tf = WinogradTransforms::of(self.tile, self.kind).expect("checked by the shape rule");
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

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> VjpResult {
        compile_time_only("winograd_weight")
    }
}

impl WinogradInput {
    pub const PROPERTIES: Properties = Properties::INTERNAL;

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "winograd_input";
        check::arity(OP, inputs, 1, "x")?;
        let tf = WinogradTransforms::of(self.tile, self.kind)?;
        let a = tf.alpha();
        let [n, c, h, w] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        let (th, tw) = self.tiles(&tf, h, w).ok_or_else(|| match self.kind {
            WinogradKind::Upsample2 => format!(
                "{OP}: expected no padding for an upsampling (its patches start at the tile's first input), found {}",
                self.pad
            ),
            _ => format!(
                "{OP}: expected a padded input of at least 3x3, found {}x{}",
                h + 2 * self.pad,
                w + 2 * self.pad
            ),
        })?;
        Ok(vec![a * a, c, n, th * tw])
    }

    /// The tiles (rows, columns) over the conv's output for an `h` x `w` input, if it has one;
    /// `tf` is this op's transforms.
    pub fn tiles(&self, tf: &WinogradTransforms, h: usize, w: usize) -> Option<(usize, usize)> {
        let oh = self.kind.output_len(h, self.pad)?;
        let ow = self.kind.output_len(w, self.pad)?;
        Some(winograd_tiles(tf.out_tile(), oh, ow))
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let tf = WinogradTransforms::of(self.tile, self.kind).expect("checked by the shape rule");
        let (a, patch, step) = (tf.alpha(), tf.patch(), tf.step);
        let x = inputs[0];
        let [n, c, h, w] = shape4(&x.shape);
        let (_, tw) = self.tiles(&tf, h, w).expect("checked by the shape rule");
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
            let (r0, q0) = ((t / tw) * step, (t % tw) * step);
            for (i, j) in (0..a).flat_map(|i| (0..a).map(move |j| (i, j))) {
                let mut s = T::zero();
                for (k, l) in (0..patch).flat_map(|k| (0..patch).map(move |l| (k, l))) {
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

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> VjpResult {
        compile_time_only("winograd_input")
    }
}

impl WinogradGemm {
    pub const PROPERTIES: Properties = Properties::INTERNAL;

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

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> VjpResult {
        compile_time_only("winograd_gemm")
    }
}

impl WinogradOutput {
    pub const PROPERTIES: Properties = Properties {
        stores_through: true,
        internal: true,
        ..Properties::NONE
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "winograd_output";
        let (count, names) = match self.bias {
            true => (2, "m, bias"),
            false => (1, "m"),
        };
        check::arity(OP, inputs, count, names)?;
        let tf = WinogradTransforms::of(self.tile, self.kind)?;
        let (alpha, out_tile) = (tf.alpha(), tf.out_tile());
        let [a, o, n, t] = check::rank4(OP, "products", "[A, O, N, T]", inputs[0])?;
        let (th, tw) = winograd_tiles(out_tile, self.height, self.width);
        if a != alpha * alpha || t != th * tw {
            return Err(format!(
                "{OP}: expected products [{}, O, N, {}] for a {}x{} output in tiles of {}, found {:?}",
                alpha * alpha,
                th * tw,
                self.height,
                self.width,
                out_tile,
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
        let tf = WinogradTransforms::of(self.tile, self.kind).expect("checked by the shape rule");
        let (a, m) = (tf.alpha(), tf.out_tile());
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

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> VjpResult {
        compile_time_only("winograd_output")
    }
}

impl Flops for WinogradWeight {
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        // Two sums per value written, of a patch side's terms (the weights': 3): an upper bound
        // (the kernels drop zero terms).
        2 * 2 * 3 * elements(out)
    }
}

impl Flops for WinogradInput {
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        2 * 2 * winograd_side(self.tile, self.kind, |t| t.patch()) * elements(out)
    }
}

impl Flops for WinogradGemm {
    fn flops(&self, inputs: &[&[usize]], out: &[usize]) -> u64 {
        // The products: 2 A^2 O C N T.
        2 * elements(out) * inputs.first().and_then(|s| s.get(2)).copied().unwrap_or(0) as u64
    }
}

impl Flops for WinogradOutput {
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        2 * 2 * winograd_side(self.tile, self.kind, |t| t.alpha()) * elements(out)
    }
}

/// A length of a Winograd algorithm's matrices (`side` of them), 0 for one without matrices.
fn winograd_side(
    tile: usize,
    kind: WinogradKind,
    side: impl Fn(&WinogradTransforms) -> usize,
) -> u64 {
    WinogradTransforms::of(tile, kind).map_or(0, |t| side(&t) as u64)
}

impl Spatial for WinogradWeight {}
impl Spatial for WinogradInput {}
impl Spatial for WinogradGemm {}
impl Spatial for WinogradOutput {}

#[cfg(test)]
mod tests;
