//! Concatenation along channels (axis 1 of the rank-4 shape). Planned as one region by the compiler.

use super::check;
use super::properties::Flops;
use super::properties::Properties;
use super::reach::{Reach, Spatial};
use super::vjp::VjpResult;
use crate::{shape4, Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

#[derive(Debug, Clone, PartialEq)]
pub struct Concat {
    // no attributes: the axis is always the channel axis
}

/// Channels c0..c1 of a rank-4 tensor (the VJP of Concat).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSlice {
    pub c0: usize,
    pub c1: usize,
}

impl Concat {
    pub const PROPERTIES: Properties = Properties {
        channel_view: true,
        ..Properties::NONE
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "concat";
        let Some(first) = inputs.first() else {
            return Err(format!("{OP}: expected at least one input, found none"));
        };
        let [n, mut c, h, w] = check::rank4(OP, "inputs", "[N, C, H, W]", first)?;
        for (k, s) in inputs.iter().enumerate().skip(1) {
            let [n2, c2, h2, w2] = check::rank4(OP, "inputs", "[N, C, H, W]", s)?;
            if (n2, h2, w2) != (n, h, w) {
                return Err(format!(
                    "{OP}: expected inputs with the N, H, W of the first input {first:?}, found input {k} {s:?}"
                ));
            }
            c += c2;
        }
        Ok(vec![n, c, h, w])
    }

    /// Each sample's output is its inputs' channel blocks one after the other.
    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let [n, _, _, _] = shape4(out_shape);
        let mut data = Vec::with_capacity(crate::numel(out_shape));
        for b in 0..n {
            for x in inputs {
                let per_sample = crate::numel(&x.shape) / n;
                data.extend_from_slice(&x.data[b * per_sample..(b + 1) * per_sample]);
            }
        }
        Tensor::new(out_shape, data)
    }

    /// Each input gets its own channel block of the gradient.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let name = super::vjp::prefix(g, node);
        let mut c0 = 0;
        let mut out = Vec::new();
        for (k, &x) in g.nodes[node].inputs.clone().iter().enumerate() {
            let c1 = c0 + g.nodes[x].shape[1];
            let op = Op::ChannelSlice(ChannelSlice { c0, c1 });
            out.push(Some(g.push(format!("{name}.{k}"), op, vec![grad])?));
            c0 = c1;
        }
        Ok(out)
    }
}

impl ChannelSlice {
    pub const PROPERTIES: Properties = Properties {
        channel_view: true,
        ..Properties::NONE
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "channel_slice";
        check::arity(OP, inputs, 1, "x")?;
        let [n, c, h, w] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        if !(self.c0 < self.c1 && self.c1 <= c) {
            return Err(format!(
                "{OP}: expected channels c0 < c1 <= {c}, found {}..{} (input {:?})",
                self.c0, self.c1, inputs[0]
            ));
        }
        Ok(vec![n, self.c1 - self.c0, h, w])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let x = inputs[0];
        let [n, c, h, w] = shape4(&x.shape);
        let plane = h * w;
        let mut data = Vec::with_capacity(crate::numel(out_shape));
        for b in 0..n {
            data.extend_from_slice(&x.data[(b * c + self.c0) * plane..(b * c + self.c1) * plane]);
        }
        Tensor::new(out_shape, data)
    }

    /// The gradient placed back among zero channels: Concat(zeros, g, zeros), the zeros an
    /// Expand of a scalar 0 (so nothing large is stored and the result stays differentiable).
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let x = g.nodes[node].inputs[0];
        let name = super::vjp::prefix(g, node);
        let [n, c, h, w] = shape4(&g.nodes[x].shape);
        let mut parts = Vec::new();
        for (what, channels) in [("before", self.c0), ("", 0), ("after", c - self.c1)] {
            if what.is_empty() {
                parts.push(grad);
            } else if channels > 0 {
                parts.push(super::vjp::zeros(
                    g,
                    &format!("{name}.{what}"),
                    &[n, channels, h, w],
                )?);
            }
        }
        if parts.len() == 1 {
            return Ok(vec![Some(grad)]);
        }
        Ok(vec![Some(g.push(name, Op::Concat(Concat {}), parts)?)])
    }
}

impl Flops for Concat {}

impl Flops for ChannelSlice {}

impl Spatial for Concat {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Stack
    }
}

impl Spatial for ChannelSlice {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Pixel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let c = Concat {};
        assert_eq!(
            c.shape(&[&[2, 4, 8, 8], &[2, 1, 8, 8], &[2, 3, 8, 8]]),
            Ok(vec![2, 8, 8, 8])
        );
        assert_eq!(c.shape(&[&[2, 4, 8, 8]]), Ok(vec![2, 4, 8, 8]));
        assert_eq!(
            c.shape(&[]).unwrap_err(),
            "concat: expected at least one input, found none"
        );
        assert_eq!(
            c.shape(&[&[1, 4, 8, 8], &[1, 4, 4, 4]]).unwrap_err(),
            "concat: expected inputs with the N, H, W of the first input [1, 4, 8, 8], found input 1 [1, 4, 4, 4]"
        );
        assert_eq!(
            c.shape(&[&[1, 4, 8, 8], &[4, 8, 8]]).unwrap_err(),
            "concat: expected inputs of rank 4 [N, C, H, W], found [4, 8, 8]"
        );
    }

    #[test]
    fn interleaves_per_sample() {
        // Two samples: sample 0 takes a's first channel then b's two, and so on.
        let a = Tensor::new(&[2, 1, 1, 2], vec![1.0f64, 2.0, 3.0, 4.0]);
        let b = Tensor::new(
            &[2, 2, 1, 2],
            vec![5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
        );
        let y = Concat {}.cpu(&[&a, &b], &[2, 3, 1, 2]);
        assert_eq!(
            y.data,
            vec![1.0, 2.0, 5.0, 6.0, 7.0, 8.0, 3.0, 4.0, 9.0, 10.0, 11.0, 12.0]
        );
    }

    #[test]
    fn channel_slice() {
        let s = ChannelSlice { c0: 1, c1: 3 };
        assert_eq!(s.shape(&[&[2, 4, 1, 2]]), Ok(vec![2, 2, 1, 2]));
        assert_eq!(
            s.shape(&[&[2, 2, 1, 2]]).unwrap_err(),
            "channel_slice: expected channels c0 < c1 <= 2, found 1..3 (input [2, 2, 1, 2])"
        );
        assert_eq!(
            ChannelSlice { c0: 1, c1: 1 }
                .shape(&[&[2, 2, 1, 2]])
                .unwrap_err(),
            "channel_slice: expected channels c0 < c1 <= 2, found 1..1 (input [2, 2, 1, 2])"
        );
        // Slicing a concat gives back its parts.
        let a = Tensor::new(&[2, 1, 1, 2], vec![1.0f64, 2.0, 3.0, 4.0]);
        let b = Tensor::new(
            &[2, 2, 1, 2],
            vec![5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
        );
        let y = Concat {}.cpu(&[&a, &b], &[2, 3, 1, 2]);
        assert_eq!(ChannelSlice { c0: 0, c1: 1 }.cpu(&[&y], &[2, 1, 1, 2]), a);
        assert_eq!(ChannelSlice { c0: 1, c1: 3 }.cpu(&[&y], &[2, 2, 1, 2]), b);
    }
}
