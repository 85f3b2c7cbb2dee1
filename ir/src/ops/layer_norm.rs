//! Layer normalisation over channels (NAFNet's and Restormer's LayerNorm2d): per sample and
//! pixel, over C, biased variance, then an optional per-channel scale and shift.

use super::check;
use super::norm::normalized_vjp;
use super::properties::Properties;
use super::properties::{elements, Flops};
use super::reach::{Reach, Spatial};
use super::vjp::binary;
use super::vjp::VjpResult;
use super::{Binary, Reduce, ReduceKind, Reshape};
use crate::{shape4, Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

/// inputs: x [N,C,H,W], and weight [C] and bias [C] if `affine`.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNorm {
    pub eps: f64,
    pub affine: bool,
}

impl LayerNorm {
    pub const PROPERTIES: Properties = Properties::NONE;

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "layer_norm";
        match self.affine {
            true => check::arity(OP, inputs, 3, "x, weight, bias")?,
            false => check::arity(OP, inputs, 1, "x")?,
        }
        let [_, c, _, _] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        for (name, s) in ["weight", "bias"].iter().zip(&inputs[1..]) {
            if *s != [c] {
                return Err(format!(
                    "{OP}: expected a {name} [{c}] (one per channel), found {s:?}"
                ));
            }
        }
        check::eps(OP, self.eps)?;
        Ok(inputs[0].to_vec())
    }

    /// y[n,c,h,w] = (x - mean) / sqrt(var + eps) * weight[c] + bias[c], mean and biased variance
    /// over c at each (n, h, w).
    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let x = inputs[0];
        let [n, c, h, w] = shape4(out_shape);
        let eps = T::from(self.eps).unwrap_or_else(T::nan);
        let count = T::from(c).unwrap_or_else(T::nan);
        let mut y = Tensor::zeros(out_shape);
        let plane = h * w;
        for b in 0..n {
            for p in 0..plane {
                let at = |ch: usize| (b * c + ch) * plane + p;
                let mean = (0..c).fold(T::zero(), |s, ch| s + x.data[at(ch)]) / count;
                let var = (0..c).fold(T::zero(), |s, ch| {
                    let d = x.data[at(ch)] - mean;
                    s + d * d
                }) / count;
                let inv = (var + eps).sqrt().recip();
                for ch in 0..c {
                    let mut v = (x.data[at(ch)] - mean) * inv;
                    if self.affine {
                        v = v * inputs[1].data[ch] + inputs[2].data[ch];
                    }
                    y.data[at(ch)] = v;
                }
            }
        }
        y
    }

    /// With the affine, the normalised x is recomputed (a layer_norm without it) and
    /// g * weight flows into the normalisation's gradient; weight's gradient is the sum of
    /// g * normalised x over N, H, W, bias's the sum of g.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let ins = g.nodes[node].inputs.clone();
        let n = super::vjp::prefix(g, node);
        if !self.affine {
            return Ok(vec![Some(normalized_vjp(
                g,
                &n,
                (ins[0], node, grad),
                self.eps,
                &[1],
            )?)]);
        }
        let c = g.nodes[ins[0]].shape[1];
        let plain = Op::LayerNorm(LayerNorm {
            eps: self.eps,
            affine: false,
        });
        let xn = g.push(format!("{n}.normalized"), plain, vec![ins[0]])?;
        let per_channel = Op::Reshape(Reshape {
            shape: vec![1, c, 1, 1],
        });
        let w = g.push(format!("{n}.weight4"), per_channel, vec![ins[1]])?;
        let gn = binary(g, format!("{n}.g_weighted"), Binary::Mul, grad, w)?;
        let gx = normalized_vjp(g, &format!("{n}.x"), (ins[0], xn, gn), self.eps, &[1])?;
        let gxn = binary(g, format!("{n}.g_normalized"), Binary::Mul, grad, xn)?;
        let gw = channel_sum(g, &format!("{n}.weight"), gxn, c)?;
        let gb = channel_sum(g, &format!("{n}.bias"), grad, c)?;
        Ok(vec![Some(gx), Some(gw), Some(gb)])
    }
}

/// The sum of `v` [N,C,H,W] over N, H and W, as [C].
fn channel_sum(g: &mut Graph, name: &str, v: NodeId, c: usize) -> Result<NodeId, String> {
    let sum = Op::Reduce(Reduce {
        kind: ReduceKind::Sum,
        axes: vec![0, 2, 3],
    });
    let s = g.push(format!("{name}_sum"), sum, vec![v])?;
    g.push(name, Op::Reshape(Reshape { shape: vec![c] }), vec![s])
}

impl Flops for LayerNorm {
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        // Mean and variance (3 per element), normalise (2), the affine (2).
        (5 + 2 * self.affine as u64) * elements(out)
    }
}

impl Spatial for LayerNorm {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Pixel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let ln = LayerNorm {
            eps: 1e-6,
            affine: true,
        };
        assert_eq!(ln.shape(&[&[1, 4, 2, 3], &[4], &[4]]), Ok(vec![1, 4, 2, 3]));
        assert_eq!(
            ln.shape(&[&[1, 4, 2, 3], &[4], &[3]]).unwrap_err(),
            "layer_norm: expected a bias [4] (one per channel), found [3]"
        );
        assert_eq!(
            ln.shape(&[&[1, 4, 2, 3]]).unwrap_err(),
            "layer_norm: expected 3 inputs (x, weight, bias), found 1"
        );
    }

    #[test]
    fn hand_computed() {
        // Pixel 0 has channels [1, 3]: mean 2, variance 1; pixel 1 [2, 2] normalises to 0.
        let x = Tensor::new(&[1, 2, 1, 2], vec![1.0f64, 2.0, 3.0, 2.0]);
        let w = Tensor::new(&[2], vec![2.0, 1.0]);
        let b = Tensor::new(&[2], vec![0.5, -0.5]);
        let ln = LayerNorm {
            eps: 0.25,
            affine: true,
        };
        let y = ln.cpu(&[&x, &w, &b], &[1, 2, 1, 2]);
        let s = 1.25f64.sqrt();
        assert_eq!(y.data, vec![-2.0 / s + 0.5, 0.5, 1.0 / s - 0.5, -0.5]);
    }
}
