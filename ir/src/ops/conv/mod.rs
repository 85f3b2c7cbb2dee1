//! Convolution and transposed convolution (zero padding, with stride; PyTorch's weight layouts).

use super::check;
use super::conv_grad::{conv_transpose_to, Conv2dWeightGrad, ConvTranspose2dWeightGrad};
use super::properties::Properties;
use super::properties::{elements, window, Flops};
use super::reach::{kernel_side, window_reach, Reach, Spatial};
use super::vjp::VjpResult;
use super::{Reduce, ReduceKind, Reshape};
use crate::{shape4, Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

/// inputs: x [N,C,H,W], weight [O,C/groups,kh,kw], bias [O] if `bias`. With `groups` g, the
/// channels split into g groups, output group i reading input group i only (PyTorch's
/// `groups`; depthwise when g = C).
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    pub stride: usize,
    pub pad: usize,
    pub bias: bool,
    pub groups: usize,
}

/// inputs: x [N,C,H,W], weight [C,O/groups,kh,kw], bias [O] if `bias`.
/// Output size (H - 1) * stride - 2 * pad + kh + out_pad.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvTranspose2d {
    pub stride: usize,
    pub pad: usize,
    pub out_pad: usize,
    pub bias: bool,
    pub groups: usize,
}

/// The input names for the arity message.
fn names(bias: bool) -> (usize, &'static str) {
    if bias {
        (3, "x, weight, bias")
    } else {
        (2, "x, weight")
    }
}

/// "7" for a square kernel, "7x5" otherwise.
fn kernel_text(kh: usize, kw: usize) -> String {
    if kh == kw {
        format!("{kh}")
    } else {
        format!("{kh}x{kw}")
    }
}

/// The bias, when present, has one value per output channel.
fn check_bias(op: &str, inputs: &[&[usize]], o: usize) -> Result<(), String> {
    match inputs.get(2) {
        Some(b) if *b != [o] => Err(format!(
            "{op}: expected a bias [{o}] (one per output channel), found {b:?}"
        )),
        _ => Ok(()),
    }
}

/// `i + d` if it lies in `0..n`; kernel offsets minus padding can fall outside the image.
fn offset(i: usize, d: usize, pad: usize, n: usize) -> Option<usize> {
    (i + d).checked_sub(pad).filter(|&v| v < n)
}

/// The bias gradient [O] of a conv whose output gradient is `grad` [N,O,Ho,Wo]: the sum over
/// N, Ho, Wo, reshaped from [1,O,1,1].
fn bias_grad(g: &mut Graph, name: &str, grad: NodeId) -> Result<NodeId, String> {
    let o = g.nodes[grad].shape[1];
    let sum = Op::Reduce(Reduce {
        kind: ReduceKind::Sum,
        axes: vec![0, 2, 3],
    });
    let s = g.push(format!("{name}.bias_sum"), sum, vec![grad])?;
    g.push(
        format!("{name}.bias"),
        Op::Reshape(Reshape { shape: vec![o] }),
        vec![s],
    )
}

/// Input and output channels split into `groups` equal parts.
pub(super) fn check_groups(op: &str, groups: usize, c: usize, o: usize) -> Result<(), String> {
    check::positive(op, "groups", groups)?;
    if !c.is_multiple_of(groups) || !o.is_multiple_of(groups) {
        return Err(format!(
            "{op}: expected input channels ({c}) and output channels ({o}) divisible by groups ({groups})"
        ));
    }
    Ok(())
}

/// The input's and the weight's shapes (the weight laid out as `layout` says), checked as both
/// convs check them.
fn operands(
    op: &str,
    (bias, stride): (bool, usize),
    inputs: &[&[usize]],
    layout: &str,
) -> Result<([usize; 4], [usize; 4]), String> {
    let (n_in, names) = names(bias);
    check::arity(op, inputs, n_in, names)?;
    check::positive(op, "stride", stride)?;
    let x = check::rank4(op, "an input", "[N, C, H, W]", inputs[0])?;
    Ok((x, check::rank4(op, "a weight", layout, inputs[1])?))
}

/// The kernel height and width of a weight node.
/// A conv's VJP from the input's gradient `gx`: the weight's, `wg` of (x, grad), named
/// `<name>.weight`, and the bias's where it has one.
fn with_param_grads(
    g: &mut Graph,
    (name, gx, wg, bias): (&str, NodeId, Op, bool),
    (x, grad): (NodeId, NodeId),
) -> VjpResult {
    let gw = g.push(format!("{name}.weight"), wg, vec![x, grad])?;
    let mut out = vec![Some(gx), Some(gw)];
    if bias {
        out.push(Some(bias_grad(g, name, grad)?));
    }
    Ok(out)
}

