//! Average pooling (PyTorch's `nn.AvgPool2d` with count_include_pad=True: padding counts as
//! zeros and every window divides by kernel^2) and its adjoint. Both are linear, so each one's
//! VJP is the other.

use super::check;
use super::pool::MaxPool2d;
use super::properties::{elements, Flops, Properties};
use super::reach::{window_reach, Reach, Spatial};
use super::vjp::VjpResult;
use crate::{shape4, Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

#[derive(Debug, Clone, PartialEq)]
pub struct AvgPool {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

/// The adjoint of [`AvgPool`]: gy -> gx [N, C, H, W] (`size` is [H, W], which the pooled shape
/// does not determine), each window's gradient spread evenly over its kernel^2 positions.
#[derive(Debug, Clone, PartialEq)]
pub struct AvgPoolGrad {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub size: [usize; 2],
}

/// The pooled shape of `inputs` (one, x) under max pooling's rule (PyTorch's: pad <= kernel / 2,
/// and a non-empty output), its messages naming `op`.
fn pooled(op: &str, k: usize, s: usize, p: usize, inputs: &[&[usize]]) -> Result<Shape, String> {
    let pool = MaxPool2d {
        kernel: k,
        stride: s,
        pad: p,
    };
    pool.shape(inputs)
        .map_err(|e| e.replacen("max_pool2d", op, 1))
}

/// Visits every (input index, output index) pair of the windows, by flat indices; positions in
/// the padding have no input index and are skipped (they add zero).
fn each_window(
    k: usize,
    s: usize,
    p: usize,
    x_shape: &[usize],
    y_shape: &[usize],
    mut visit: impl FnMut(usize, usize),
) {
    let [_, _, h, w] = shape4(x_shape);
    let [n, c, oh, ow] = shape4(y_shape);
    let mut out = 0;
    for plane in 0..n * c {
        for i in 0..oh {
            for j in 0..ow {
                for ki in 0..k {
                    for kj in 0..k {
                        let (Some(hi), Some(wi)) =
                            ((i * s + ki).checked_sub(p), (j * s + kj).checked_sub(p))
                        else {
                            continue;
                        };
                        if hi < h && wi < w {
                            visit((plane * h + hi) * w + wi, out);
                        }
                    }
                }
                out += 1;
            }
        }
    }
}

impl AvgPool {
    pub const PROPERTIES: Properties = Properties {
        rereads: true,
        ..Properties::NONE
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        pooled("avg_pool", self.kernel, self.stride, self.pad, inputs)
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let x = inputs[0];
        let (k, s, p) = (self.kernel, self.stride, self.pad);
        let mut y = Tensor::zeros(out_shape);
        each_window(k, s, p, &x.shape, out_shape, |from, to| {
            y.data[to] = y.data[to] + x.data[from];
        });
        let area = T::from(k * k).unwrap_or_else(T::nan);
        y.data.iter_mut().for_each(|v| *v = *v / area);
        y
    }

    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let x = g.nodes[node].inputs[0];
        let [_, _, h, w] = shape4(&g.nodes[x].shape);
        let op = Op::AvgPoolGrad(AvgPoolGrad {
            kernel: self.kernel,
            stride: self.stride,
            pad: self.pad,
            size: [h, w],
        });
        super::vjp::adjoint(g, node, grad, op)
    }
}

impl AvgPoolGrad {
    pub const PROPERTIES: Properties = Properties {
        rereads: true,
        internal: true,
        ..Properties::NONE
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "avg_pool_grad";
        check::arity(OP, inputs, 1, "gy")?;
        check::positive(OP, "kernel", self.kernel)?;
        check::positive(OP, "stride", self.stride)?;
        let [n, c, _, _] = check::rank4(OP, "a gradient", "[N, C, H, W]", inputs[0])?;
        let x = vec![n, c, self.size[0], self.size[1]];
        let want = pooled(OP, self.kernel, self.stride, self.pad, &[&x])?;
        if inputs[0] != want.as_slice() {
            return Err(format!(
                "{OP}: expected gy {want:?} (avg_pool's output for x {x:?}), found {:?}",
                inputs[0]
            ));
        }
        Ok(x)
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let gy = inputs[0];
        let (k, s, p) = (self.kernel, self.stride, self.pad);
        let area = T::from(k * k).unwrap_or_else(T::nan);
        let mut gx = Tensor::zeros(out_shape);
        each_window(k, s, p, out_shape, &gy.shape, |to, from| {
            gx.data[to] = gx.data[to] + gy.data[from] / area;
        });
        gx
    }

    /// Linear, so its VJP is its adjoint: the pooling.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let op = Op::AvgPool(AvgPool {
            kernel: self.kernel,
            stride: self.stride,
            pad: self.pad,
        });
        super::vjp::adjoint(g, node, grad, op)
    }
}

impl Flops for AvgPool {
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        // A window's additions and one division.
        elements(out) * (self.kernel * self.kernel) as u64
    }
}

impl Flops for AvgPoolGrad {
    fn flops(&self, inputs: &[&[usize]], _out: &[usize]) -> u64 {
        elements(inputs.first().copied().unwrap_or_default()) * (self.kernel * self.kernel) as u64
    }
}

impl Spatial for AvgPool {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Window(window_reach(self.kernel, self.pad))
    }
}
impl Spatial for AvgPoolGrad {}
