//! Convolution and transposed convolution (zero padding, with stride; PyTorch's weight layouts).

use super::check;
use super::conv_grad::{conv_transpose_to, Conv2dWeightGrad, ConvTranspose2dWeightGrad};
use super::properties::Properties;
use super::properties::{elements, window, Flops};
use super::vjp::VjpResult;
use super::{Reduce, ReduceKind, Reshape};
use crate::{shape4, Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

/// inputs: x [N,C,H,W], weight [O,C,kh,kw], bias [O] if `bias`.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    pub stride: usize,
    pub pad: usize,
    pub bias: bool,
}

/// inputs: x [N,C,H,W], weight [C,O,kh,kw], bias [O] if `bias`.
/// Output size (H - 1) * stride - 2 * pad + kh + out_pad.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvTranspose2d {
    pub stride: usize,
    pub pad: usize,
    pub out_pad: usize,
    pub bias: bool,
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

/// The kernel height and width of a weight node.
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
        let (s, p) = (self.stride, self.pad);
        let gx = conv_transpose_to(g, &format!("{name}.x"), grad, ins[1], s, p, ins[0])?;
        let (kh, kw) = kernel(g, ins[1]);
        let wg = Op::Conv2dWeightGrad(Conv2dWeightGrad {
            stride: s,
            pad: p,
            kh,
            kw,
        });
        let gw = g.push(format!("{name}.weight"), wg, vec![ins[0], grad])?;
        let mut out = vec![Some(gx), Some(gw)];
        if self.bias {
            out.push(Some(bias_grad(g, &name, grad)?));
        }
        Ok(out)
    }

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "conv2d";
        let (n_in, names) = names(self.bias);
        check::arity(OP, inputs, n_in, names)?;
        check::positive(OP, "stride", self.stride)?;
        let [n, c, h, w] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        let [o, wc, kh, kw] = check::rank4(OP, "a weight", "[O, C, kh, kw]", inputs[1])?;
        if wc != c {
            return Err(format!(
                "{OP}: expected a weight with {c} input channels (the input has {c}), found weight {:?}",
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

    /// y[n,o,i,j] = bias[o] + sum over c, ki, kj of x[n,c,i*s+ki-p, j*s+kj-p] * w[o,c,ki,kj].
    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let (x, wt) = (inputs[0], inputs[1]);
        let [_, c, h, w] = shape4(&x.shape);
        let [_, _, kh, kw] = shape4(&wt.shape);
        let [n, o, oh, ow] = shape4(out_shape);
        let mut y = Tensor::zeros(out_shape);
        let mut idx = 0;
        for b in 0..n {
            for oc in 0..o {
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
                                    acc = acc + x.at4(b, ic, hi, wi) * wt.at4(oc, ic, ki, kj);
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
        let (s, p) = (self.stride, self.pad);
        let conv = Op::Conv2d(Conv2d {
            stride: s,
            pad: p,
            bias: false,
        });
        let gx = g.push(format!("{name}.x"), conv, vec![grad, ins[1]])?;
        let (kh, kw) = kernel(g, ins[1]);
        let wg = Op::ConvTranspose2dWeightGrad(ConvTranspose2dWeightGrad {
            stride: s,
            pad: p,
            kh,
            kw,
        });
        let gw = g.push(format!("{name}.weight"), wg, vec![ins[0], grad])?;
        let mut out = vec![Some(gx), Some(gw)];
        if self.bias {
            out.push(Some(bias_grad(g, &name, grad)?));
        }
        Ok(out)
    }

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "conv_transpose2d";
        let (n_in, names) = names(self.bias);
        check::arity(OP, inputs, n_in, names)?;
        check::positive(OP, "stride", self.stride)?;
        let [n, c, h, w] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        let [wc, o, kh, kw] = check::rank4(OP, "a weight", "[C, O, kh, kw]", inputs[1])?;
        if wc != c {
            return Err(format!(
                "{OP}: expected a weight with {c} input channels first (the input has {c}), found weight {:?}",
                inputs[1]
            ));
        }
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
        let [_, _, kh, kw] = shape4(&wt.shape);
        let [_, o, oh, ow] = shape4(out_shape);
        let mut y = Tensor::zeros(out_shape);
        for b in 0..n {
            for ic in 0..c {
                for i in 0..h {
                    for j in 0..w {
                        let v = x.at4(b, ic, i, j);
                        for oc in 0..o {
                            for ki in 0..kh {
                                let Some(yi) = offset(i * self.stride, ki, self.pad, oh) else {
                                    continue;
                                };
                                for kj in 0..kw {
                                    let Some(yj) = offset(j * self.stride, kj, self.pad, ow) else {
                                        continue;
                                    };
                                    let at = ((b * o + oc) * oh + yi) * ow + yj;
                                    y.data[at] = y.data[at] + v * wt.at4(ic, oc, ki, kj);
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

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn conv(stride: usize, pad: usize, bias: bool) -> Conv2d {
        Conv2d { stride, pad, bias }
    }
    fn convt(stride: usize, pad: usize, out_pad: usize, bias: bool) -> ConvTranspose2d {
        ConvTranspose2d {
            stride,
            pad,
            out_pad,
            bias,
        }
    }
    /// Deterministic, irregular test data without a random number generator.
    fn data(shape: &[usize], seed: usize) -> Tensor<f64> {
        let n = crate::numel(shape);
        Tensor::new(
            shape,
            (0..n)
                .map(|i| (((i * 7 + seed * 13) % 11) as f64 - 5.0) / 4.0)
                .collect(),
        )
    }

    #[test]
    fn conv_shapes() {
        assert_eq!(
            conv(1, 1, true).shape(&[&[2, 8, 16, 16], &[16, 8, 3, 3], &[16]]),
            Ok(vec![2, 16, 16, 16])
        );
        assert_eq!(
            conv(2, 2, false).shape(&[&[1, 3, 256, 256], &[64, 3, 4, 4]]),
            Ok(vec![1, 64, 129, 129])
        );
        assert_eq!(
            conv(2, 1, false).shape(&[&[1, 1, 3, 5], &[1, 1, 2, 3]]),
            Ok(vec![1, 1, 2, 3])
        );
        assert_eq!(
            conv(1, 1, false).shape(&[&[1, 8, 4, 4], &[16, 4, 3, 3]]).unwrap_err(),
            "conv2d: expected a weight with 8 input channels (the input has 8), found weight [16, 4, 3, 3]"
        );
        assert_eq!(
            conv(1, 0, false)
                .shape(&[&[1, 8, 2, 2], &[16, 8, 7, 7]])
                .unwrap_err(),
            "conv2d: output would be empty: input 2x2, kernel 7, pad 0"
        );
        assert_eq!(
            conv(1, 0, true)
                .shape(&[&[1, 8, 4, 4], &[16, 8, 3, 3]])
                .unwrap_err(),
            "conv2d: expected 3 inputs (x, weight, bias), found 2"
        );
        assert_eq!(
            conv(1, 0, true)
                .shape(&[&[1, 8, 4, 4], &[16, 8, 3, 3], &[8]])
                .unwrap_err(),
            "conv2d: expected a bias [16] (one per output channel), found [8]"
        );
        assert_eq!(
            conv(1, 0, false)
                .shape(&[&[8, 4, 4], &[16, 8, 3, 3]])
                .unwrap_err(),
            "conv2d: expected an input of rank 4 [N, C, H, W], found [8, 4, 4]"
        );
        assert_eq!(
            conv(1, 0, false)
                .shape(&[&[1, 8, 4, 4], &[16, 8]])
                .unwrap_err(),
            "conv2d: expected a weight of rank 4 [O, C, kh, kw], found [16, 8]"
        );
        assert_eq!(
            conv(0, 0, false)
                .shape(&[&[1, 8, 4, 4], &[16, 8, 3, 3]])
                .unwrap_err(),
            "conv2d: expected a stride >= 1, found 0"
        );
    }

    #[test]
    fn conv_transpose_shapes() {
        // docs/spec.md's up-sampling: 3x3, stride 2, pad 1, out_pad 1 doubles H and W.
        assert_eq!(
            convt(2, 1, 1, true).shape(&[&[1, 256, 64, 64], &[256, 128, 3, 3], &[128]]),
            Ok(vec![1, 128, 128, 128])
        );
        assert_eq!(
            convt(2, 1, 1, false).shape(&[&[1, 8, 4, 4], &[4, 8, 3, 3]]).unwrap_err(),
            "conv_transpose2d: expected a weight with 8 input channels first (the input has 8), found weight [4, 8, 3, 3]"
        );
        assert_eq!(
            convt(1, 0, 1, false)
                .shape(&[&[1, 8, 4, 4], &[8, 4, 3, 3]])
                .unwrap_err(),
            "conv_transpose2d: expected out_pad < stride, found out_pad 1 with stride 1"
        );
        assert_eq!(
            convt(1, 3, 0, false)
                .shape(&[&[1, 8, 1, 1], &[8, 4, 3, 3]])
                .unwrap_err(),
            "conv_transpose2d: output would be empty: input 1x1, kernel 3, stride 1, pad 3"
        );
        assert_eq!(
            convt(2, 0, 0, true)
                .shape(&[&[1, 8, 4, 4], &[8, 4, 3, 3], &[8]])
                .unwrap_err(),
            "conv_transpose2d: expected a bias [4] (one per output channel), found [8]"
        );
    }

    #[test]
    fn conv_hand_computed() {
        // Input 1..9 zero-padded by 1, 2x2 kernel [[1, 2], [3, 4]], stride 2: the windows start at
        // padded (0,0), (0,2), (2,0), (2,2).
        let x = Tensor::new(&[1, 1, 3, 3], (1..=9).map(f64::from).collect());
        let w = Tensor::new(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let b = Tensor::new(&[1], vec![0.5]);
        let op = conv(2, 1, true);
        let shape = op.shape(&[&x.shape, &w.shape, &b.shape]).unwrap();
        let y = op.cpu(&[&x, &w, &b], &shape);
        assert_eq!(y.shape, vec![1, 1, 2, 2]);
        assert_eq!(y.data, vec![4.5, 18.5, 36.5, 77.5]);
    }

    #[test]
    fn conv_transpose_hand_computed() {
        // Stride 2 with a 2x2 kernel of ones: each input pixel becomes a 2x2 block of itself.
        let x = Tensor::new(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let w = Tensor::new(&[1, 1, 2, 2], vec![1.0; 4]);
        let op = convt(2, 0, 0, false);
        let y = op.cpu(&[&x, &w], &op.shape(&[&x.shape, &w.shape]).unwrap());
        #[rustfmt::skip]
        let want = vec![1.0, 1.0, 2.0, 2.0,  1.0, 1.0, 2.0, 2.0,  3.0, 3.0, 4.0, 4.0,  3.0, 3.0, 4.0, 4.0];
        assert_eq!(y.data, want);
    }

    /// ConvTranspose2d is the adjoint of Conv2d with the same weights, stride and padding:
    /// <conv(x), y> == <x, convT(y)>, with out_pad choosing convT's output size as x's.
    #[test]
    fn conv_transpose_is_adjoint_of_conv() {
        for (hw, k, s, p, out_pad) in [
            (7, 3, 2, 1, 0),
            (8, 3, 2, 1, 1),
            (6, 4, 2, 2, 0),
            (5, 3, 1, 1, 0),
            (9, 1, 3, 0, 2),
        ] {
            let (c, o) = (3, 2);
            let x = data(&[2, c, hw, hw], 1);
            let w = data(&[o, c, k, k], 2);
            let fwd = conv(s, p, false);
            let ys = fwd.shape(&[&x.shape, &w.shape]).unwrap();
            let y = data(&ys, 3);
            let bwd = convt(s, p, out_pad, false);
            let xs = bwd.shape(&[&ys, &w.shape]).unwrap();
            assert_eq!(xs, x.shape, "hw {hw} k {k} s {s} p {p}");
            let dot = |a: &Tensor<f64>, b: &Tensor<f64>| {
                a.data.iter().zip(&b.data).map(|(u, v)| u * v).sum::<f64>()
            };
            let lhs = dot(&fwd.cpu(&[&x, &w], &ys), &y);
            let rhs = dot(&x, &bwd.cpu(&[&y, &w], &xs));
            assert_relative_eq!(lhs, rhs, max_relative = 1e-12);
        }
    }

    #[test]
    fn biases_are_per_output_channel() {
        let x = Tensor::<f32>::zeros(&[1, 1, 2, 2]);
        let w = Tensor::new(&[1, 2, 1, 1], vec![1.0, 1.0]);
        let b = Tensor::new(&[2], vec![1.0, -2.0]);
        let op = convt(1, 0, 0, true);
        let y = op.cpu(
            &[&x, &w, &b],
            &op.shape(&[&x.shape, &w.shape, &b.shape]).unwrap(),
        );
        assert_eq!(y.data, vec![1.0, 1.0, 1.0, 1.0, -2.0, -2.0, -2.0, -2.0]);
        let w = Tensor::new(&[2, 1, 1, 1], vec![1.0, 1.0]);
        let op = conv(1, 0, true);
        let y = op.cpu(
            &[&x, &w, &b],
            &op.shape(&[&x.shape, &w.shape, &b.shape]).unwrap(),
        );
        assert_eq!(y.data, vec![1.0, 1.0, 1.0, 1.0, -2.0, -2.0, -2.0, -2.0]);
    }
}
