//! Instance normalisation: per sample and channel over H x W, biased variance, no affine parameters.

use super::check;
use super::properties::Properties;
use super::properties::{elements, Flops};
use super::reach::Spatial;
use super::vjp::VjpResult;
use super::vjp::{binary, unary};
use super::{Binary, Reduce, ReduceKind, Unary};
use crate::{Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceNorm {
    pub eps: f64,
}

impl InstanceNorm {
    pub const PROPERTIES: Properties = Properties {
        cheap: true,
        channelwise: true,
        ..Properties::NONE
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "instance_norm";
        check::arity(OP, inputs, 1, "x")?;
        check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        check::eps(OP, self.eps)?;
        Ok(inputs[0].to_vec())
    }

    /// y = (x - mean) / sqrt(var + eps), mean and biased variance over each (n, c) plane.
    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let plane = out_shape[2] * out_shape[3];
        let eps = T::from(self.eps).unwrap_or_else(T::nan);
        let mut y = Tensor::zeros(out_shape);
        if plane == 0 {
            return y;
        }
        let count = T::from(plane).unwrap_or_else(T::nan);
        for (xs, ys) in inputs[0].data.chunks(plane).zip(y.data.chunks_mut(plane)) {
            let mean = xs.iter().fold(T::zero(), |s, &v| s + v) / count;
            let var = xs
                .iter()
                .fold(T::zero(), |s, &v| s + (v - mean) * (v - mean))
                / count;
            let inv = (var + eps).sqrt().recip();
            for (o, &v) in ys.iter_mut().zip(xs) {
                *o = (v - mean) * inv;
            }
        }
        y
    }
}

impl InstanceNorm {
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let (x, n) = (g.nodes[node].inputs[0], super::vjp::prefix(g, node));
        let gx = normalized_vjp(g, &n, (x, node, grad), self.eps, &[2, 3])?;
        Ok(vec![Some(gx)])
    }
}

/// The input gradient of a normalisation y = (x - mean) / sqrt(var + eps) over `axes` (the
/// plane for InstanceNorm, the channels for LayerNorm): gx = (g - mean(g) - y * mean(g * y)) /
/// sqrt(var + eps), composed of IR ops (means, broadcasting binaries, square, sqrt, recip) so it
/// is differentiable again. 1 / sqrt(var + eps) is recomputed from x rather than stored.
pub(super) fn normalized_vjp(
    g: &mut Graph,
    n: &str,
    (x, y, grad): (NodeId, NodeId, NodeId),
    eps: f64,
    axes: &[usize],
) -> Result<NodeId, String> {
    let mean = |g: &mut Graph, name: String, v: NodeId| {
        let op = Op::Reduce(Reduce {
            kind: ReduceKind::Mean,
            axes: axes.to_vec(),
        });
        g.push(name, op, vec![v])
    };
    let mx = mean(g, format!("{n}.mean"), x)?;
    let xc = binary(g, format!("{n}.centered"), Binary::Sub, x, mx)?;
    let sq = unary(g, format!("{n}.sq"), Unary::Square, xc)?;
    let var = mean(g, format!("{n}.var"), sq)?;
    let shift = Unary::Affine {
        scale: 1.0,
        shift: eps,
    };
    let ve = unary(g, format!("{n}.var_eps"), shift, var)?;
    let sd = unary(g, format!("{n}.std"), Unary::Sqrt, ve)?;
    let inv = unary(g, format!("{n}.inv_std"), Unary::Recip, sd)?;
    let mg = mean(g, format!("{n}.mean_g"), grad)?;
    let gy = binary(g, format!("{n}.g_y"), Binary::Mul, grad, y)?;
    let mgy = mean(g, format!("{n}.mean_g_y"), gy)?;
    let t = binary(g, format!("{n}.y_mean_g_y"), Binary::Mul, y, mgy)?;
    let d = binary(g, format!("{n}.g_centered"), Binary::Sub, grad, mg)?;
    let d = binary(g, format!("{n}.g_projected"), Binary::Sub, d, t)?;
    binary(g, n.to_string(), Binary::Mul, d, inv)
}

impl Flops for InstanceNorm {
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        // Mean and variance (sum, square, sum: 3 per element), then (x - mean) * rstd (2).
        5 * elements(out)
    }
}

impl Spatial for InstanceNorm {}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn shapes() {
        let op = InstanceNorm { eps: 1e-5 };
        assert_eq!(op.shape(&[&[1, 4, 8, 8]]), Ok(vec![1, 4, 8, 8]));
        assert_eq!(
            op.shape(&[&[4, 8, 8]]).unwrap_err(),
            "instance_norm: expected an input of rank 4 [N, C, H, W], found [4, 8, 8]"
        );
        assert_eq!(
            InstanceNorm { eps: -1.0 }
                .shape(&[&[1, 4, 8, 8]])
                .unwrap_err(),
            "instance_norm: expected a finite eps >= 0, found -1.0"
        );
    }

    #[test]
    fn each_plane_has_mean_0_and_variance_about_1() {
        let shape = [2, 3, 4, 5];
        let x = Tensor::new(
            &shape,
            (0..120)
                .map(|i| ((i * 37 % 23) as f64) * (1.0 + (i / 20) as f64))
                .collect(),
        );
        let y = InstanceNorm { eps: 1e-5 }.cpu(&[&x], &shape);
        for plane in y.data.chunks(20) {
            let mean = plane.iter().sum::<f64>() / 20.0;
            let var = plane.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 20.0;
            assert!(mean.abs() < 1e-12, "mean {mean}");
            assert_relative_eq!(var, 1.0, max_relative = 1e-5);
        }
    }

    #[test]
    fn hand_computed() {
        // Plane [1, 3]: mean 2, biased variance 1, so y = (x - 2) / sqrt(1 + eps).
        let x = Tensor::new(&[1, 1, 1, 2], vec![1.0f64, 3.0]);
        let y = InstanceNorm { eps: 0.25 }.cpu(&[&x], &[1, 1, 1, 2]);
        let s = 1.25f64.sqrt();
        assert_eq!(y.data, vec![-1.0 / s, 1.0 / s]);
        // A constant plane maps to 0, not NaN, thanks to eps.
        let c = Tensor::new(&[1, 1, 2, 2], vec![7.0f32; 4]);
        assert_eq!(
            InstanceNorm { eps: 1e-5 }.cpu(&[&c], &[1, 1, 2, 2]).data,
            vec![0.0; 4]
        );
    }
}
