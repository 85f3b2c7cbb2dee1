//! The weight gradients of convolution and transposed convolution, as ops of their own so that
//! a backward graph is made of IR ops (and so can be differentiated again).
//!
//! Both are bilinear in their two inputs, so their vector-Jacobian products are convolutions
//! again: that is what lets a second order reach through a critic's convolutions.

use super::check;
use super::conv::{Conv2d, ConvTranspose2d};
use super::properties::Properties;
use super::properties::{elements, window, Flops};
use super::reach::Spatial;
use super::vjp::VjpResult;
use crate::{shape4, Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

/// inputs: x [N,C,H,W], gy [N,O,Ho,Wo] (the gradient of conv2d's output) -> gw [O,C,kh,kw]:
/// gw[o,c,ki,kj] = sum over n, i, j of gy[n,o,i,j] * x[n,g(o)+c,i*s+ki-p, j*s+kj-p], with g(o)
/// the first input channel of o's group (gw is [O,C/groups,kh,kw]).
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2dWeightGrad {
    pub stride: usize,
    pub pad: usize,
    pub kh: usize,
    pub kw: usize,
    pub groups: usize,
}

/// inputs: x [N,C,H,W] (conv_transpose2d's input), gy [N,O,Ho,Wo] -> gw [C,O,kh,kw]:
/// gw[c,o,ki,kj] = sum over n, i, j of x[n,c,i,j] * gy[n,g(c)+o,i*s+ki-p, j*s+kj-p], with g(c)
/// the first output channel of c's group (gw is [C,O/groups,kh,kw]).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvTranspose2dWeightGrad {
    pub stride: usize,
    pub pad: usize,
    pub kh: usize,
    pub kw: usize,
    pub groups: usize,
}

/// The common sum: out[a,b,ki,kj] = sum over n, i, j of small[n,a,i,j] * big[n,g(a)+b,i*s+ki-p, j*s+kj-p]
/// where `small` is indexed on the strided grid and `big` by the kernel offsets, and g(a) is the
/// first channel of `big` in a's group.
fn correlate<T: Float>(
    small: &Tensor<T>,
    big: &Tensor<T>,
    (s, p, groups): (usize, usize, usize),
    out_shape: &[usize],
) -> Tensor<T> {
    let [n, a_n, sh, sw] = shape4(&small.shape);
    let [_, _, bh, bw] = shape4(&big.shape);
    let [_, b_n, kh, kw] = shape4(out_shape);
    let mut out = Tensor::zeros(out_shape);
    let at = |i: usize, k: usize, lim: usize| (i * s + k).checked_sub(p).filter(|&v| v < lim);
    for a in 0..a_n {
        let first = a / (a_n / groups) * b_n;
        for b in 0..b_n {
            for ki in 0..kh {
                for kj in 0..kw {
                    let mut acc = T::zero();
                    for bn in 0..n {
                        for i in 0..sh {
                            let Some(hi) = at(i, ki, bh) else { continue };
                            for j in 0..sw {
                                let Some(wj) = at(j, kj, bw) else { continue };
                                acc = acc + small.at4(bn, a, i, j) * big.at4(bn, first + b, hi, wj);
                            }
                        }
                    }
                    out.data[((a * b_n + b) * kh + ki) * kw + kj] = acc;
                }
            }
        }
    }
    out
}

/// Checks shared by both rules; returns (N, C, H, W) of x and (O, Ho, Wo) of gy.
fn common(
    op: &str,
    inputs: &[&[usize]],
    stride: usize,
    kh: usize,
    kw: usize,
) -> Result<([usize; 4], [usize; 3]), String> {
    check::arity(op, inputs, 2, "x, gy")?;
    check::positive(op, "stride", stride)?;
    check::positive(op, "kernel height", kh)?;
    check::positive(op, "kernel width", kw)?;
    let x = check::rank4(op, "an input", "[N, C, H, W]", inputs[0])?;
    let [n, o, oh, ow] = check::rank4(op, "an output gradient", "[N, O, Ho, Wo]", inputs[1])?;
    if n != x[0] {
        return Err(format!(
            "{op}: expected x and gy with the same batch size, found x {:?} and gy {:?}",
            inputs[0], inputs[1]
        ));
    }
    Ok((x, [o, oh, ow]))
}

