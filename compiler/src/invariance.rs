//! Parameters a value does not depend on at all, though it reads them: a conv's bias whose conv
//! feeds only instance norms. The norm subtracts each plane's mean, so adding delta[c] to every
//! pixel of channel c changes nothing after it, and the gradient of any order with respect to
//! that bias is exactly zero (the float sum the autodiff would compute is rounding noise around
//! zero). Training skips those gradients: no reduction per norm and step.
//!
//! The proof is a forward sweep over the graph with a perturbation delta of one parameter: each
//! value's change is Zero (none), Delta (exactly delta[c] on every element of channel c of a
//! rank-4 value), or Unknown; only exact identities move a value to Zero.

use ir::ops::{Binary, ReduceKind};
use ir::{Graph, NodeId, Op};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Zero,
    /// The perturbed parameter itself.
    Source,
    /// delta[c] added to every element of channel c (axis 1 of a rank-4 value).
    Delta,
    Unknown,
}

/// Whether `of` is unchanged by any change of parameter `param`, by the rules above. `false`
/// means "not proven", not "depends".
pub fn independent_of(graph: &Graph, of: NodeId, param: NodeId) -> bool {
    let mut change = vec![Change::Zero; graph.nodes.len()];
    change[param] = Change::Source;
    for (v, node) in graph.nodes.iter().enumerate().take(of + 1).skip(param + 1) {
        let ins: Vec<Change> = node.inputs.iter().map(|&i| change[i]).collect();
        if ins.iter().all(|&c| c == Change::Zero) {
            continue;
        }
        let rank4 = node.shape.len() == 4;
        change[v] = match (&node.op, ins.as_slice()) {
            // The bias is the only input that changes.
            (
                Op::Conv2d(_) | Op::ConvTranspose2d(_),
                [Change::Zero, Change::Zero, Change::Source],
            ) if rank4 => Change::Delta,
            (Op::InstanceNorm(_), [Change::Delta]) => Change::Zero,
            // The mean over axes that keep the channel moves by delta[c] too.
            (Op::Reduce(r), [Change::Delta])
                if rank4
                    && r.kind == ReduceKind::Mean
                    && !r.axes.is_empty()
                    && !r.axes.contains(&1) =>
            {
                Change::Delta
            }
            (Op::Binary(Binary::Sub), [Change::Delta, Change::Delta]) if same_rank(graph, node) => {
                Change::Zero
            }
            (Op::Binary(Binary::Sub | Binary::Add), [Change::Delta, Change::Zero])
            | (Op::Binary(Binary::Add), [Change::Zero, Change::Delta])
                if rank4 =>
            {
                Change::Delta
            }
            _ => Change::Unknown,
        };
    }
    change[of] == Change::Zero
}

/// Both operands of a binary op are rank 4, as the node is (so axis 1 is the channel in each).
fn same_rank(graph: &Graph, node: &ir::Node) -> bool {
    node.shape.len() == 4 && node.inputs.iter().all(|&i| graph.nodes[i].shape.len() == 4)
}

/// `wrt` without the parameters that `of` is proven independent of (`independent_of`).
pub fn dependent(graph: &Graph, of: NodeId, wrt: &[NodeId]) -> Vec<NodeId> {
    (wrt.iter().copied())
        .filter(|&p| !independent_of(graph, of, p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ir::ops::{Conv2d, InstanceNorm, Reduce, Unary};

    fn source(g: &mut Graph, name: &str, op: Op, shape: &[usize]) -> NodeId {
        g.nodes.push(ir::Node {
            name: name.into(),
            op,
            inputs: vec![],
            shape: shape.to_vec(),
        });
        g.nodes.len() - 1
    }

    fn param(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
        let init = ir::ops::Init::Zeros;
        source(g, name, Op::Param { init }, shape)
    }

    /// x -> conv(w, b) -> f -> mean: the loss, and the ids of b and w.
    fn net(after_conv: impl Fn(&mut Graph, NodeId) -> NodeId) -> (Graph, NodeId, NodeId, NodeId) {
        let mut g = Graph::default();
        let x = source(&mut g, "x", Op::Input { name: "x".into() }, &[1, 2, 4, 4]);
        let w = param(&mut g, "w", &[3, 2, 1, 1]);
        let b = param(&mut g, "b", &[3]);
        let conv = Op::Conv2d(Conv2d {
            stride: 1,
            pad: 0,
            bias: true,
            groups: 1,
        });
        let y = g.push("y", conv, vec![x, w, b]).unwrap();
        let z = after_conv(&mut g, y);
        let mean = Op::Reduce(Reduce {
            kind: ReduceKind::Mean,
            axes: vec![],
        });
        let loss = g.push("loss", mean, vec![z]).unwrap();
        (g, loss, b, w)
    }

    fn norm(g: &mut Graph, y: NodeId) -> NodeId {
        g.push("n", Op::InstanceNorm(InstanceNorm { eps: 1e-5 }), vec![y])
            .unwrap()
    }

    #[test]
    fn a_bias_before_an_instance_norm_changes_nothing_after_it() {
        let (g, loss, b, w) = net(norm);
        assert!(independent_of(&g, loss, b));
        assert!(!independent_of(&g, loss, w));
        assert_eq!(dependent(&g, loss, &[b, w]), vec![w]);
    }

    #[test]
    fn nor_through_a_mean_subtracted_by_hand() {
        let (g, loss, b, _) = net(|g, y| {
            let m = Op::Reduce(Reduce {
                kind: ReduceKind::Mean,
                axes: vec![2, 3],
            });
            let m = g.push("m", m, vec![y]).unwrap();
            let c = g.push("c", Op::Binary(Binary::Sub), vec![y, m]).unwrap();
            g.push("sq", Op::Unary(Unary::Square), vec![c]).unwrap()
        });
        assert!(independent_of(&g, loss, b));
    }

    #[test]
    fn an_activation_before_the_norm_or_a_sum_in_place_of_the_mean_keeps_the_bias() {
        let (g, loss, b, _) = net(|g, y| {
            let r = g.push("r", Op::Unary(Unary::Relu), vec![y]).unwrap();
            norm(g, r)
        });
        assert!(!independent_of(&g, loss, b));
        let (g, loss, b, _) = net(|g, y| {
            let s = Op::Reduce(Reduce {
                kind: ReduceKind::Sum,
                axes: vec![2, 3],
            });
            let s = g.push("s", s, vec![y]).unwrap();
            g.push("c", Op::Binary(Binary::Sub), vec![y, s]).unwrap()
        });
        assert!(!independent_of(&g, loss, b));
        // The conv's output read by the norm and by something else.
        let (g, loss, b, _) = net(|g, y| {
            let n = norm(g, y);
            g.push("a", Op::Binary(Binary::Add), vec![n, y]).unwrap()
        });
        assert!(!independent_of(&g, loss, b));
    }
}
