//! Independent kernels as one dispatch. A small kernel costs its dispatch more than its work:
//! lavapipe hands every dispatch to its thread pool and back, and a GPU idles between small
//! launches (`runtime/examples/dispatch_floor.rs` measures it; figures in benches/README.md).
//! Kernels that neither read what another writes nor write what another reads or writes can
//! run as one dispatch whose workgroups each run one of them.
//!
//! Two halves. [`group`] picks the steps that may run together from the dataflow, before
//! memory is planned, so that the planner keeps a group's values apart as if the group were one
//! step ([`grouped_at`]). [`merge_kernels`] then joins the kernels a
//! group generated where their WGSL allows (`wgsl.rs`).

mod wgsl;

use crate::fuse::{carried_at, Fusion};
use crate::{Kernel, Target};
use ir::{shape4, Graph, NodeId};

/// How many steps ahead of a group's first one [`group`] looks for steps to join it: enough for
/// the branches of an inception block, few enough that values do not live much longer.
pub const WINDOW: usize = 16;

/// The most work (FLOPs, plus one per element written) of a step that [`group`] groups. A larger
/// one runs alone: its dispatch is under a tenth of its time on lavapipe (40 us, against 400 us
/// at 10 GFLOP/s), while merging would compile its code again into new modules and keep values
/// alive longer. Kernels taking sizes as data are grouped whatever their work, so that their
/// WGSL stays the same at every size.
pub const MAX_WORK: u64 = 4_000_000;

/// Steps in the order they run, and the group (one unit of the memory plan's time) of each.
pub struct Groups {
    pub steps: Vec<NodeId>,
    pub time: Vec<usize>,
}

impl Groups {
    /// One group a step: nothing merged.
    pub fn single(steps: Vec<NodeId>) -> Groups {
        let time = (0..steps.len()).collect();
        Groups { steps, time }
    }

    /// Groups in all.
    pub fn count(&self) -> usize {
        self.time.last().map_or(0, |t| t + 1)
    }

    /// Groups that run before step `n` (`n` a boundary no group crosses).
    pub fn before(&self, n: usize) -> usize {
        match n {
            0 => 0,
            _ => self.time[n - 1] + 1,
        }
    }
}

/// For every node, the groups ([`Groups`]) whose kernels carry it out: lifetimes counted
/// in groups keep apart the values of kernels that run as one dispatch.
pub fn grouped_at(
    graph: &Graph,
    steps: &[NodeId],
    fusion: &Fusion,
    groups: &Groups,
) -> Vec<Vec<usize>> {
    let mut at = carried_at(graph, steps, fusion);
    for a in &mut at {
        for s in a.iter_mut() {
            *s = groups.time[*s];
        }
        a.dedup();
    }
    at
}

/// Bytes a step touches: the channels `c0..c1` of a value's region (its outermost concat, or
/// itself), as `memory` places values.
type Region = (NodeId, usize, usize);

/// Group `steps`: each group starts at the first step not yet placed and takes the steps of the
/// next [`WINDOW`] that conflict with none of its members and with no unplaced step before them;
/// only steps of at most `max_work` are grouped ([`MAX_WORK`]).
/// So a step moves ahead only of steps it does not touch, and the order within a group does not
/// matter. Groups stay inside the segments `bounds` cuts (the prologue, the first phase).
pub fn group(
    graph: &Graph,
    steps: Vec<NodeId>,
    (fusion, slices): (&Fusion, &[Option<(NodeId, usize)>]),
    bounds: &[usize],
    max_work: u64,
) -> Groups {
    let (reads, writes) = touched(graph, &steps, fusion, slices);
    let small = small_steps(graph, &steps, fusion, max_work);
    let conflict = |a: usize, b: usize| {
        overlap(&writes[a], &reads[b])
            || overlap(&writes[a], &writes[b])
            || overlap(&reads[a], &writes[b])
    };
    let n = steps.len();
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut time = Vec::with_capacity(n);
    let mut cuts: Vec<usize> = bounds.iter().copied().filter(|&b| b < n).collect();
    cuts.push(n);
    let mut lo = 0;
    for hi in cuts {
        for first in lo..hi {
            if placed[first] {
                continue;
            }
            let mut members = vec![first];
            placed[first] = true;
            let later = (first + 1..hi).filter(|&t| !placed[t]).take(WINDOW);
            for t in later.collect::<Vec<_>>() {
                let blocked = !small[first]
                    || !small[t]
                    || (first..t).any(|u| !placed[u] && conflict(u, t))
                    || members.iter().any(|&m| conflict(m, t));
                if !blocked {
                    members.push(t);
                    placed[t] = true;
                }
            }
            let g = time.last().map_or(0, |t| t + 1);
            for m in members {
                order.push(steps[m]);
                time.push(g);
            }
        }
        lo = hi;
    }
    Groups { steps: order, time }
}

