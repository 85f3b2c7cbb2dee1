//! Reductions over a set of axes, keeping the reduced axes as size 1.

use super::check;
use super::properties::Properties;
use super::properties::{elements, Flops};
use super::reach::{over_axes, Reach, Spatial};
use super::vjp::VjpResult;
use super::{Expand, Unary};
use crate::{shape4, Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReduceKind {
    Sum,
    Mean,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reduce {
    pub kind: ReduceKind,
    /// Axes of the input's own shape (not the padded one); empty means all axes.
    pub axes: Vec<usize>,
}

impl Reduce {
    pub const PROPERTIES: Properties = Properties::NONE;

    pub fn name(&self) -> &'static str {
        match self.kind {
            ReduceKind::Sum => "sum",
            ReduceKind::Mean => "mean",
        }
    }

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        let op = self.name();
        check::arity(op, inputs, 1, "x")?;
        let x = inputs[0];
        check::rank1to4(op, x)?;
        if self.axes.is_empty() {
            return Ok(vec![1; x.len()]);
        }
        let mut out = x.to_vec();
        for (k, &a) in self.axes.iter().enumerate() {
            if a >= x.len() {
                return Err(format!(
                    "{op}: expected axes below the input's rank {}, found axis {a} (input {x:?})",
                    x.len()
                ));
            }
            if self.axes[..k].contains(&a) {
                return Err(format!(
                    "{op}: expected each axis once, found axis {a} twice"
                ));
            }
            out[a] = 1;
        }
        Ok(out)
    }

    /// Every input element adds into the output element at its coordinates with the reduced axes
    /// set to 0 (those are exactly the output's size-1 axes that the input does not share).
    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let x = inputs[0];
        let [n, c, h, w] = shape4(&x.shape);
        let o = shape4(out_shape);
        let mut y = Tensor::zeros(out_shape);
        for i0 in 0..n {
            for i1 in 0..c {
                for i2 in 0..h {
                    for i3 in 0..w {
                        let j = |k: usize, i: usize| if o[k] == 1 { 0 } else { i };
                        let at = ((j(0, i0) * o[1] + j(1, i1)) * o[2] + j(2, i2)) * o[3] + j(3, i3);
                        y.data[at] = y.data[at] + x.at4(i0, i1, i2, i3);
                    }
                }
            }
        }
        if self.kind == ReduceKind::Mean {
            let count = T::from(crate::numel(&x.shape) / crate::numel(out_shape).max(1))
                .unwrap_or_else(T::nan);
            y.data.iter_mut().for_each(|v| *v = *v / count);
        }
        y
    }
}

impl Reduce {
    /// The gradient broadcast back to x's shape, divided by the count for a mean.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let x = g.nodes[node].inputs[0];
        let name = super::vjp::prefix(g, node);
        let shape = g.nodes[x].shape.clone();
        let mut v = grad;
        if self.kind == ReduceKind::Mean {
            let count = crate::numel(&shape) / crate::numel(&g.nodes[node].shape).max(1);
            let scale = Unary::Affine {
                scale: 1.0 / count.max(1) as f64,
                shift: 0.0,
            };
            v = super::vjp::unary(g, format!("{name}.scale"), scale, v)?;
        }
        if g.nodes[v].shape != shape {
            v = g.push(name, Op::Expand(Expand { shape }), vec![v])?;
        }
        Ok(vec![Some(v)])
    }
}

impl Flops for Reduce {
    fn flops(&self, inputs: &[&[usize]], _out: &[usize]) -> u64 {
        elements(inputs.first().copied().unwrap_or_default())
    }
}

impl Spatial for Reduce {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        match self.axes.is_empty() {
            true => Reach::Whole,
            false => over_axes(&self.axes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(axes: &[usize]) -> Reduce {
        Reduce {
            kind: ReduceKind::Sum,
            axes: axes.to_vec(),
        }
    }
    fn mean(axes: &[usize]) -> Reduce {
        Reduce {
            kind: ReduceKind::Mean,
            axes: axes.to_vec(),
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(sum(&[]).shape(&[&[2, 3, 4, 5]]), Ok(vec![1, 1, 1, 1]));
        assert_eq!(
            mean(&[1, 2, 3]).shape(&[&[2, 3, 4, 5]]),
            Ok(vec![2, 1, 1, 1])
        );
        assert_eq!(sum(&[0]).shape(&[&[3, 4]]), Ok(vec![1, 4]));
        assert_eq!(
            sum(&[3]).shape(&[&[2, 3, 4]]).unwrap_err(),
            "sum: expected axes below the input's rank 3, found axis 3 (input [2, 3, 4])"
        );
        assert_eq!(
            mean(&[1, 1]).shape(&[&[2, 3]]).unwrap_err(),
            "mean: expected each axis once, found axis 1 twice"
        );
        assert_eq!(
            mean(&[]).shape(&[]).unwrap_err(),
            "mean: expected 1 input (x), found 0"
        );
    }

    #[test]
    fn sums_and_means() {
        // [[1, 2, 3], [4, 5, 6]]
        let x = Tensor::new(&[2, 3], vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let run = |r: Reduce| r.cpu(&[&x], &r.shape(&[&x.shape]).unwrap());
        assert_eq!(run(sum(&[0])), Tensor::new(&[1, 3], vec![5.0, 7.0, 9.0]));
        assert_eq!(run(sum(&[1])), Tensor::new(&[2, 1], vec![6.0, 15.0]));
        assert_eq!(run(mean(&[1])), Tensor::new(&[2, 1], vec![2.0, 5.0]));
        assert_eq!(run(mean(&[])), Tensor::new(&[1, 1], vec![3.5]));
        assert_eq!(run(sum(&[0, 1])), Tensor::new(&[1, 1], vec![21.0]));
    }

    #[test]
    fn per_sample_mean_of_rank_4() {
        // The gradient-penalty shape: one value per sample over C, H, W.
        let x = Tensor::new(
            &[2, 2, 1, 2],
            vec![1.0f32, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0],
        );
        let r = mean(&[1, 2, 3]);
        assert_eq!(
            r.cpu(&[&x], &r.shape(&[&x.shape]).unwrap()).data,
            vec![2.5, 25.0]
        );
        // Axis of size 1 reduced together with a real one.
        let r = sum(&[1, 2]);
        assert_eq!(
            r.cpu(&[&x], &r.shape(&[&x.shape]).unwrap()).data,
            vec![4.0, 6.0, 40.0, 60.0]
        );
    }
}
