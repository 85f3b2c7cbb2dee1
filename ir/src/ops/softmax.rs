//! Softmax along one axis (attention's weights), with the row's maximum subtracted so that exp
//! never overflows.

use super::check;
use super::properties::Properties;
use super::properties::{elements, Flops};
use super::reach::{over_axes, Reach, Spatial};
use super::reduce::{Reduce, ReduceKind};
use super::vjp::{binary, VjpResult};
use super::Binary;
use crate::{shape4, Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

/// y = exp(x - max) / sum(exp(x - max)), the max and the sum over `axis` (of the input's own
/// shape) for each position of the other axes.
#[derive(Debug, Clone, PartialEq)]
pub struct Softmax {
    pub axis: usize,
}

impl Softmax {
    pub const PROPERTIES: Properties = Properties::NONE;

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "softmax";
        check::arity(OP, inputs, 1, "x")?;
        let x = inputs[0];
        check::rank1to4(OP, x)?;
        if self.axis >= x.len() {
            return Err(format!(
                "{OP}: expected an axis below the input's rank {}, found axis {} (input {x:?})",
                x.len(),
                self.axis
            ));
        }
        Ok(x.to_vec())
    }

    /// The axis in the rank-4 padded shape.
    pub fn axis4(&self, rank: usize) -> usize {
        self.axis + 4 - rank
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let x = inputs[0];
        let s = shape4(&x.shape);
        let axis = self.axis4(x.shape.len());
        // Elements of a row lie `stride` apart; rows start at every index whose axis coordinate
        // is 0.
        let stride: usize = s[axis + 1..].iter().product();
        let len = s[axis];
        let mut y = Tensor::zeros(out_shape);
        for start in (0..x.data.len()).filter(|i| (i / stride).is_multiple_of(len)) {
            let row = |j: usize| x.data[start + j * stride];
            let max = (1..len).map(row).fold(row(0), |m, v| m.max(v));
            let sum = (0..len).fold(T::zero(), |s, j| s + (row(j) - max).exp());
            for j in 0..len {
                y.data[start + j * stride] = (row(j) - max).exp() / sum;
            }
        }
        y
    }

    /// dx = y * (g - sum(g * y)) along the axis: in IR ops of y itself, so the second order
    /// differentiates through the same softmax.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let name = super::vjp::prefix(g, node);
        let gy = binary(g, format!("{name}.gy"), Binary::Mul, grad, node)?;
        let sum = Op::Reduce(Reduce {
            kind: ReduceKind::Sum,
            axes: vec![self.axis],
        });
        let s = g.push(format!("{name}.sum"), sum, vec![gy])?;
        let d = binary(g, format!("{name}.centred"), Binary::Sub, grad, s)?;
        Ok(vec![Some(binary(g, name, Binary::Mul, node, d)?)])
    }
}

impl Flops for Softmax {
    /// Per element: a comparison for the max, a subtraction and an exponential, an addition
    /// for the sum, and the division.
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        5 * elements(out)
    }
}

impl Spatial for Softmax {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        over_axes(&[self.axis])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let s = Softmax { axis: 3 };
        assert_eq!(s.shape(&[&[1, 2, 3, 4]]), Ok(vec![1, 2, 3, 4]));
        assert_eq!(Softmax { axis: 0 }.shape(&[&[5]]), Ok(vec![5]));
        assert_eq!(
            s.shape(&[&[2, 3, 4]]).unwrap_err(),
            "softmax: expected an axis below the input's rank 3, found axis 3 (input [2, 3, 4])"
        );
        assert_eq!(
            s.shape(&[&[1], &[1]]).unwrap_err(),
            "softmax: expected 1 input (x), found 2"
        );
        assert_eq!(
            s.shape(&[&[]]).unwrap_err(),
            "softmax: expected a shape of rank 1 to 4, found []"
        );
    }

    #[test]
    fn values_by_hand() {
        // ln 1, ln 3 and ln 4 give 1/8, 3/8, 4/8; a shift by 1000 must not overflow.
        let (l3, l4) = (3.0f64.ln(), 4.0f64.ln());
        let x = Tensor::new(&[2, 3], vec![0.0, l3, l4, 1000.0, 1000.0 + l3, 1000.0 + l4]);
        let y = Softmax { axis: 1 }.cpu(&[&x], &[2, 3]);
        let want = [0.125, 0.375, 0.5, 0.125, 0.375, 0.5];
        for (a, b) in y.data.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{:?}", y.data);
        }
        // Along axis 0 of the same values: each column's pair, the second far larger.
        let y = Softmax { axis: 0 }.cpu(&[&x], &[2, 3]);
        assert_eq!(y.data[..3], [0.0; 3]);
        assert_eq!(y.data[3..], [1.0; 3]);
        // A middle axis of a rank-4 tensor: x[0, c, 0, w] = c, rows of 2 along c.
        let x = Tensor::new(&[1, 2, 1, 2], vec![0.0f64, 0.0, 2.0f64.ln(), 2.0f64.ln()]);
        let y = Softmax { axis: 1 }.cpu(&[&x], &[1, 2, 1, 2]);
        for (a, b) in y
            .data
            .iter()
            .zip([1.0 / 3.0, 1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0])
        {
            assert!((a - b).abs() < 1e-12, "{:?}", y.data);
        }
    }
}
