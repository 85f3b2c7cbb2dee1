//! Pixel shuffles (PyTorch's `nn.PixelShuffle` and `nn.PixelUnshuffle`): depth to space and
//! back. Each is the other's inverse and, being a permutation, its adjoint, so each one's VJP is
//! the other and every order of derivative is a shuffle.

use super::check;
use super::properties::{Flops, Properties};
use super::reach::{Reach, Spatial};
use super::vjp::VjpResult;
use crate::{Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

/// [N, C*r*r, H, W] -> [N, C, H*r, W*r]: y[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w].
#[derive(Debug, Clone, PartialEq)]
pub struct PixelShuffle {
    pub factor: usize,
}

/// [N, C, H*r, W*r] -> [N, C*r*r, H, W], the inverse of [`PixelShuffle`].
#[derive(Debug, Clone, PartialEq)]
pub struct PixelUnshuffle {
    pub factor: usize,
}

/// Both shuffles only move elements, each read once, so readers may compute them in their loads.
const SHUFFLE: Properties = Properties {
    cheap: true,
    reindexes: true,
    ..Properties::NONE
};

/// The one input's [N, C, H, W], checked as both shuffles check it.
fn input(op: &str, factor: usize, inputs: &[&[usize]]) -> Result<[usize; 4], String> {
    check::arity(op, inputs, 1, "x")?;
    check::positive(op, "factor", factor)?;
    check::rank4(op, "an input", "[N, C, H, W]", inputs[0])
}

impl PixelShuffle {
    pub const PROPERTIES: Properties = SHUFFLE;

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "pixel_shuffle";
        let [n, c, h, w] = input(OP, self.factor, inputs)?;
        let rr = self.factor * self.factor;
        if c % rr != 0 {
            return Err(format!(
                "{OP}: expected channels divisible by factor^2 = {rr}, found {c} (input {:?})",
                inputs[0]
            ));
        }
        Ok(vec![n, c / rr, h * self.factor, w * self.factor])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let (x, r) = (inputs[0], self.factor);
        Tensor::from_fn(out_shape, |b, ch, i, j| {
            x.at4(b, ch * r * r + (i % r) * r + j % r, i / r, j / r)
        })
    }

    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let op = Op::PixelUnshuffle(PixelUnshuffle {
            factor: self.factor,
        });
        super::vjp::adjoint(g, node, grad, op)
    }
}

impl PixelUnshuffle {
    pub const PROPERTIES: Properties = SHUFFLE;

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "pixel_unshuffle";
        let [n, c, h, w] = input(OP, self.factor, inputs)?;
        let r = self.factor;
        if h % r != 0 || w % r != 0 {
            return Err(format!(
                "{OP}: expected a height and width divisible by the factor {r}, found {h}x{w} (input {:?})",
                inputs[0]
            ));
        }
        Ok(vec![n, c * r * r, h / r, w / r])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let (x, r) = (inputs[0], self.factor);
        Tensor::from_fn(out_shape, |b, ch, i, j| {
            x.at4(b, ch / (r * r), i * r + (ch / r) % r, j * r + ch % r)
        })
    }

    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let op = Op::PixelShuffle(PixelShuffle {
            factor: self.factor,
        });
        super::vjp::adjoint(g, node, grad, op)
    }
}

impl Flops for PixelShuffle {}

impl Flops for PixelUnshuffle {}

impl Spatial for PixelShuffle {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Window(1)
    }
}

impl Spatial for PixelUnshuffle {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Window(self.factor)
    }
}
