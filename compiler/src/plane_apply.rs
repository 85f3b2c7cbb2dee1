//! A plane reduction that computes its reader: an instance norm's statistics and the
//! normalisation (with its activation) after them, a norm gradient's plane means and the input
//! gradient after them. The reduction runs one workgroup per (n, c) plane, and every invocation
//! ends with the plane's results, so the same workgroup can walk the plane again and store the
//! elementwise value that reads them, reading them from a private array instead of memory: one
//! kernel and one dispatch less per norm and pass (`codegen/reduce.rs`). The reduction's kernel
//! moves to the reader's step (`fuse::schedule`); both values keep their memory.

use crate::fuse::Fusion;
use crate::Target;
use ir::{shape4, Graph, NodeId, Op, ValueKind};

/// Per node, the elementwise value its kernel also computes (`Fusion::applies`), for plane
/// reductions over planes of at most `target.policy.plane_apply_pixels` pixels.
pub fn choose(
    graph: &Graph,
    f: &Fusion,
    consumers: &[Vec<NodeId>],
    slices: &[Option<(NodeId, usize)>],
    target: &Target,
) -> Vec<Option<NodeId>> {
    let n = graph.nodes.len();
    let mut output = vec![false; n];
    graph.outputs.iter().for_each(|&(_, o)| output[o] = true);
    let mut stored = vec![false; n];
    f.store_into
        .iter()
        .flatten()
        .for_each(|&e| stored[e] = true);
    let mut applies = vec![None; n];
    let mut taken = vec![false; n];
    for (r, node) in graph.nodes.iter().enumerate() {
        let Some(x) = node.inputs.first().map(|&i| &graph.nodes[i].shape) else {
            continue;
        };
        // Its readers take one plane's results at their own (n, c) (elementwise ops, which
        // broadcast them over the plane): nothing else may read it.
        let per_plane = |u: &NodeId| graph.nodes[*u].op.properties().elementwise;
        let plane_sum = matches!(&node.op, Op::Reduce(r) if r.axes == [2, 3]) && x.len() == 4;
        if !(plane_sum || node.op.properties().reduces_planes) || !f.has_memory(r) {
            continue;
        }
        let [_, _, h, w] = shape4(x);
        if h * w > target.policy.plane_apply_pixels || !consumers[r].iter().all(per_plane) {
            continue;
        }
        // The first kernel to read it (through values computed in loads) is the candidate; every
        // other one comes later, so it finds the results in memory.
        let Some(e) = first_kernel_reading(r, f, consumers) else {
            continue;
        };
        let en = &graph.nodes[e];
        let elementwise = en.op.properties().elementwise;
        let plain = graph.kind(e) == ValueKind::Computed
            && f.has_memory(e)
            && !stored[e]
            // Written into a concat's channels is fine; written over another value is not.
            && slices[e].is_none_or(|(h, _)| matches!(graph.nodes[h].op, Op::Concat(_)))
            && !output[e]
            && !taken[e];
        if elementwise && plain && &en.shape == x {
            applies[r] = Some(e);
            taken[e] = true;
        }
    }
    applies
}

/// The earliest node with a kernel of its own that reads `r`, directly or through values
/// computed in loads.
fn first_kernel_reading(r: NodeId, f: &Fusion, consumers: &[Vec<NodeId>]) -> Option<NodeId> {
    let mut first = None;
    let mut stack = consumers[r].clone();
    while let Some(u) = stack.pop() {
        match f.inlined[u] {
            true => stack.extend(&consumers[u]),
            false => first = Some(first.map_or(u, |v: NodeId| v.min(u))),
        }
    }
    first
}
