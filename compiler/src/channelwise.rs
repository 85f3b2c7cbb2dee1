//! Channel-wise ops split over a channel concat. An instance norm (per sample and channel, no
//! affine) and a unary elementwise op act on each channel alone, so
//! `op(concat(a, b)) = concat(op(a), op(b))`. Where `op(a)` is already in the graph the split
//! reuses it and computes `op(b)` alone. A dense chain (IRD-GAN's blocks: block k normalises
//! `x_k = concat(x_{k-1}, y_{k-1})`, all the features before it) then normalises each block's
//! new channels once, into a growing concat of their own (planned as one region, as the raw
//! chain is), instead of all of `x_k` again in every block: the generator's nine blocks
//! normalised 72 N channels, now 12 N (4 N in the first block, N in each of the others).
//!
//! Only for forward graphs (a backward part still reads the unsplit nodes) on targets that write
//! a norm and its activation out anyway (see `compile_with`).

use crate::rewrite::push;
use ir::ops::Concat;
use ir::{Graph, Node, NodeId, Op};

/// `graph` with every channel-wise op over a concat split where that reuses a part, and how
/// many were. The split op's node becomes the concat of the parts, keeping its name; a part
/// computed anew is named `<name>.part<t>`. Node ids change; outputs do not.
pub fn split_over_concats(graph: &Graph) -> (Graph, usize) {
    // (op, input, node computing op(input)), in the new graph's ids.
    let mut computed: Vec<(Op, NodeId, NodeId)> = Vec::new();
    let find = |computed: &[(Op, NodeId, NodeId)], op: &Op, x: NodeId| {
        (computed.iter())
            .find(|(o, i, _)| o == op && *i == x)
            .map(|&(_, _, id)| id)
    };
    let mut count = 0;
    let out = crate::rewrite::rewrite(graph, |out, new_id, i, node| {
        if !channelwise(&node.op) || node.inputs.len() != 1 {
            new_id[i] = push(out, node);
            return;
        }
        let x = node.inputs[0];
        let parts = match &out.nodes[x].op {
            Op::Concat(_) => out.nodes[x].inputs.clone(),
            _ => vec![],
        };
        let reuses = parts
            .iter()
            .any(|&p| find(&computed, &node.op, p).is_some());
        let id = match reuses {
            false => push(out, node.clone()),
            true => {
                let mut inputs = Vec::new();
                for (t, &p) in parts.iter().enumerate() {
                    let id = match find(&computed, &node.op, p) {
                        Some(id) => id,
                        None => {
                            let part = Node {
                                name: format!("{}.part{t}", node.name),
                                op: node.op.clone(),
                                inputs: vec![p],
                                shape: out.nodes[p].shape.clone(),
                            };
                            let id = push(out, part);
                            computed.push((node.op.clone(), p, id));
                            id
                        }
                    };
                    inputs.push(id);
                }
                count += 1;
                let concat = Node {
                    op: Op::Concat(Concat {}),
                    inputs,
                    ..node.clone()
                };
                push(out, concat)
            }
        };
        computed.push((node.op, x, id));
        new_id[i] = id;
    });
    (out, count)
}

/// Ops whose every output channel depends on that channel of their one input alone.
fn channelwise(op: &Op) -> bool {
    op.properties().channelwise
}
