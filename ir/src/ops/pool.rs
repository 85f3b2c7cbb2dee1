//! Max pooling; padding counts as -infinity.

use super::check;
use super::properties::Properties;
use super::properties::{elements, Flops};
use super::reach::{window_reach, Reach, Spatial};
use super::vjp::VjpResult;
use crate::{shape4, Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

#[derive(Debug, Clone, PartialEq)]
pub struct MaxPool2d {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

/// inputs: x [N,C,H,W] (max_pool2d's input), gy (the gradient of its output) -> gx like x: each
/// window's gradient goes to the window's maximum, the first one in row-major order on ties
/// (as PyTorch does); windows that overlap add up.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxPool2dGrad {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

impl MaxPool2d {
    pub const PROPERTIES: Properties = Properties {
        rereads: true,
        ..Properties::NONE
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "max_pool2d";
        check::arity(OP, inputs, 1, "x")?;
        check::positive(OP, "kernel", self.kernel)?;
        check::positive(OP, "stride", self.stride)?;
        let [n, c, h, w] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        let (k, s, p) = (self.kernel, self.stride, self.pad);
        // PyTorch's rule; it also makes every window hold at least one real value.
        if p > k / 2 {
            return Err(format!(
                "{OP}: expected pad <= kernel / 2, found pad {p} with kernel {k}"
            ));
        }
        let out = |size: usize| (size + 2 * p >= k).then(|| (size + 2 * p - k) / s + 1);
        match (out(h), out(w)) {
            (Some(oh), Some(ow)) => Ok(vec![n, c, oh, ow]),
            _ => Err(format!(
                "{OP}: output would be empty: input {h}x{w}, kernel {k}, pad {p}"
            )),
        }
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let x = inputs[0];
        let mut data = Vec::with_capacity(crate::numel(out_shape));
        windows(
            self.kernel,
            self.stride,
            self.pad,
            &x.shape,
            out_shape,
            |_, at| data.push(at.map_or(T::neg_infinity(), |a| x.data[a])),
            x,
        );
        Tensor::new(out_shape, data)
    }

    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let x = g.nodes[node].inputs[0];
        let name = super::vjp::prefix(g, node);
        let op = Op::MaxPool2dGrad(MaxPool2dGrad {
            kernel: self.kernel,
            stride: self.stride,
            pad: self.pad,
        });
        Ok(vec![Some(g.push(name, op, vec![x, grad])?)])
    }
}

/// Visits every output position (in order, by its flat index) with the flat index in x of its
/// window's first maximum; `None` only for a window with no real value (the shape rule's
/// pad <= kernel / 2 prevents it).
fn windows<T: Float>(
    k: usize,
    s: usize,
    p: usize,
    x_shape: &[usize],
    out_shape: &[usize],
    mut visit: impl FnMut(usize, Option<usize>),
    x: &Tensor<T>,
) {
    let [_, _, h, w] = shape4(x_shape);
    let [n, c, oh, ow] = shape4(out_shape);
    let mut out = 0;
    for b in 0..n {
        for ch in 0..c {
            for i in 0..oh {
                for j in 0..ow {
                    let mut best: Option<(usize, T)> = None;
                    for ki in 0..k {
                        for kj in 0..k {
                            let (Some(hi), Some(wi)) =
                                ((i * s + ki).checked_sub(p), (j * s + kj).checked_sub(p))
                            else {
                                continue;
                            };
                            if hi < h && wi < w {
                                let at = ((b * c + ch) * h + hi) * w + wi;
                                let v = x.data[at];
                                // Strictly greater: the first maximum wins ties; NaN wins as in PyTorch.
                                if best.is_none_or(|(_, m)| v > m || v.is_nan()) {
                                    best = Some((at, v));
                                }
                            }
                        }
                    }
                    visit(out, best.map(|(a, _)| a));
                    out += 1;
                }
            }
        }
    }
}

impl MaxPool2dGrad {
    pub const PROPERTIES: Properties = Properties {
        rereads: true,
        internal: true,
        ..Properties::NONE
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "max_pool2d_grad";
        check::arity(OP, inputs, 2, "x, gy")?;
        let pool = MaxPool2d {
            kernel: self.kernel,
            stride: self.stride,
            pad: self.pad,
        };
        let want = pool
            .shape(&inputs[..1])
            .map_err(|e| e.replacen("max_pool2d", OP, 1))?;
        if inputs[1] != want.as_slice() {
            return Err(format!(
                "{OP}: expected gy {want:?} (max_pool2d's output for x {:?}), found {:?}",
                inputs[0], inputs[1]
            ));
        }
        Ok(inputs[0].to_vec())
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let (x, gy) = (inputs[0], inputs[1]);
        let mut gx = Tensor::zeros(out_shape);
        windows(
            self.kernel,
            self.stride,
            self.pad,
            &x.shape,
            &gy.shape,
            |o, at| {
                if let Some(a) = at {
                    gx.data[a] = gx.data[a] + gy.data[o];
                }
            },
            x,
        );
        gx
    }

    /// The gradient routing is piecewise constant in x (zero almost everywhere) but linear in
    /// gy; irdc does not differentiate through it at all, so a graph that asks says so.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, _grad: NodeId) -> VjpResult {
        Err(format!(
            "max_pool2d_grad: the second derivative is not defined in irdc; `{}` is the gradient of a max pool, and a gradient of it was asked for (differentiate a graph with max pools only once)",
            g.nodes[node].name
        ))
    }
}

impl Flops for MaxPool2d {
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        // One comparison per window element after the first.
        elements(out) * (self.kernel * self.kernel).saturating_sub(1) as u64
    }
}

