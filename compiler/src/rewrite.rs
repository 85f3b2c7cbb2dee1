//! The skeleton every graph-to-graph pass shares: copy the nodes in order into a new graph,
//! each with its inputs renumbered, letting the pass replace a node with nodes of its own.

use ir::{Graph, Node, NodeId};

/// `graph` rewritten node by node. `each(out, new_id, i, node)` gets node `i` with its inputs
/// already renumbered into `out`, pushes what stands for it and records that in `new_id[i]`
/// (or later, for a node it defers; a pass may also set the id of an earlier node it defers).
/// The outputs are renumbered the same way.
pub fn rewrite(graph: &Graph, each: impl FnMut(&mut Graph, &mut [NodeId], NodeId, Node)) -> Graph {
    rewrite_with_ids(graph, each).0
}

/// [`rewrite`], also returning each old node's new id (`usize::MAX` for a node dropped).
pub fn rewrite_with_ids(
    graph: &Graph,
    mut each: impl FnMut(&mut Graph, &mut [NodeId], NodeId, Node),
) -> (Graph, Vec<NodeId>) {
    let mut out = Graph {
        name: graph.name.clone(),
        ..Graph::default()
    };
    let mut new_id = vec![usize::MAX; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        let mut node = node.clone();
        node.inputs.iter_mut().for_each(|j| *j = new_id[*j]);
        each(&mut out, &mut new_id, i, node);
    }
    out.outputs = (graph.outputs.iter())
        .map(|(name, o)| (name.clone(), new_id[*o]))
        .collect();
    (out, new_id)
}

/// Push `node` onto `g`; its id.
pub fn push(g: &mut Graph, node: Node) -> NodeId {
    g.nodes.push(node);
    g.nodes.len() - 1
}