impl Conv2dWeightGrad {
    pub const PROPERTIES: Properties = Properties {
        internal: true,
        ..Properties::GEMM
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "conv2d_weight_grad";
        let ([_, c, h, w], [o, oh, ow]) = common(OP, inputs, self.stride, self.kh, self.kw)?;
        let (s, p) = (self.stride, self.pad);
        let out = |size: usize, k: usize| (size + 2 * p >= k).then(|| (size + 2 * p - k) / s + 1);
        if out(h, self.kh) != Some(oh) || out(w, self.kw) != Some(ow) {
            return Err(format!(
                "{OP}: expected gy of conv2d's output size for x {:?}, kernel {}x{}, stride {s}, pad {p}, found gy {:?}",
                inputs[0], self.kh, self.kw, inputs[1]
            ));
        }
        super::conv::check_groups(OP, self.groups, c, o)?;
        Ok(vec![o, c / self.groups, self.kh, self.kw])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let sp = (self.stride, self.pad, self.groups);
        correlate(inputs[1], inputs[0], sp, out_shape)
    }

    /// gx = conv_transpose2d(gy, G), ggy = conv2d(x, G), with G the incoming gradient [O,C,kh,kw].
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let (x, gy) = (g.nodes[node].inputs[0], g.nodes[node].inputs[1]);
        let name = super::vjp::prefix(g, node);
        let (s, p, groups) = (self.stride, self.pad, self.groups);
        let gx = conv_transpose_to(g, &format!("{name}.x"), gy, grad, (s, p, groups), x)?;
        let conv = Op::Conv2d(Conv2d {
            stride: s,
            pad: p,
            bias: false,
            groups,
        });
        let ggy = g.push(format!("{name}.gy"), conv, vec![x, grad])?;
        Ok(vec![Some(gx), Some(ggy)])
    }
}

impl ConvTranspose2dWeightGrad {
    pub const PROPERTIES: Properties = Properties {
        internal: true,
        ..Properties::GEMM
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "conv_transpose2d_weight_grad";
        let ([_, c, h, w], [o, oh, ow]) = common(OP, inputs, self.stride, self.kh, self.kw)?;
        let (s, p) = (self.stride, self.pad);
        // gy is conv_transpose2d's output: (H - 1) * s - 2p + k plus an out_pad below the stride.
        let fits = |size: usize, k: usize, got: usize| {
            let base = (size as isize - 1) * s as isize - 2 * p as isize + k as isize;
            let extra = got as isize - base;
            (0..s as isize).contains(&extra)
        };
        if !fits(h, self.kh, oh) || !fits(w, self.kw, ow) {
            return Err(format!(
                "{OP}: expected gy of conv_transpose2d's output size for x {:?}, kernel {}x{}, stride {s}, pad {p}, found gy {:?}",
                inputs[0], self.kh, self.kw, inputs[1]
            ));
        }
        super::conv::check_groups(OP, self.groups, c, o)?;
        Ok(vec![c, o / self.groups, self.kh, self.kw])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let sp = (self.stride, self.pad, self.groups);
        correlate(inputs[0], inputs[1], sp, out_shape)
    }

    /// gx = conv2d(gy, G), ggy = conv_transpose2d(x, G), with G the incoming gradient [C,O,kh,kw].
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let (x, gy) = (g.nodes[node].inputs[0], g.nodes[node].inputs[1]);
        let name = super::vjp::prefix(g, node);
        let (s, p, groups) = (self.stride, self.pad, self.groups);
        let conv = Op::Conv2d(Conv2d {
            stride: s,
            pad: p,
            bias: false,
            groups,
        });
        let gx = g.push(format!("{name}.x"), conv, vec![gy, grad])?;
        let ggy = conv_transpose_to(g, &format!("{name}.gy"), x, grad, (s, p, groups), gy)?;
        Ok(vec![Some(gx), Some(ggy)])
    }
}

