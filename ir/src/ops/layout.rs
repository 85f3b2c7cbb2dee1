//! Ops that only move or repeat elements: broadcast to a larger shape and reshape. Both exist
//! for backward passes (the VJPs of reductions, of broadcasting binaries, of a conv bias); a
//! model file also names Reshape (attention's heads).

use super::check;
use super::elementwise::broadcast_shapes;
use super::properties::Flops;
use super::properties::Properties;
use super::reach::{Reach, Spatial};
use super::reduce::{Reduce, ReduceKind};
use super::vjp::VjpResult;
use crate::{shape4, Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

/// Broadcast x to `shape` (NumPy rules: x's padded dimensions are equal or 1); the inverse of a
/// keepdim reduction.
#[derive(Debug, Clone, PartialEq)]
pub struct Expand {
    pub shape: Shape,
}

/// The same elements in the same order under a new shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Reshape {
    pub shape: Shape,
}

impl Expand {
    pub const PROPERTIES: Properties = Properties {
        elementwise: true,
        internal: true,
        ..Properties::NONE
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "expand";
        check::arity(OP, inputs, 1, "x")?;
        check::rank1to4(OP, inputs[0])?;
        check::rank1to4(OP, &self.shape)?;
        let x = inputs[0];
        if x.len() > self.shape.len()
            || broadcast_shapes(x, &self.shape).as_ref() != Some(&self.shape)
        {
            return Err(format!(
                "{OP}: expected an input that broadcasts to {:?}, found {x:?}",
                self.shape
            ));
        }
        Ok(self.shape.clone())
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let x = inputs[0];
        let s = shape4(&x.shape);
        let [n, c, h, w] = shape4(out_shape);
        let j = |k: usize, i: usize| if s[k] == 1 { 0 } else { i };
        let mut data = Vec::with_capacity(crate::numel(out_shape));
        for i0 in 0..n {
            for i1 in 0..c {
                for i2 in 0..h {
                    for i3 in 0..w {
                        data.push(x.at4(j(0, i0), j(1, i1), j(2, i2), j(3, i3)));
                    }
                }
            }
        }
        Tensor::new(out_shape, data)
    }

    /// Sum the gradient back over the broadcast axes.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let x = g.nodes[node].inputs[0];
        let name = super::vjp::prefix(g, node);
        let shape = g.nodes[x].shape.clone();
        Ok(vec![Some(sum_to(g, &name, grad, &shape)?)])
    }
}

impl Reshape {
    pub const PROPERTIES: Properties = Properties::NONE;

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "reshape";
        check::arity(OP, inputs, 1, "x")?;
        check::rank1to4(OP, inputs[0])?;
        check::rank1to4(OP, &self.shape)?;
        if crate::numel(inputs[0]) != crate::numel(&self.shape) {
            return Err(format!(
                "{OP}: expected an input of {} elements (shape {:?}), found {:?}",
                crate::numel(&self.shape),
                self.shape,
                inputs[0]
            ));
        }
        Ok(self.shape.clone())
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        Tensor::new(out_shape, inputs[0].data.clone())
    }

    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let x = g.nodes[node].inputs[0];
        let op = Op::Reshape(Reshape {
            shape: g.nodes[x].shape.clone(),
        });
        super::vjp::adjoint(g, node, grad, op)
    }
}

/// `v` (of a shape that `shape` broadcasts to) summed down to `shape`: a Sum over the axes that
/// broadcasting stretched or added, then a Reshape where the rank differs. Returns `v` itself
/// when the shapes already agree. Used by every VJP whose forward broadcasts.
pub fn sum_to(g: &mut Graph, name: &str, v: NodeId, shape: &[usize]) -> Result<NodeId, String> {
    let have = g.nodes[v].shape.clone();
    if have == shape {
        return Ok(v);
    }
    // Compare on the rank-4 padded shapes, as broadcasting does; axes are named in `have`'s rank.
    let (h4, s4, off) = (shape4(&have), shape4(shape), 4 - have.len());
    let axes: Vec<usize> = (0..have.len())
        .filter(|&k| h4[k + off] != 1 && s4[k + off] == 1)
        .collect();
    let mut v = v;
    if !axes.is_empty() {
        let op = Op::Reduce(Reduce {
            kind: ReduceKind::Sum,
            axes,
        });
        v = g.push(format!("{name}.sum"), op, vec![v])?;
    }
    if g.nodes[v].shape != shape {
        let op = Op::Reshape(Reshape {
            shape: shape.to_vec(),
        });
        v = g.push(format!("{name}.reshape"), op, vec![v])?;
    }
    Ok(v)
}

impl Flops for Expand {}

impl Flops for Reshape {}

impl Spatial for Expand {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Pixel
    }
}
impl Spatial for Reshape {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand() {
        let e = Expand { shape: vec![2, 3] };
        assert_eq!(e.shape(&[&[2, 1]]), Ok(vec![2, 3]));
        assert_eq!(e.shape(&[&[3]]), Ok(vec![2, 3]));
        assert_eq!(
            e.shape(&[&[2, 2]]).unwrap_err(),
            "expand: expected an input that broadcasts to [2, 3], found [2, 2]"
        );
        assert_eq!(
            Expand { shape: vec![3] }.shape(&[&[1, 3]]).unwrap_err(),
            "expand: expected an input that broadcasts to [3], found [1, 3]"
        );
        let x = Tensor::new(&[2, 1], vec![1.0f64, 2.0]);
        assert_eq!(
            e.cpu(&[&x], &[2, 3]).data,
            vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
        );
        let x = Tensor::new(&[3], vec![1.0f64, 2.0, 3.0]);
        assert_eq!(
            e.cpu(&[&x], &[2, 3]).data,
            vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
        );
    }

    #[test]
    fn reshape() {
        let r = Reshape { shape: vec![4] };
        assert_eq!(r.shape(&[&[1, 4, 1, 1]]), Ok(vec![4]));
        assert_eq!(
            r.shape(&[&[1, 3, 1, 1]]).unwrap_err(),
            "reshape: expected an input of 4 elements (shape [4]), found [1, 3, 1, 1]"
        );
        let x = Tensor::new(&[2, 2], vec![1.0f32, 2.0, 3.0, 4.0]);
        assert_eq!(
            r.cpu(&[&x], &[4]),
            Tensor::new(&[4], vec![1.0, 2.0, 3.0, 4.0])
        );
    }

    #[test]
    fn sum_to_reduces_broadcast_axes() {
        let mut g = Graph::default();
        g.nodes.push(crate::Node {
            name: "v".into(),
            op: Op::Input { name: "v".into() },
            inputs: vec![],
            shape: vec![2, 3, 4],
        });
        let a = sum_to(&mut g, "a", 0, &[3, 1]).unwrap();
        assert_eq!(g.nodes[a].shape, vec![3, 1]);
        assert_eq!(
            g.nodes[a - 1].op,
            Op::Reduce(Reduce {
                kind: ReduceKind::Sum,
                axes: vec![0, 2]
            })
        );
        assert_eq!(sum_to(&mut g, "b", 0, &[2, 3, 4]).unwrap(), 0);
        let c = sum_to(&mut g, "c", 0, &[1, 1, 3, 4]).unwrap();
        assert_eq!(g.nodes[c].shape, vec![1, 1, 3, 4]);
    }
}
