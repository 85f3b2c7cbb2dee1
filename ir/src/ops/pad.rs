//! Reflection padding (PyTorch's ReflectionPad2d: the edge pixel is not repeated).

use super::check;
use super::properties::Properties;
use super::properties::{elements, Flops};
use super::reach::{Reach, Spatial};
use super::vjp::VjpResult;
use crate::{shape4, Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

#[derive(Debug, Clone, PartialEq)]
pub struct ReflectPad {
    /// top, bottom, left, right
    pub pads: [usize; 4],
}

/// The adjoint of [`ReflectPad`]: input gy [N,C,H+top+bottom,W+left+right] -> [N,C,H,W], each
/// padded position's gradient summed back into the pixel it mirrors.
#[derive(Debug, Clone, PartialEq)]
pub struct ReflectPadGrad {
    /// top, bottom, left, right (those of the ReflectPad it undoes)
    pub pads: [usize; 4],
}

/// Index into `0..n` of position `i` of the padded axis (which starts at `-pad`): mirrored
/// about the first and last element, as `[a b c]` padded by 2 reads `c b [a b c] b a`.
fn reflect(i: usize, pad: usize, n: usize) -> usize {
    let i = i as isize - pad as isize;
    let last = n as isize - 1;
    let r = if i < 0 {
        -i
    } else if i > last {
        2 * last - i
    } else {
        i
    };
    r as usize
}

impl ReflectPad {
    pub const PROPERTIES: Properties = Properties {
        cheap: true,
        ..Properties::NONE
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "reflect_pad";
        check::arity(OP, inputs, 1, "x")?;
        let [n, c, h, w] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        let [top, bottom, left, right] = self.pads;
        // PyTorch's rule: a mirror of pad elements needs pad + 1 of them.
        for (what, size, a, b) in [
            ("top and bottom", h, top, bottom),
            ("left and right", w, left, right),
        ] {
            if a >= size || b >= size {
                let dim = if what == "top and bottom" {
                    "height"
                } else {
                    "width"
                };
                return Err(format!(
                    "{OP}: expected {what} pads smaller than the input {dim} {size}, found {a} and {b} (input {:?})",
                    inputs[0]
                ));
            }
        }
        Ok(vec![n, c, h + top + bottom, w + left + right])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let x = inputs[0];
        let [_, _, h, w] = shape4(&x.shape);
        let [n, c, oh, ow] = shape4(out_shape);
        let [top, _, left, _] = self.pads;
        let mut data = Vec::with_capacity(crate::numel(out_shape));
        for b in 0..n {
            for ch in 0..c {
                for i in 0..oh {
                    for j in 0..ow {
                        data.push(x.at4(b, ch, reflect(i, top, h), reflect(j, left, w)));
                    }
                }
            }
        }
        Tensor::new(out_shape, data)
    }

    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let op = Op::ReflectPadGrad(ReflectPadGrad { pads: self.pads });
        super::vjp::adjoint(g, node, grad, op)
    }
}

impl ReflectPadGrad {
    pub const PROPERTIES: Properties = Properties::INTERNAL;

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "reflect_pad_grad";
        check::arity(OP, inputs, 1, "gy")?;
        let [n, c, h, w] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        let [top, bottom, left, right] = self.pads;
        let (oh, ow) = (h.checked_sub(top + bottom), w.checked_sub(left + right));
        match (oh, ow) {
            // The same rule as the forward pad: every pad smaller than the unpadded size.
            (Some(oh), Some(ow)) if top.max(bottom) < oh && left.max(right) < ow => {
                Ok(vec![n, c, oh, ow])
            }
            _ => Err(format!(
                "{OP}: expected a gradient of a reflect_pad by {:?} (each pad smaller than the unpadded size), found {:?}",
                self.pads, inputs[0]
            )),
        }
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let gy = inputs[0];
        let [n, c, gh, gw] = shape4(&gy.shape);
        let [_, _, h, w] = shape4(out_shape);
        let [top, _, left, _] = self.pads;
        let mut x = Tensor::zeros(out_shape);
        for b in 0..n {
            for ch in 0..c {
                for i in 0..gh {
                    for j in 0..gw {
                        let at = ((b * c + ch) * h + reflect(i, top, h)) * w + reflect(j, left, w);
                        x.data[at] = x.data[at] + gy.at4(b, ch, i, j);
                    }
                }
            }
        }
        x
    }

    /// Linear, so its VJP is its adjoint: the reflect pad.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let op = Op::ReflectPad(ReflectPad { pads: self.pads });
        super::vjp::adjoint(g, node, grad, op)
    }
}

impl Flops for ReflectPad {}

impl Flops for ReflectPadGrad {
    fn flops(&self, inputs: &[&[usize]], _out: &[usize]) -> u64 {
        // Reflected border pixels add onto the ones they mirror.
        elements(inputs.first().copied().unwrap_or_default())
    }
}

