//! Simplification of a graph: an inference Dropout (one input, `[x]`) is the identity, so its
//! consumers read its input instead (a training one, `[x, seed]`, stays); nodes that no output
//! depends on are dropped. Graph inputs are kept even when
//! unused, because the user feeds them by name. Node ids change; names do not.

use ir::{Graph, NodeId, Op};

pub fn simplify(graph: &Graph) -> Graph {
    let n = graph.nodes.len();
    // What each node stands for once identities are skipped (inputs precede their consumers).
    let mut rep: Vec<NodeId> = (0..n).collect();
    for (i, node) in graph.nodes.iter().enumerate() {
        if matches!(node.op, Op::Dropout(_)) && node.inputs.len() == 1 {
            rep[i] = rep[node.inputs[0]];
        }
    }
    // Nodes some output depends on, walking back from the outputs through the rewired inputs.
    let mut needed = vec![false; n];
    let mut stack: Vec<NodeId> = graph.outputs.iter().map(|&(_, o)| rep[o]).collect();
    stack.extend(graph.inputs().map(|(i, _)| i));
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut needed[i], true) {
            stack.extend(graph.nodes[i].inputs.iter().map(|&j| rep[j]));
        }
    }
    // An identity stands for what it skips to (an earlier node), so its readers and the
    // outputs are renumbered to that.
    crate::rewrite::rewrite(graph, |out, new_id, i, node| {
        if rep[i] != i {
            new_id[i] = new_id[rep[i]];
        } else if needed[i] {
            new_id[i] = crate::rewrite::push(out, node);
        }
    })
}