fn kernel(g: &Graph, w: NodeId) -> (usize, usize) {
    let [_, _, kh, kw] = shape4(&g.nodes[w].shape);
    (kh, kw)
}

impl Conv2d {
    pub const PROPERTIES: Properties = Properties::GEMM;

    /// gx = conv_transpose2d(gy, w) with the same stride and pad and the out_pad that gives x's
    /// size back (see `conv_transpose_to`), gw = conv2d_weight_grad(x, gy), gb = sum of gy.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let ins = g.nodes[node].inputs.clone();
        let name = super::vjp::prefix(g, node);
        let (s, p, groups) = (self.stride, self.pad, self.groups);
        let gx = conv_transpose_to(
            g,
            &format!("{name}.x"),
            grad,
            ins[1],
            (s, p, groups),
            ins[0],
        )?;
        let (kh, kw) = kernel(g, ins[1]);
        let wg = Op::Conv2dWeightGrad(Conv2dWeightGrad {
            stride: s,
            pad: p,
            kh,
            kw,
            groups,
        });
        with_param_grads(g, (&name, gx, wg, self.bias), (ins[0], grad))
    }

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "conv2d";
        let ([n, c, h, w], [o, wc, kh, kw]) =
            operands(OP, (self.bias, self.stride), inputs, "[O, C, kh, kw]")?;
        check_groups(OP, self.groups, c, o)?;
        if wc != c / self.groups {
            let groups = match self.groups {
                1 => String::new(),
                g => format!(", in {g} groups"),
            };
            return Err(format!(
                "{OP}: expected a weight with {} input channels (the input has {c}{groups}), found weight {:?}",
                c / self.groups,
                inputs[1]
            ));
        }
        check_bias(OP, inputs, o)?;
        let (p, s) = (self.pad, self.stride);
        let out = |size: usize, k: usize| {
            (k >= 1 && size + 2 * p >= k).then(|| (size + 2 * p - k) / s + 1)
        };
        match (out(h, kh), out(w, kw)) {
            (Some(oh), Some(ow)) => Ok(vec![n, o, oh, ow]),
            _ => Err(format!(
                "{OP}: output would be empty: input {h}x{w}, kernel {}, pad {p}",
                kernel_text(kh, kw)
            )),
        }
    }

    /// y[n,o,i,j] = bias[o] + sum over c, ki, kj of x[n,g(o)+c,i*s+ki-p, j*s+kj-p] * w[o,c,ki,kj],
    /// with g(o) the first input channel of o's group.
    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let (x, wt) = (inputs[0], inputs[1]);
        let [_, _, h, w] = shape4(&x.shape);
        let c = wt.shape[1];
        let [_, _, kh, kw] = shape4(&wt.shape);
        let [n, o, oh, ow] = shape4(out_shape);
        let mut y = Tensor::zeros(out_shape);
        let mut idx = 0;
        for b in 0..n {
            for oc in 0..o {
                let first = oc / (o / self.groups) * c;
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = if self.bias {
                            inputs[2].data[oc]
                        } else {
                            T::zero()
                        };
                        for ic in 0..c {
                            for ki in 0..kh {
                                let Some(hi) = offset(i * self.stride, ki, self.pad, h) else {
                                    continue;
                                };
                                for kj in 0..kw {
                                    let Some(wi) = offset(j * self.stride, kj, self.pad, w) else {
                                        continue;
                                    };
                                    acc =
                                        acc + x.at4(b, first + ic, hi, wi) * wt.at4(oc, ic, ki, kj);
                                }
                            }
                        }
                        y.data[idx] = acc;
                        idx += 1;
                    }
                }
            }
        }
        y
    }
}

impl ConvTranspose2d {
    pub const PROPERTIES: Properties = Properties::GEMM;

