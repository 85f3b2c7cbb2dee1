//! Small helpers that the ops' vector-Jacobian products share. Each op's VJP lives beside its
//! forward (in its own file); these only name nodes and build the recurring pieces in IR ops.

use super::{Const, Expand};
use crate::{Graph, NodeId, Op};

/// What a VJP returns: one gradient per input, None where no gradient flows.
pub type VjpResult = Result<Vec<Option<NodeId>>, String>;

/// The name prefix of the nodes a VJP adds for `node`: `grad.<node path>`.
pub(crate) fn prefix(g: &Graph, node: NodeId) -> String {
    format!("grad.{}", g.nodes[node].name)
}

/// A linear op's VJP: its adjoint `op` (a pad's crop, a shuffle's unshuffle) of the gradient.
pub(crate) fn adjoint(g: &mut Graph, node: NodeId, grad: NodeId, op: Op) -> VjpResult {
    let name = prefix(g, node);
    Ok(vec![Some(g.push(name, op, vec![grad])?)])
}

/// A tensor of zeros of `shape`: a scalar Const 0 expanded, so no large constant is stored.
pub fn zeros(g: &mut Graph, name: &str, shape: &[usize]) -> Result<NodeId, String> {
    filled(g, name, shape, 0.0)
}

/// A tensor of `shape` whose every element is `v`.
pub fn filled(g: &mut Graph, name: &str, shape: &[usize], v: f64) -> Result<NodeId, String> {
    let c = Op::Const(Const {
        shape: vec![1],
        values: vec![v],
    });
    let c = g.push(format!("{name}.value"), c, vec![])?;
    if shape == [1] {
        return Ok(c);
    }
    g.push(
        name,
        Op::Expand(Expand {
            shape: shape.to_vec(),
        }),
        vec![c],
    )
}

/// Push a unary op on `x`.
pub(crate) fn unary(
    g: &mut Graph,
    name: String,
    op: super::Unary,
    x: NodeId,
) -> Result<NodeId, String> {
    g.push(name, Op::Unary(op), vec![x])
}

/// Push a binary op on `a` and `b` (broadcasting as the op does).
pub(crate) fn binary(
    g: &mut Graph,
    name: String,
    op: super::Binary,
    a: NodeId,
    b: NodeId,
) -> Result<NodeId, String> {
    g.push(name, Op::Binary(op), vec![a, b])
}
