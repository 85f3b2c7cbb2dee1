//! Scheduling: which nodes need a kernel, in what order.

use ir::{shape4, Graph, NodeId, Op, ValueKind};

/// The computed nodes that need a kernel, in topological order. Sources (Input/Param/Const) are
/// fed, not computed; a Concat whose every input is written in place into its channels (see
/// [`crate::memory::concat_slices`], passed as `slices`) is already assembled and needs none.
pub fn schedule(graph: &Graph, slices: &[Option<(NodeId, usize)>]) -> Vec<NodeId> {
    // Node order is already topological. A smarter order would go here: among ready nodes, pick
    // the one that frees the most bytes (or allocates the fewest) to lower the planned peak, as
    // DenseNet-style graphs with long-lived regions reward.
    (0..graph.nodes.len())
        .filter(|&i| graph.kind(i) == ValueKind::Computed && !assembled(graph, slices, i))
        .collect()
}

/// A Concat whose inputs all sit in place, each at its own channel offset of the concat.
fn assembled(graph: &Graph, slices: &[Option<(NodeId, usize)>], c: NodeId) -> bool {
    let node = &graph.nodes[c];
    if !matches!(node.op, Op::Concat(_)) {
        return false;
    }
    let mut ch = 0;
    node.inputs.iter().all(|&i| {
        let at = ch;
        ch += shape4(&graph.nodes[i].shape)[1];
        slices[i] == Some((c, at))
    })
}