/// The regions each step reads and writes: what the nodes it carries out write, and their
/// inputs with memory that it does not compute itself.
fn touched(
    graph: &Graph,
    steps: &[NodeId],
    fusion: &Fusion,
    slices: &[Option<(NodeId, usize)>],
) -> (Vec<Vec<Region>>, Vec<Vec<Region>>) {
    let roots = crate::memory::resolve_roots(slices);
    let region = |v: NodeId| -> Region {
        let [n, c, h, w] = shape4(&graph.nodes[v].shape);
        match roots[v] {
            Some((r, first)) => match shape4(&graph.nodes[r].shape) {
                [rn, _, rh, rw] if (rn, rh, rw) == (n, h, w) => (r, first, first + c),
                // A view of another shape (a reshape): all of its region.
                _ => (r, 0, usize::MAX),
            },
            None => (v, 0, c),
        }
    };
    let mut carried: Vec<Vec<NodeId>> = vec![Vec::new(); steps.len()];
    for (v, at) in carried_at(graph, steps, fusion).into_iter().enumerate() {
        for s in at {
            carried[s].push(v);
        }
    }
    let reads = (carried.iter())
        .map(|vs| {
            (vs.iter())
                .flat_map(|&v| graph.nodes[v].inputs.iter().copied())
                .filter(|u| !vs.contains(u) && fusion.has_memory(*u))
                .map(region)
                .collect()
        })
        .collect();
    let writes = (carried.iter())
        .map(|vs| {
            (vs.iter().copied())
                .filter(|&v| fusion.has_memory(v))
                .map(region)
                .collect()
        })
        .collect();
    (reads, writes)
}

/// Whether each step's work is at most `max_work`.
fn small_steps(graph: &Graph, steps: &[NodeId], fusion: &Fusion, max_work: u64) -> Vec<bool> {
    if max_work == u64::MAX {
        return vec![true; steps.len()];
    }
    let mut work = vec![0u64; steps.len()];
    for (v, at) in carried_at(graph, steps, fusion).into_iter().enumerate() {
        let node = &graph.nodes[v];
        let w = crate::cost::node_flops(graph, node) + ir::numel(&node.shape) as u64;
        for s in at {
            work[s] += w;
        }
    }
    work.into_iter().map(|w| w <= max_work).collect()
}

fn overlap(a: &[Region], b: &[Region]) -> bool {
    (a.iter()).any(|x| (b.iter()).any(|y| x.0 == y.0 && x.1 < y.2 && y.1 < x.2))
}

/// Join the kernels of each group into as few as their WGSL allows. `step[k]` and `time[k]`
/// are kernel `k`'s step and group; a group's kernels are consecutive. Each kernel joins the
/// first merged kernel of its group it can (within the device's bindings and workgroups) after
/// the last one holding a kernel of its own step: a step's kernels may depend on each other (a
/// reduction's passes), so they stay in order and apart.
pub fn merge_kernels(
    kernels: Vec<Kernel>,
    (step, time): (&[usize], &[usize]),
    target: &Target,
) -> Vec<Kernel> {
    let specialised = target.sizes == crate::Sizes::Specialised;
    let max_workgroups = target.limits.max_workgroups_per_dim;
    let lanes = target.subgroup_size();
    let fits = |k: &Kernel| {
        k.arenas.len() <= target.limits.max_storage_buffers_per_stage as usize
            && k.workgroups[0] <= target.limits.max_workgroups_per_dim
    };
    let mut out: Vec<Kernel> = Vec::with_capacity(kernels.len());
    // The merged kernels of the current group: their index in `out`, parts and the parts' steps.
    let mut open: Vec<(usize, Vec<Kernel>, Vec<usize>)> = Vec::new();
    let mut group = None;
    for ((k, &s), &t) in kernels.into_iter().zip(step).zip(time) {
        if group != Some(t) {
            open.clear();
            group = Some(t);
        }
        let after = (open.iter())
            .rposition(|(_, _, steps)| steps.contains(&s))
            .map_or(0, |i| i + 1);
        let joined = open[after..].iter_mut().find_map(|(slot, parts, steps)| {
            let mut with = parts.clone();
            with.push(k.clone());
            let merged = wgsl::merge(&with, (specialised, max_workgroups), lanes).filter(fits)?;
            Some((*slot, parts, steps, with, merged))
        });
        match joined {
            Some((slot, parts, steps, with, merged)) => {
                *parts = with;
                steps.push(s);
                out[slot] = merged;
            }
            None => {
                open.push((out.len(), vec![k.clone()], vec![s]));
                out.push(k);
            }
        }
    }
    out
}
