//! Upsampling by a whole factor, as PyTorch's `F.interpolate(scale_factor=s, mode=..,
//! align_corners=False)`, and its adjoint. Both are linear, so each one's VJP is the other.

use super::check;
use super::properties::{elements, Flops, Properties};
use super::reach::{Reach, Spatial};
use super::vjp::VjpResult;
use crate::{shape4, Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeMode {
    /// y[i] = x[floor(i / s)].
    Nearest,
    /// Half-pixel centres: source coordinate (i + 0.5) / s - 0.5, clamped at 0, between its two
    /// neighbours (the last one repeated at the far edge).
    Bilinear,
}

/// [N, C, H, W] -> [N, C, H*s, W*s].
#[derive(Debug, Clone, PartialEq)]
pub struct Resize {
    pub factor: usize,
    pub mode: ResizeMode,
}

/// The adjoint of [`Resize`]: gy [N, C, H*s, W*s] -> [N, C, H, W], each output element's
/// gradient added to the input elements it was interpolated from, by the same weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ResizeGrad {
    pub factor: usize,
    pub mode: ResizeMode,
}

/// The input rows (or columns) output index `i` reads along an axis of `size` input elements,
/// with their weights: one for nearest, two for bilinear (both kept at the far edge, where they
/// are the same row, as PyTorch computes them).
fn taps(mode: ResizeMode, factor: usize, i: usize, size: usize) -> Vec<(usize, f64)> {
    match mode {
        ResizeMode::Nearest => vec![(i / factor, 1.0)],
        ResizeMode::Bilinear => {
            let src = ((i as f64 + 0.5) / factor as f64 - 0.5).max(0.0);
            let i0 = src.floor() as usize;
            let l1 = src - i0 as f64;
            vec![(i0, 1.0 - l1), ((i0 + 1).min(size - 1), l1)]
        }
    }
}

/// Visits every (input index, output index, weight) of the 2-D interpolation from `x_shape` to
/// `y_shape`, by flat indices: the forward gathers along it and the adjoint scatters.
fn each_tap(
    mode: ResizeMode,
    factor: usize,
    x_shape: &[usize],
    y_shape: &[usize],
    mut visit: impl FnMut(usize, usize, f64),
) {
    let [_, _, h, w] = shape4(x_shape);
    let [n, c, oh, ow] = shape4(y_shape);
    let cols: Vec<_> = (0..ow).map(|j| taps(mode, factor, j, w)).collect();
    let mut out = 0;
    for plane in 0..n * c {
        for i in 0..oh {
            let rows = taps(mode, factor, i, h);
            for col in &cols {
                for &(hi, wh) in &rows {
                    for &(wi, ww) in col {
                        visit((plane * h + hi) * w + wi, out, wh * ww);
                    }
                }
                out += 1;
            }
        }
    }
}

fn weight<T: Float>(v: f64) -> T {
    T::from(v).unwrap_or_else(T::nan)
}

impl Resize {
    /// Each input element is read by s * s outputs (and up to 4 s^2 for bilinear).
    pub const PROPERTIES: Properties = Properties {
        rereads: true,
        cheap: true,
        ..Properties::NONE
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "resize";
        check::arity(OP, inputs, 1, "x")?;
        check::positive(OP, "factor", self.factor)?;
        let [n, c, h, w] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        Ok(vec![n, c, h * self.factor, w * self.factor])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let x = inputs[0];
        let mut y = Tensor::zeros(out_shape);
        each_tap(
            self.mode,
            self.factor,
            &x.shape,
            out_shape,
            |from, to, k| {
                y.data[to] = y.data[to] + weight::<T>(k) * x.data[from];
            },
        );
        y
    }

    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let op = Op::ResizeGrad(ResizeGrad {
            factor: self.factor,
            mode: self.mode,
        });
        super::vjp::adjoint(g, node, grad, op)
    }
}

impl ResizeGrad {
    pub const PROPERTIES: Properties = Properties {
        rereads: true,
        internal: true,
        ..Properties::NONE
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "resize_grad";
        check::arity(OP, inputs, 1, "gy")?;
        check::positive(OP, "factor", self.factor)?;
        let [n, c, h, w] = check::rank4(OP, "a gradient", "[N, C, H, W]", inputs[0])?;
        let s = self.factor;
        if h % s != 0 || w % s != 0 {
            return Err(format!(
                "{OP}: expected a height and width divisible by the factor {s}, found {h}x{w} (gradient {:?})",
                inputs[0]
            ));
        }
        Ok(vec![n, c, h / s, w / s])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let gy = inputs[0];
        let mut gx = Tensor::zeros(out_shape);
        each_tap(
            self.mode,
            self.factor,
            out_shape,
            &gy.shape,
            |to, from, k| {
                gx.data[to] = gx.data[to] + weight::<T>(k) * gy.data[from];
            },
        );
        gx
    }

    /// Linear, so its VJP is its adjoint: the resize.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let op = Op::Resize(Resize {
            factor: self.factor,
            mode: self.mode,
        });
        super::vjp::adjoint(g, node, grad, op)
    }
}

/// Operations per element of the upsampled side: bilinear weighs 4 taps (4 multiplications and
/// 3 additions); nearest copies, and its adjoint adds each gy element once.
fn per_element(mode: ResizeMode, copy: u64) -> u64 {
    match mode {
        ResizeMode::Nearest => copy,
        ResizeMode::Bilinear => 7,
    }
}

impl Flops for Resize {
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        elements(out) * per_element(self.mode, 0)
    }
}

impl Flops for ResizeGrad {
    fn flops(&self, inputs: &[&[usize]], _out: &[usize]) -> u64 {
        elements(inputs.first().copied().unwrap_or_default()) * per_element(self.mode, 1)
    }
}

impl Spatial for Resize {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Window(2)
    }
}
impl Spatial for ResizeGrad {}