/// conv_transpose2d(y, w) with the out_pad that gives `like`'s height and width. A conv2d of an
/// H-high input has Ho = (H + 2p - k) / s + 1 rows, so H + 2p - k = (Ho - 1) s + r with r < s,
/// and the transposed conv reaches H exactly with out_pad r (PyTorch's `output_padding`).
/// Width is assumed to need the same out_pad as height (square strides); otherwise an error.
pub(crate) fn conv_transpose_to(
    g: &mut Graph,
    name: &str,
    y: NodeId,
    w: NodeId,
    (stride, pad, groups): (usize, usize, usize),
    like: NodeId,
) -> Result<NodeId, String> {
    let [_, _, h, wd] = shape4(&g.nodes[like].shape);
    let [_, _, yh, yw] = shape4(&g.nodes[y].shape);
    let [_, _, kh, kw] = shape4(&g.nodes[w].shape);
    let rest = |size: usize, ys: usize, k: usize| {
        (size + 2 * pad).checked_sub(k + (ys.max(1) - 1) * stride)
    };
    let (Some(rh), Some(rw)) = (rest(h, yh, kh), rest(wd, yw, kw)) else {
        return Err(format!(
            "{name}: no transposed convolution gives size {h}x{wd}"
        ));
    };
    if rh != rw {
        return Err(format!(
            "{name}: the input gradient needs out_pad {rh} in height and {rw} in width; conv_transpose2d has one out_pad"
        ));
    }
    let op = Op::ConvTranspose2d(ConvTranspose2d {
        stride,
        pad,
        out_pad: rh,
        bias: false,
        groups,
    });
    g.push(name, op, vec![y, w])
}

impl Flops for Conv2dWeightGrad {
    fn flops(&self, inputs: &[&[usize]], out: &[usize]) -> u64 {
        // gy [N, O, Ho, Wo] against x through the window, out [O, C, kh, kw]: 2 N O Ho Wo C kh kw.
        2 * elements(inputs.get(1).copied().unwrap_or_default()) * window(out, 1)
    }
}

impl Flops for ConvTranspose2dWeightGrad {
    fn flops(&self, inputs: &[&[usize]], out: &[usize]) -> u64 {
        // x [N, C, H, W] against gy, out [C, O, kh, kw]: 2 N C H W O kh kw.
        2 * elements(inputs.first().copied().unwrap_or_default()) * window(out, 1)
    }
}