impl Flops for MaxPool2dGrad {
    fn flops(&self, inputs: &[&[usize]], _out: &[usize]) -> u64 {
        elements(inputs.get(1).copied().unwrap_or_default()) * (self.kernel * self.kernel) as u64
    }
}

impl Spatial for MaxPool2d {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Window(window_reach(self.kernel, self.pad))
    }
}
impl Spatial for MaxPool2dGrad {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        // The inception branch of docs/spec.md: 3x3, stride 1, pad 1 keeps H and W.
        let p = MaxPool2d {
            kernel: 3,
            stride: 1,
            pad: 1,
        };
        assert_eq!(p.shape(&[&[1, 8, 16, 16]]), Ok(vec![1, 8, 16, 16]));
        assert_eq!(
            MaxPool2d {
                kernel: 2,
                stride: 2,
                pad: 0
            }
            .shape(&[&[1, 8, 7, 6]]),
            Ok(vec![1, 8, 3, 3])
        );
        assert_eq!(
            MaxPool2d {
                kernel: 3,
                stride: 1,
                pad: 2
            }
            .shape(&[&[1, 8, 16, 16]])
            .unwrap_err(),
            "max_pool2d: expected pad <= kernel / 2, found pad 2 with kernel 3"
        );
        assert_eq!(
            MaxPool2d {
                kernel: 5,
                stride: 1,
                pad: 0
            }
            .shape(&[&[1, 8, 2, 9]])
            .unwrap_err(),
            "max_pool2d: output would be empty: input 2x9, kernel 5, pad 0"
        );
        assert_eq!(
            MaxPool2d {
                kernel: 3,
                stride: 0,
                pad: 0
            }
            .shape(&[&[1, 8, 4, 4]])
            .unwrap_err(),
            "max_pool2d: expected a stride >= 1, found 0"
        );
        assert_eq!(
            p.shape(&[&[8, 4, 4]]).unwrap_err(),
            "max_pool2d: expected an input of rank 4 [N, C, H, W], found [8, 4, 4]"
        );
    }

    #[test]
    fn padding_is_minus_infinity() {
        // All values negative, so a zero padding would show up as 0 at the borders.
        let x = Tensor::new(&[1, 1, 3, 3], (1..=9).map(|v| -f64::from(v)).collect());
        let p = MaxPool2d {
            kernel: 3,
            stride: 1,
            pad: 1,
        };
        let y = p.cpu(&[&x], &p.shape(&[&x.shape]).unwrap());
        assert_eq!(
            y.data,
            vec![-1.0, -1.0, -2.0, -1.0, -1.0, -2.0, -4.0, -4.0, -5.0]
        );
    }

    #[test]
    fn strided() {
        let x = Tensor::new(&[1, 1, 4, 4], (1..=16u8).map(f32::from).collect::<Vec<_>>());
        let p = MaxPool2d {
            kernel: 2,
            stride: 2,
            pad: 0,
        };
        assert_eq!(p.cpu(&[&x], &[1, 1, 2, 2]).data, vec![6.0, 8.0, 14.0, 16.0]);
        // Stride 2 with pad 1 on 1..16: windows start at -1 and 1.
        let p = MaxPool2d {
            kernel: 3,
            stride: 2,
            pad: 1,
        };
        assert_eq!(
            p.cpu(&[&x], &p.shape(&[&x.shape]).unwrap()).data,
            vec![6.0, 8.0, 14.0, 16.0]
        );
    }

    #[test]
    fn grad_routes_to_the_first_maximum() {
        // Row [1 3 3 2] over a row of zeros, kernel 2 stride 1: windows [1 3], [3 3], [3 2] pick
        // columns 1, 1 (the first 3 of the tie) and 2.
        let x = Tensor::new(&[1, 1, 1, 4], vec![1.0f64, 3.0, 3.0, 2.0]);
        let gy = Tensor::new(&[1, 1, 1, 3], vec![1.0, 10.0, 100.0]);
        let x2 = Tensor::new(&[1, 1, 2, 4], [x.data.clone(), vec![0.0; 4]].concat());
        let p = MaxPool2dGrad {
            kernel: 2,
            stride: 1,
            pad: 0,
        };
        assert_eq!(p.shape(&[&x2.shape, &gy.shape]), Ok(vec![1, 1, 2, 4]));
        let gx = p.cpu(&[&x2, &gy], &x2.shape);
        assert_eq!(gx.data, vec![0.0, 11.0, 100.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        // Padding never receives gradient: 3x3 windows with pad 1 over 1..9 (max at the larger index).
        let x = Tensor::new(&[1, 1, 3, 3], (1..=9).map(f64::from).collect());
        let p = MaxPool2dGrad {
            kernel: 3,
            stride: 1,
            pad: 1,
        };
        let gy = Tensor::new(&[1, 1, 3, 3], vec![1.0; 9]);
        let gx = p.cpu(&[&x, &gy], &x.shape);
        assert_eq!(gx.data, vec![0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 2.0, 4.0]);
        assert_eq!(
            p.shape(&[&[1, 1, 3, 3], &[1, 1, 2, 2]]).unwrap_err(),
            "max_pool2d_grad: expected gy [1, 1, 3, 3] (max_pool2d's output for x [1, 1, 3, 3]), found [1, 1, 2, 2]"
        );
        assert_eq!(
            MaxPool2dGrad {
                kernel: 3,
                stride: 1,
                pad: 2
            }
            .shape(&[&[1, 1, 3, 3], &[1, 1, 3, 3]])
            .unwrap_err(),
            "max_pool2d_grad: expected pad <= kernel / 2, found pad 2 with kernel 3"
        );
    }
}
