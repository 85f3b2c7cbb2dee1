//! Work that gives the same result every run, done once: the values that depend only on
//! parameters the caller promises not to change between runs (`Options::frozen`, e.g. a frozen
//! VGG19 of a perceptual loss) and on constants, such as their Winograd weight transforms.
//! Their kernels move to the front of the plan (`Plan::prologue`), the runtime runs them on the
//! first run only, and what later kernels read of theirs lives for the whole plan, so no other
//! value, fed or computed, ever shares its bytes (`verify.rs`, (h)).

use crate::fuse::{carried_at, Fusion};
use ir::{Graph, NodeId, Op};
use std::collections::BTreeSet;

/// Which nodes are the same on every run: frozen parameters, constants, and what is computed
/// from those alone. Every op is a pure function of its inputs (a dropout's seed is an input).
pub fn invariant(graph: &Graph, frozen: &BTreeSet<String>) -> Vec<bool> {
    let mut same = vec![false; graph.nodes.len()];
    for (v, node) in graph.nodes.iter().enumerate() {
        same[v] = match &node.op {
            Op::Param { .. } => frozen.contains(&node.name),
            Op::Const(_) => true,
            Op::Input { .. } => false,
            _ => node.inputs.iter().all(|&i| same[i]),
        };
    }
    same
}

/// The steps reordered with the ones that can run once first, and how many those are. A step
/// runs once when every node its kernel carries out is invariant and every value it reads from
/// memory is fed or written by such a step; the steps that write a concat's members stay (the
/// region's bytes are shared with later writers).
pub fn hoist(
    graph: &Graph,
    steps: Vec<NodeId>,
    fusion: &Fusion,
    slices: &[Option<(NodeId, usize)>],
    invariant: &[bool],
) -> (Vec<NodeId>, usize) {
    if !invariant.iter().any(|&i| i) {
        return (steps, 0);
    }
    let at = carried_at(graph, &steps, fusion);
    let mut carried: Vec<Vec<NodeId>> = vec![Vec::new(); steps.len()];
    for (v, ss) in at.iter().enumerate() {
        ss.iter().for_each(|&s| carried[s].push(v));
    }
    let in_region = |v: NodeId| slices[v].is_some() || slices.iter().flatten().any(|s| s.0 == v);
    let mut once = vec![false; steps.len()];
    for s in 0..steps.len() {
        let nodes = &carried[s];
        let reads_ok = |i: NodeId| {
            graph.kind(i) != ir::ValueKind::Computed
                || nodes.contains(&i)
                || (!at[i].is_empty() && at[i].iter().all(|&w| w < s && once[w]))
        };
        once[s] = !nodes.is_empty()
            && nodes.iter().all(|&v| invariant[v] && !in_region(v))
            && (nodes.iter()).all(|&v| graph.nodes[v].inputs.iter().all(|&i| reads_ok(i)));
    }
    let count = once.iter().filter(|&&o| o).count();
    let (first, rest): (Vec<_>, Vec<_>) = steps.iter().enumerate().partition(|(s, _)| once[*s]);
    let order = first.into_iter().chain(rest).map(|(_, &v)| v).collect();
    (order, count)
}

/// The values the first `once` steps write that a later step reads (or the graph outputs):
/// they must keep their bytes from one run to the next.
pub fn persistent(graph: &Graph, steps: &[NodeId], once: usize, fusion: &Fusion) -> Vec<bool> {
    let n = graph.nodes.len();
    let mut keep = vec![false; n];
    if once == 0 {
        return keep;
    }
    let at = carried_at(graph, steps, fusion);
    let early = |v: NodeId| !at[v].is_empty() && at[v].iter().all(|&s| s < once);
    let consumers = graph.consumers();
    for v in 0..n {
        if graph.kind(v) != ir::ValueKind::Computed || !fusion.has_memory(v) || !early(v) {
            continue;
        }
        let read_later = consumers[v]
            .iter()
            .any(|&u| at[u].iter().any(|&s| s >= once));
        keep[v] = read_later || graph.outputs.iter().any(|&(_, o)| o == v);
    }
    keep
}
