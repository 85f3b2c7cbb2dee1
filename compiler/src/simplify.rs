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
    let mut new_id = vec![usize::MAX; n];
    let mut out = Graph {
        name: graph.name.clone(),
        ..Graph::default()
    };
    for (i, node) in graph.nodes.iter().enumerate() {
        if needed[i] && rep[i] == i {
            let mut node = node.clone();
            node.inputs.iter_mut().for_each(|j| *j = new_id[rep[*j]]);
            new_id[i] = out.nodes.len();
            out.nodes.push(node);
        }
    }
    out.outputs = graph
        .outputs
        .iter()
        .map(|(name, o)| (name.clone(), new_id[rep[*o]]))
        .collect();
    out
}
