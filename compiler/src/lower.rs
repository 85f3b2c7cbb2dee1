//! Lowering before fusion: `InstanceNorm(x)` becomes `InstanceNormStats(x)` (a small reduction,
//! `<name>.stats`, [N, C, 1, 2]) and `InstanceNormApply(x, stats)` (elementwise, keeping the
//! node's name), so that the normalisation, like any elementwise op, can be computed inside the
//! kernels that read it (`fuse.rs`). Runs after autodiff and recomputation: no VJP needed.

use ir::ops::{InstanceNormApply, InstanceNormStats};
use ir::{Graph, Node, Op};

/// `graph` with every InstanceNorm split in two, and how many were. Node ids change; names of
/// existing nodes and the outputs do not.
pub fn instance_norms(graph: &Graph) -> (Graph, usize) {
    let mut out = Graph {
        name: graph.name.clone(),
        ..Graph::default()
    };
    let mut new_id = vec![usize::MAX; graph.nodes.len()];
    let mut count = 0;
    for (i, node) in graph.nodes.iter().enumerate() {
        let mut node = node.clone();
        node.inputs.iter_mut().for_each(|j| *j = new_id[*j]);
        if let Op::InstanceNorm(o) = &node.op {
            let [n, c, _, _] = ir::shape4(&node.shape);
            out.nodes.push(Node {
                name: format!("{}.stats", node.name),
                op: Op::InstanceNormStats(InstanceNormStats { eps: o.eps }),
                inputs: node.inputs.clone(),
                shape: vec![n, c, 1, 2],
            });
            node.inputs.push(out.nodes.len() - 1);
            node.op = Op::InstanceNormApply(InstanceNormApply);
            count += 1;
        }
        new_id[i] = out.nodes.len();
        out.nodes.push(node);
    }
    out.outputs = (graph.outputs.iter())
        .map(|(name, o)| (name.clone(), new_id[*o]))
        .collect();
    (out, count)
}
