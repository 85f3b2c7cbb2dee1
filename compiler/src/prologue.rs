//! Work that gives the same result every run, done once: the values that depend only on
//! parameters the caller promises not to change between runs (`Options::frozen`, e.g. a frozen
//! VGG19 of a perceptual loss) and on constants, such as their Winograd weight transforms.
//! Their kernels move to the front of the plan (`Plan::prologue`), the runtime runs them on the
//! first run only, and what later kernels read of theirs lives for the whole plan, so no other
//! value, fed or computed, ever shares its bytes (`verify/`, (h)).
//!
//! The same reordering splits a plan in two phases (`Options::late`, `Plan::split`): the kernels
//! that read no late source, directly or through other values, run first, so a caller can run
//! them, change the late sources (a critic's parameters, updated by other plans), then run the
//! rest. A training step's generator loss computes G(blurred) in its first phase, before the
//! critic's updates that its second phase then sees.

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

/// Which nodes depend on none of the sources named in `late` (inputs by their names,
/// parameters by their node names).
pub fn independent_of(graph: &Graph, late: &BTreeSet<String>) -> Vec<bool> {
    let mut early = vec![false; graph.nodes.len()];
    for (v, node) in graph.nodes.iter().enumerate() {
        early[v] = match &node.op {
            Op::Param { .. } => !late.contains(&node.name),
            Op::Input { name } => !late.contains(name),
            Op::Const(_) => true,
            _ => node.inputs.iter().all(|&i| early[i]),
        };
    }
    early
}

/// What [`hoist`] does with the steps that write into a concat region (members share its
/// bytes): `Stay` keeps them in place (a prologue's values must keep their bytes, and a region
/// lives as one); `Together` moves them when every value of the region moves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Regions {
    Stay,
    Together,
}

/// The steps reordered with the ones whose nodes are all `chosen` first (in their order), and
/// how many those are. A step moves when every node its kernel carries out is chosen and every
/// value it reads from memory is fed or written by a step that moves; `regions` says what to do
/// with concat regions.
pub fn hoist(
    graph: &Graph,
    steps: Vec<NodeId>,
    fusion: &Fusion,
    slices: &[Option<(NodeId, usize)>],
    (chosen, regions): (&[bool], Regions),
) -> (Vec<NodeId>, usize) {
    if !chosen.iter().any(|&i| i) {
        return (steps, 0);
    }
    let at = carried_at(graph, &steps, fusion);
    let mut carried: Vec<Vec<NodeId>> = vec![Vec::new(); steps.len()];
    for (v, ss) in at.iter().enumerate() {
        ss.iter().for_each(|&s| carried[s].push(v));
    }
    let root = |mut v: NodeId| {
        while let Some((r, _)) = slices[v] {
            v = r;
        }
        v
    };
    let mut region_chosen = vec![true; graph.nodes.len()];
    let mut in_region = vec![false; graph.nodes.len()];
    for v in (0..graph.nodes.len()).filter(|&v| slices[v].is_some()) {
        let r = root(v);
        (in_region[v], in_region[r]) = (true, true);
        region_chosen[r] &= chosen[v] && chosen[r];
    }
    let region_ok = |v: NodeId| match regions {
        Regions::Stay => !in_region[v],
        Regions::Together => !in_region[v] || region_chosen[root(v)],
    };
    let mut once = vec![false; steps.len()];
    for s in 0..steps.len() {
        let nodes = &carried[s];
        let reads_ok = |i: NodeId| nodes.contains(&i) || moved(graph, &at, &once, s, i);
        let ok = !nodes.is_empty()
            && nodes.iter().all(|&v| chosen[v] && region_ok(v))
            && (nodes.iter()).all(|&v| graph.nodes[v].inputs.iter().all(|&i| reads_ok(i)));
        once[s] = ok;
    }
    let count = once.iter().filter(|&&o| o).count();
    let (first, rest): (Vec<_>, Vec<_>) = steps.iter().enumerate().partition(|(s, _)| once[*s]);
    let order = first.into_iter().chain(rest).map(|(_, &v)| v).collect();
    (order, count)
}

/// Whether value `v` is ready before step `s` when only the steps marked in `once` (so far) run
/// there: fed, or written by such a step before `s`, or assembled in place (a concat, a view: no
/// step of its own) from such values.
fn moved(graph: &Graph, at: &[Vec<usize>], once: &[bool], s: usize, v: NodeId) -> bool {
    if graph.kind(v) != ir::ValueKind::Computed {
        return true;
    }
    match at[v].is_empty() {
        true => (graph.nodes[v].inputs.iter()).all(|&i| moved(graph, at, once, s, i)),
        false => at[v].iter().all(|&w| w < s && once[w]),
    }
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