impl Spatial for ReflectPad {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Window(self.pads.into_iter().max().unwrap_or(0))
    }
}
impl Spatial for ReflectPadGrad {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let p = ReflectPad { pads: [3, 3, 3, 3] };
        assert_eq!(p.shape(&[&[1, 3, 256, 256]]), Ok(vec![1, 3, 262, 262]));
        assert_eq!(
            ReflectPad { pads: [0, 1, 2, 0] }.shape(&[&[1, 1, 2, 3]]),
            Ok(vec![1, 1, 3, 5])
        );
        assert_eq!(
            p.shape(&[&[1, 3, 3, 8]]).unwrap_err(),
            "reflect_pad: expected top and bottom pads smaller than the input height 3, found 3 and 3 (input [1, 3, 3, 8])"
        );
        assert_eq!(
            ReflectPad { pads: [1, 1, 0, 2] }.shape(&[&[1, 3, 8, 2]]).unwrap_err(),
            "reflect_pad: expected left and right pads smaller than the input width 2, found 0 and 2 (input [1, 3, 8, 2])"
        );
    }

    #[test]
    fn reflects_1_to_16() {
        // The 4x4 image 1..16 padded by 2 on every side (torch.nn.ReflectionPad2d(2)).
        let x = Tensor::new(&[1, 1, 4, 4], (1..=16).map(f64::from).collect());
        let p = ReflectPad { pads: [2, 2, 2, 2] };
        let y = p.cpu(&[&x], &p.shape(&[&x.shape]).unwrap());
        #[rustfmt::skip]
        let want: Vec<f64> = vec![
            11, 10,  9, 10, 11, 12, 11, 10,
             7,  6,  5,  6,  7,  8,  7,  6,
             3,  2,  1,  2,  3,  4,  3,  2,
             7,  6,  5,  6,  7,  8,  7,  6,
            11, 10,  9, 10, 11, 12, 11, 10,
            15, 14, 13, 14, 15, 16, 15, 14,
            11, 10,  9, 10, 11, 12, 11, 10,
             7,  6,  5,  6,  7,  8,  7,  6,
        ].into_iter().map(f64::from).collect();
        assert_eq!(y.data, want);
    }

    #[test]
    fn asymmetric_pads() {
        // [1 2 3] with left 1, right 2 -> 2 [1 2 3] 2 1; top 0, bottom 1 repeats row 0 mirrored.
        let x = Tensor::new(&[1, 1, 2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let p = ReflectPad { pads: [0, 1, 1, 2] };
        let y = p.cpu(&[&x], &p.shape(&[&x.shape]).unwrap());
        #[rustfmt::skip]
        let want = vec![2.0, 1.0, 2.0, 3.0, 2.0, 1.0,  5.0, 4.0, 5.0, 6.0, 5.0, 4.0,  2.0, 1.0, 2.0, 3.0, 2.0, 1.0];
        assert_eq!(y.data, want);
    }

    /// <pad(x), y> == <x, pad_grad(y)> for several pads, asymmetric ones included.
    #[test]
    fn pad_grad_is_the_adjoint() {
        let data = |shape: &[usize], seed: usize| {
            let n = crate::numel(shape);
            Tensor::new(
                shape,
                (0..n)
                    .map(|i| (((i * 7 + seed * 13) % 11) as f64 - 5.0) / 4.0)
                    .collect(),
            )
        };
        for pads in [[1, 1, 1, 1], [2, 0, 1, 3], [0, 2, 2, 0]] {
            let x = data(&[2, 2, 4, 5], 1);
            let p = ReflectPad { pads };
            let ys = p.shape(&[&x.shape]).unwrap();
            let y = data(&ys, 2);
            let q = ReflectPadGrad { pads };
            assert_eq!(q.shape(&[&ys]), Ok(x.shape.clone()));
            let dot = |a: &Tensor<f64>, b: &Tensor<f64>| {
                a.data.iter().zip(&b.data).map(|(u, v)| u * v).sum::<f64>()
            };
            let lhs = dot(&p.cpu(&[&x], &ys), &y);
            let rhs = dot(&x, &q.cpu(&[&y], &x.shape));
            approx::assert_relative_eq!(lhs, rhs, max_relative = 1e-12);
        }
        // [a b c] padded by 1 each side reads b [a b c] b: a gradient of ones sums to [1 3 1].
        let q = ReflectPadGrad { pads: [0, 0, 1, 1] };
        let ones = Tensor::new(&[1, 1, 1, 5], vec![1.0f64; 5]);
        assert_eq!(q.cpu(&[&ones], &[1, 1, 1, 3]).data, vec![1.0, 3.0, 1.0]);
        assert_eq!(
            q.shape(&[&[1, 1, 1, 3]]).unwrap_err(),
            "reflect_pad_grad: expected a gradient of a reflect_pad by [0, 0, 1, 1] (each pad smaller than the unpadded size), found [1, 1, 1, 3]"
        );
    }
}