impl Spatial for Conv2dWeightGrad {}
impl Spatial for ConvTranspose2dWeightGrad {}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn data(shape: &[usize], seed: usize) -> Tensor<f64> {
        let n = crate::numel(shape);
        Tensor::new(
            shape,
            (0..n)
                .map(|i| (((i * 7 + seed * 13) % 11) as f64 - 5.0) / 4.0)
                .collect(),
        )
    }
    fn dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
        a.data.iter().zip(&b.data).map(|(u, v)| u * v).sum()
    }

    /// <conv2d(x, w), gy> is linear in w, and conv2d_weight_grad(x, gy) is its gradient:
    /// <conv2d(x, w), gy> == <w, conv2d_weight_grad(x, gy)>.
    #[test]
    fn conv_weight_grad_is_the_adjoint_in_w() {
        for ((hw, k, s, p), groups) in [
            (7, 3, 2, 1),
            (6, 4, 2, 2),
            (5, 3, 1, 1),
            (9, 1, 3, 0),
            (5, 2, 1, 0),
        ]
        .into_iter()
        .flat_map(|c| [1, 3].map(|g| (c, g)))
        {
            // 6 input channels and 3 outputs, in 1 group or 3 (two inputs per output).
            let x = data(&[2, 6, hw, hw], 1);
            let w = data(&[3, 6 / groups, k, k], 2);
            let conv = Conv2d {
                stride: s,
                pad: p,
                bias: false,
                groups,
            };
            let ys = conv.shape(&[&x.shape, &w.shape]).unwrap();
            let gy = data(&ys, 3);
            let op = Conv2dWeightGrad {
                stride: s,
                pad: p,
                kh: k,
                kw: k,
                groups,
            };
            let gs = op.shape(&[&x.shape, &ys]).unwrap();
            assert_eq!(gs, w.shape);
            let lhs = dot(&conv.cpu(&[&x, &w], &ys), &gy);
            assert_relative_eq!(lhs, dot(&w, &op.cpu(&[&x, &gy], &gs)), max_relative = 1e-12);
        }
    }

    #[test]
    fn conv_transpose_weight_grad_is_the_adjoint_in_w() {
        for ((hw, k, s, p, op_), groups) in [
            (4, 3, 2, 1, 1),
            (3, 4, 2, 1, 0),
            (5, 3, 1, 1, 0),
            (3, 3, 3, 0, 2),
        ]
        .into_iter()
        .flat_map(|c| [1, 3].map(|g| (c, g)))
        {
            // 3 input channels and 6 outputs, in 1 group or 3 (two outputs per input).
            let x = data(&[2, 3, hw, hw], 1);
            let w = data(&[3, 6 / groups, k, k], 2);
            let convt = ConvTranspose2d {
                stride: s,
                pad: p,
                out_pad: op_,
                bias: false,
                groups,
            };
            let ys = convt.shape(&[&x.shape, &w.shape]).unwrap();
            let gy = data(&ys, 3);
            let op = ConvTranspose2dWeightGrad {
                stride: s,
                pad: p,
                kh: k,
                kw: k,
                groups,
            };
            let gs = op.shape(&[&x.shape, &ys]).unwrap();
            assert_eq!(gs, w.shape);
            let lhs = dot(&convt.cpu(&[&x, &w], &ys), &gy);
            assert_relative_eq!(lhs, dot(&w, &op.cpu(&[&x, &gy], &gs)), max_relative = 1e-12);
        }
    }

    #[test]
    fn hand_computed() {
        // x 1..9 (3x3), gy all ones 2x2, kernel 2x2 stride 1: gw[ki][kj] = sum of the 2x2 window
        // sums starting at (ki, kj): [[1+2+4+5, 2+3+5+6], [4+5+7+8, 5+6+8+9]].
        let x = Tensor::new(&[1, 1, 3, 3], (1..=9).map(f64::from).collect());
        let gy = Tensor::new(&[1, 1, 2, 2], vec![1.0; 4]);
        let op = Conv2dWeightGrad {
            stride: 1,
            pad: 0,
            kh: 2,
            kw: 2,
            groups: 1,
        };
        let gw = op.cpu(&[&x, &gy], &op.shape(&[&x.shape, &gy.shape]).unwrap());
        assert_eq!(gw.data, vec![12.0, 16.0, 24.0, 28.0]);
    }

    #[test]
    fn shapes() {
        let op = Conv2dWeightGrad {
            stride: 2,
            pad: 1,
            kh: 3,
            kw: 3,
            groups: 1,
        };
        assert_eq!(
            op.shape(&[&[2, 3, 7, 7], &[2, 4, 4, 4]]),
            Ok(vec![4, 3, 3, 3])
        );
        assert_eq!(
            op.shape(&[&[2, 3, 7, 7], &[2, 4, 3, 4]]).unwrap_err(),
            "conv2d_weight_grad: expected gy of conv2d's output size for x [2, 3, 7, 7], kernel 3x3, stride 2, pad 1, found gy [2, 4, 3, 4]"
        );
        assert_eq!(
            op.shape(&[&[2, 3, 7, 7], &[1, 4, 4, 4]]).unwrap_err(),
            "conv2d_weight_grad: expected x and gy with the same batch size, found x [2, 3, 7, 7] and gy [1, 4, 4, 4]"
        );
        assert_eq!(
            op.shape(&[&[2, 3, 7, 7]]).unwrap_err(),
            "conv2d_weight_grad: expected 2 inputs (x, gy), found 1"
        );
        let t = ConvTranspose2dWeightGrad {
            stride: 2,
            pad: 1,
            kh: 3,
            kw: 3,
            groups: 1,
        };
        assert_eq!(
            t.shape(&[&[1, 3, 4, 4], &[1, 5, 8, 8]]),
            Ok(vec![3, 5, 3, 3])
        );
        assert_eq!(
            t.shape(&[&[1, 3, 4, 4], &[1, 5, 7, 7]]),
            Ok(vec![3, 5, 3, 3])
        );
        assert_eq!(
            t.shape(&[&[1, 3, 4, 4], &[1, 5, 9, 8]]).unwrap_err(),
            "conv_transpose2d_weight_grad: expected gy of conv_transpose2d's output size for x [1, 3, 4, 4], kernel 3x3, stride 2, pad 1, found gy [1, 5, 9, 8]"
        );
    }
}