    /// gx = conv2d(gy, w) with the same stride and pad (it lands exactly on x's size since
    /// out_pad < stride), gw = conv_transpose2d_weight_grad(x, gy), gb = sum of gy.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let ins = g.nodes[node].inputs.clone();
        let name = super::vjp::prefix(g, node);
        let (s, p, groups) = (self.stride, self.pad, self.groups);
        let conv = Op::Conv2d(Conv2d {
            stride: s,
            pad: p,
            bias: false,
            groups,
        });
        let gx = g.push(format!("{name}.x"), conv, vec![grad, ins[1]])?;
        let (kh, kw) = kernel(g, ins[1]);
        let wg = Op::ConvTranspose2dWeightGrad(ConvTranspose2dWeightGrad {
            stride: s,
            pad: p,
            kh,
            kw,
            groups,
        });
        with_param_grads(g, (&name, gx, wg, self.bias), (ins[0], grad))
    }

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "conv_transpose2d";
        let ([n, c, h, w], [wc, og, kh, kw]) =
            operands(OP, (self.bias, self.stride), inputs, "[C, O, kh, kw]")?;
        if wc != c {
            return Err(format!(
                "{OP}: expected a weight with {c} input channels first (the input has {c}), found weight {:?}",
                inputs[1]
            ));
        }
        let o = og * self.groups;
        check_groups(OP, self.groups, c, o)?;
        check_bias(OP, inputs, o)?;
        let (s, p, op) = (self.stride, self.pad, self.out_pad);
        // PyTorch's rule: the extra rows must fall inside one more stride step.
        if op >= s {
            return Err(format!(
                "{OP}: expected out_pad < stride, found out_pad {op} with stride {s}"
            ));
        }
        let out = |size: usize, k: usize| {
            let v = (size as isize - 1) * s as isize - 2 * p as isize + k as isize + op as isize;
            (size >= 1 && k >= 1 && v >= 1).then_some(v as usize)
        };
        match (out(h, kh), out(w, kw)) {
            (Some(oh), Some(ow)) => Ok(vec![n, o, oh, ow]),
            _ => Err(format!(
                "{OP}: output would be empty: input {h}x{w}, kernel {}, stride {s}, pad {p}",
                kernel_text(kh, kw)
            )),
        }
    }

    /// Scatter form: every x[n,c,i,j] adds x * w[c,o,ki,kj] to y[n,o,i*s+ki-p, j*s+kj-p].
    /// Positions past the padded border are dropped; out_pad only extends the output.
    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let (x, wt) = (inputs[0], inputs[1]);
        let [n, c, h, w] = shape4(&x.shape);
        let [_, og, kh, kw] = shape4(&wt.shape);
        let [_, o, oh, ow] = shape4(out_shape);
        let mut y = Tensor::zeros(out_shape);
        for b in 0..n {
            for ic in 0..c {
                let first = ic / (c / self.groups) * og;
                for i in 0..h {
                    for j in 0..w {
                        let v = x.at4(b, ic, i, j);
                        for ocg in 0..og {
                            let oc = first + ocg;
                            for ki in 0..kh {
                                let Some(yi) = offset(i * self.stride, ki, self.pad, oh) else {
                                    continue;
                                };
                                for kj in 0..kw {
                                    let Some(yj) = offset(j * self.stride, kj, self.pad, ow) else {
                                        continue;
                                    };
                                    let at = ((b * o + oc) * oh + yi) * ow + yj;
                                    y.data[at] = y.data[at] + v * wt.at4(ic, ocg, ki, kj);
                                }
                            }
                        }
                    }
                }
            }
        }
        if self.bias {
            for (k, v) in y.data.iter_mut().enumerate() {
                *v = *v + inputs[2].data[(k / (oh * ow)) % o];
            }
        }
        y
    }
}

impl Flops for Conv2d {
    fn flops(&self, inputs: &[&[usize]], out: &[usize]) -> u64 {
        // out [N, O, Ho, Wo], weight [O, C, kh, kw]: 2 N O Ho Wo C kh kw.
        2 * elements(out) * window(inputs.get(1).copied().unwrap_or_default(), 1)
    }
}

impl Flops for ConvTranspose2d {
    fn flops(&self, inputs: &[&[usize]], _out: &[usize]) -> u64 {
        // x [N, C, H, W] scatters through weight [C, O, kh, kw]: 2 N C H W O kh kw.
        2 * elements(inputs.first().copied().unwrap_or_default())
            * window(inputs.get(1).copied().unwrap_or_default(), 1)
    }
}

impl Spatial for Conv2d {
    fn reach(&self, inputs: &[&[usize]]) -> Reach {
        Reach::Window(window_reach(kernel_side(inputs), self.pad))
    }
}

impl Spatial for ConvTranspose2d {
    fn reach(&self, inputs: &[&[usize]]) -> Reach {
        // An output pixel reads the input pixels its taps land on, rounded down by the stride:
        // one more input pixel than the stride-1 window.
        Reach::Window(window_reach(kernel_side(inputs), self.pad) + 1)
    }
}

#[cfg(test)]
mod tests;
