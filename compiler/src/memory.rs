//! Memory planning (docs/design.md, "Memory"): every value gets a lifetime in steps of the schedule,
//! and values are packed into a few arenas, each at most one storage binding, so that values
//! whose lifetimes do not overlap share bytes. Values larger than one binding are split by
//! channels. A Concat's inputs are written straight into channel slices of the concat's value
//! (the dense-concat region), nested concats resolving to their outermost region.
//!
//! In a backward pass the same holds in reverse ([`in_place`]): a ChannelSlice is a view of its
//! input's channels, and an Add into such a view that nothing else reads accumulates in place, so
//! the gradient of a dense-concat region is one region too, sliced and summed without copies.

use crate::fuse::Fusion;
use crate::{Arena, CompileError, ConcatRegion, Kernel, MemoryPlan, Piece, Target, ValuePlan};
use ir::ops::{Binary, ChannelSlice};
use ir::{numel, shape4, Graph, NodeId, Op, ValueKind};

/// Bytes per element: every value is f32.
const F32: u64 = 4;

/// For each node, the Concat that holds it in place and the channel it starts at there (the direct
/// concat, not yet the outermost region). A Concat input is taken in place when it is computed by
/// a kernel (a source is fed as is, so it is copied) and is not already a slice: the first Concat
/// (in node order) to read a value gets it, a later one, or a second read by the same, copies it.
pub fn concat_slices(graph: &Graph) -> Vec<Option<(NodeId, usize)>> {
    let mut slot = vec![None; graph.nodes.len()];
    for (c, node) in graph.nodes.iter().enumerate() {
        if !matches!(node.op, Op::Concat(_)) {
            continue;
        }
        let mut ch = 0;
        for &i in &node.inputs {
            if graph.kind(i) == ValueKind::Computed && slot[i].is_none() {
                slot[i] = Some((c, ch));
            }
            ch += shape4(&graph.nodes[i].shape)[1];
        }
    }
    slot
}

/// Every value held in place in another: (holder, first channel there). The concat inputs of
/// [`concat_slices`] first, then, in node order:
/// - a ChannelSlice of a computed value is a view of its input at channel c0 (values are written
///   once, so a view stays valid as long as its input's bytes do, which the region's lifetime
///   ensures);
/// - `Add(a, b)` with `a` a view that only this Add reads, of a value `x` that is *private* (not
///   an output, read only through ChannelSlices of pairwise disjoint channels, and itself either a
///   value of its own or such an accumulation), writes its sum into `a`'s bytes: no other value
///   holds `a`'s content, so overwriting it is safe. Then the sum is private in turn, which
///   chains the accumulation through the 9 dense blocks' backward. `b` must lie elsewhere.
///
/// A concat placement wins over both (a value sits in one place).
pub fn in_place(graph: &Graph) -> Vec<Option<(NodeId, usize)>> {
    let mut slot = concat_slices(graph);
    let consumers = graph.consumers();
    let mut output = vec![false; graph.nodes.len()];
    graph.outputs.iter().for_each(|&(_, o)| output[o] = true);
    let mut accumulated = vec![false; graph.nodes.len()];
    let root = |slot: &[Option<(NodeId, usize)>], mut v: NodeId| {
        while let Some((r, _)) = slot[v] {
            v = r;
        }
        v
    };
    let range = |u: NodeId| match graph.nodes[u].op {
        Op::ChannelSlice(ChannelSlice { c0, c1 }) => Some((c0, c1)),
        _ => None,
    };
    for (v, node) in graph.nodes.iter().enumerate() {
        if slot[v].is_some() || graph.kind(v) != ValueKind::Computed {
            continue;
        }
        match node.op {
            Op::ChannelSlice(ChannelSlice { c0, .. })
                if graph.kind(node.inputs[0]) == ValueKind::Computed =>
            {
                slot[v] = Some((node.inputs[0], c0));
            }
            Op::Binary(Binary::Add) => {
                let private = |x: NodeId, slot: &[Option<(NodeId, usize)>]| {
                    let mut ranges: Vec<Option<(usize, usize)>> =
                        consumers[x].iter().map(|&u| range(u)).collect();
                    ranges.sort();
                    !output[x]
                        && (accumulated[x]
                            || (slot[x].is_none() && !matches!(graph.nodes[x].op, Op::Concat(_))))
                        && ranges.iter().all(Option::is_some)
                        && ranges
                            .windows(2)
                            .all(|w| w[0].unwrap().1 <= w[1].unwrap().0)
                };
                let fits = |a: NodeId, b: NodeId, slot: &[Option<(NodeId, usize)>]| {
                    a != b
                        && range(a).is_some()
                        && slot[a].is_some_and(|(x, _)| private(x, slot))
                        && consumers[a] == [v]
                        && !output[a]
                        && graph.nodes[a].shape == node.shape
                        && root(slot, a) != root(slot, b)
                };
                let (a, b) = (node.inputs[0], node.inputs[1]);
                let operand = [(a, b), (b, a)]
                    .into_iter()
                    .find(|&(a, b)| fits(a, b, &slot))
                    .map(|(a, _)| a);
                if let Some(a) = operand {
                    slot[v] = Some((a, 0));
                    accumulated[v] = true;
                }
            }
            _ => {}
        }
    }
    slot
}

/// Follow direct slices to the outermost region: (root, first channel in the root).
pub(crate) fn resolve_roots(slices: &[Option<(NodeId, usize)>]) -> Vec<Option<(NodeId, usize)>> {
    (0..slices.len())
        .map(|v| {
            let mut at = slices[v]?;
            while let Some((outer, ch)) = slices[at.0] {
                at = (outer, at.1 + ch);
            }
            Some(at)
        })
        .collect()
}

/// Inclusive step intervals overlap.
fn overlap(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Lifetimes in steps: first write .. last read. Sources live for the whole program, outputs to
/// its end; a value holding others in place lives as long as the union of theirs and its own.
/// `at[v]`: the steps whose kernels carry out node v (`fuse::carried_at`): a value is written at
/// the first of its own and read at those of its consumers (an inlined consumer's readers).
fn lifetimes(
    graph: &Graph,
    at: &[Vec<usize>],
    steps: usize,
    slices: &[Option<(NodeId, usize)>],
) -> Vec<(usize, usize)> {
    let n = graph.nodes.len();
    let end = steps.saturating_sub(1);
    let consumers = graph.consumers();
    let mut live = vec![(0, end); n];
    for v in 0..n {
        if graph.kind(v) != ValueKind::Computed {
            continue;
        }
        let first = at[v].iter().copied().min().unwrap_or(usize::MAX);
        let last = consumers[v]
            .iter()
            .flat_map(|&u| &at[u])
            .chain(&at[v])
            .copied()
            .max()
            .unwrap_or(0);
        let mut l = (first, last);
        for &i in &graph.nodes[v].inputs {
            if slices[i].is_some_and(|(c, _)| c == v) {
                l = (l.0.min(live[i].0), l.1.max(live[i].1));
            }
        }
        live[v] = (l.0.min(l.1), l.1);
    }
    for &(_, o) in &graph.outputs {
        live[o].1 = end;
    }
    // A member's lifetime counts for its region (the union above already covers nesting for
    // concats; outputs extended afterwards must reach their region too).
    let roots = resolve_roots(slices);
    for v in 0..n {
        if let Some((r, _)) = roots[v] {
            live[r] = (live[r].0.min(live[v].0), live[r].1.max(live[v].1));
        }
    }
    live
}

/// Split a value of rank-4 shape `[n, c, h, w]` by channels into contiguous pieces that each fit
/// one binding; `(c0, c1)` ranges, balanced.
fn split(
    name: &str,
    shape: &[usize],
    target: &Target,
    align: u64,
) -> Result<Vec<(usize, usize)>, CompileError> {
    let [n, c, h, w] = shape4(shape);
    let max = target.limits.max_binding_bytes;
    if align_up(numel(shape) as u64 * F32, align) <= max {
        return Ok(vec![(0, c)]);
    }
    let per_channel = (n * h * w) as u64 * F32;
    let mut cap = max / per_channel;
    while cap > 0 && align_up(cap * per_channel, align) > max {
        cap -= 1;
    }
    if cap == 0 {
        return Err(CompileError::Memory(format!(
            "value `{name}` {shape:?}: one channel takes {} but one binding holds at most {}",
            crate::print::bytes(per_channel),
            crate::print::bytes(max)
        )));
    }
    let k = c.div_ceil(cap as usize);
    Ok((0..k).map(|i| (c * i / k, c * (i + 1) / k)).collect())
}

/// A block to place: one piece of a value that is not a slice of another.
struct Block {
    value: NodeId,
    c: (usize, usize),
    bytes: u64,
    live: (usize, usize),
}

/// Greedy offset assignment: largest first, each at the lowest aligned offset of the first arena
/// where it collides with no placed block whose lifetime overlaps its own. Returns (arena, byte
/// offset) per block and the arenas' sizes.
fn pack(blocks: &[Block], target: &Target, align: u64) -> (Vec<(usize, u64)>, Vec<u64>) {
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    order.sort_by_key(|&b| {
        (
            std::cmp::Reverse(blocks[b].bytes),
            blocks[b].live.0,
            blocks[b].value,
            blocks[b].c.0,
        )
    });
    // Per arena, the blocks placed: (first byte, end byte, lifetime).
    type Placed = (u64, u64, (usize, usize));
    let mut placed: Vec<Vec<Placed>> = Vec::new();
    let mut at = vec![(0, 0); blocks.len()];
    for b in order {
        let blk = &blocks[b];
        let fit = |arena: &Vec<Placed>| {
            let mut busy: Vec<(u64, u64)> = arena
                .iter()
                .filter(|p| overlap(p.2, blk.live))
                .map(|p| (p.0, p.1))
                .collect();
            busy.sort();
            let mut off = 0;
            for (lo, hi) in busy {
                if off + blk.bytes <= lo {
                    break;
                }
                off = off.max(align_up(hi, align));
            }
            (off + blk.bytes <= target.limits.max_binding_bytes).then_some(off)
        };
        let (a, off) = match placed
            .iter()
            .enumerate()
            .find_map(|(a, arena)| fit(arena).map(|o| (a, o)))
        {
            Some(found) => found,
            None => {
                placed.push(Vec::new());
                (placed.len() - 1, 0)
            }
        };
        placed[a].push((off, off + blk.bytes, blk.live));
        at[b] = (a, off);
    }
    let sizes = placed
        .iter()
        .map(|arena| arena.iter().map(|p| p.1).max().unwrap_or(0))
        .collect();
    (at, sizes)
}

/// The root values' pieces to place, with their lifetimes.
fn blocks(
    graph: &Graph,
    roots: &[Option<(NodeId, usize)>],
    live: &[(usize, usize)],
    fusion: &Fusion,
    target: &Target,
    align: u64,
) -> Result<Vec<Block>, CompileError> {
    let mut blocks = Vec::new();
    for (v, node) in graph.nodes.iter().enumerate() {
        if roots[v].is_none() && fusion.has_memory(v) {
            let [n, _, h, w] = shape4(&node.shape);
            for c in split(&node.name, &node.shape, target, align)? {
                let bytes = align_up(((n * (c.1 - c.0) * h * w) as u64 * F32).max(1), align);
                blocks.push(Block {
                    value: v,
                    c,
                    bytes,
                    live: live[v],
                });
            }
        }
    }
    Ok(blocks)
}

/// The peak bytes [`plan_memory`] would allocate, with the values marked in `keep` alive to the
/// end of the program (the bytes of "every forward value kept" when `keep` marks the forward
/// values; nothing kept gives the planned peak). Planning is cheap: the recompute pass compares.
pub fn peak_bytes(
    graph: &Graph,
    steps: &[NodeId],
    slices: &[Option<(NodeId, usize)>],
    target: &Target,
    keep: &[bool],
) -> Result<u64, CompileError> {
    let align = target.limits.storage_alignment.max(F32);
    let none = Fusion::none(graph);
    let at = crate::fuse::carried_at(graph, steps, &none);
    let mut live = lifetimes(graph, &at, steps.len(), slices);
    let roots = resolve_roots(slices);
    let end = steps.len().saturating_sub(1);
    for v in (0..graph.nodes.len()).filter(|&v| keep.get(v) == Some(&true)) {
        let r = roots[v].map_or(v, |(r, _)| r);
        live[r].1 = end;
    }
    let blocks = blocks(graph, &roots, &live, &none, target, align)?;
    Ok(pack(&blocks, target, align).1.iter().sum())
}

/// Plan where every value of `graph` lives, given the schedule `steps` and the values held in
/// place `slices` (from [`in_place`], or [`concat_slices`] for concats only). `live` is in steps here; see [`retime`].
pub fn plan_memory(
    graph: &Graph,
    steps: &[NodeId],
    slices: &[Option<(NodeId, usize)>],
    target: &Target,
) -> Result<(Vec<ValuePlan>, MemoryPlan), CompileError> {
    let groups = crate::merge::Groups::single(steps.to_vec());
    plan_fused_memory(
        graph,
        steps,
        slices,
        &Fusion::none(graph),
        target,
        &[],
        &groups,
    )
}

/// [`plan_memory`] for a fused graph: `steps` as `fuse::schedule` gives them, and values without
/// memory of their own (inlined, stored through) get no pieces. Read [`ValuePlan::fused`] after
/// `fuse::describe`. Values marked `persistent` (`prologue.rs`) live from the first step to the
/// last, so no other value shares their bytes and they keep them from one run to the next.
pub fn plan_fused_memory(
    graph: &Graph,
    steps: &[NodeId],
    slices: &[Option<(NodeId, usize)>],
    fusion: &Fusion,
    target: &Target,
    persistent: &[bool],
    groups: &crate::merge::Groups,
) -> Result<(Vec<ValuePlan>, MemoryPlan), CompileError> {
    let align = target.limits.storage_alignment.max(F32);
    let at = crate::merge::grouped_at(graph, steps, fusion, groups);
    let mut live = lifetimes(graph, &at, groups.count(), slices);
    let end = groups.count().saturating_sub(1);
    for (v, _) in persistent.iter().enumerate().filter(|(_, &p)| p) {
        live[v] = (0, end);
    }
    let roots = resolve_roots(slices);
    let blocks = blocks(graph, &roots, &live, fusion, target, align)?;
    let (at, arena_bytes) = pack(&blocks, target, align);
    let mut pieces: Vec<Vec<Piece>> = vec![Vec::new(); graph.nodes.len()];
    for (blk, &(arena, off)) in blocks.iter().zip(&at) {
        let [_, _, h, w] = shape4(&graph.nodes[blk.value].shape);
        let hw = (h * w) as u64;
        let strides = [(blk.c.1 - blk.c.0) as u64 * hw, hw, w as u64, 1];
        pieces[blk.value].push(Piece {
            arena,
            c0: blk.c.0,
            c1: blk.c.1,
            offset: off / F32,
            strides,
        });
    }
    // A slice's pieces are its region's, restricted to its channels (with the region's strides).
    for v in 0..graph.nodes.len() {
        if let Some((r, first)) = roots[v] {
            let c = shape4(&graph.nodes[v].shape)[1];
            pieces[v] = pieces[r]
                .iter()
                .filter(|p| p.c0 < first + c && first < p.c1)
                .map(|p| {
                    let (c0, c1) = (p.c0.max(first), p.c1.min(first + c));
                    Piece {
                        c0: c0 - first,
                        c1: c1 - first,
                        offset: p.offset + (c0 - p.c0) as u64 * p.strides[1],
                        ..p.clone()
                    }
                })
                .collect();
        }
    }
    let values: Vec<ValuePlan> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(v, node)| ValuePlan {
            node: v,
            name: node.name.clone(),
            shape: node.shape.clone(),
            kind: graph.kind(v),
            pieces: std::mem::take(&mut pieces[v]),
            live: live[v],
            slice_of: roots[v],
            fused: None,
        })
        .collect();
    let mut regions: Vec<ConcatRegion> = Vec::new();
    for (v, root) in roots.iter().enumerate() {
        if let Some((r, first)) = *root {
            let c = shape4(&graph.nodes[v].shape)[1];
            match regions.iter_mut().find(|g| g.value == r) {
                Some(g) => g.slices.push((v, first, c)),
                None => regions.push(ConcatRegion {
                    value: r,
                    name: graph.nodes[r].name.clone(),
                    channels: shape4(&graph.nodes[r].shape)[1],
                    slices: vec![(v, first, c)],
                }),
            }
        }
    }
    regions
        .iter_mut()
        .for_each(|g| g.slices.sort_by_key(|s| (s.1, std::cmp::Reverse(s.2))));
    let memory = MemoryPlan {
        peak_bytes: arena_bytes.iter().sum(),
        naive_bytes: graph
            .nodes
            .iter()
            .map(|n| numel(&n.shape) as u64 * F32)
            .sum(),
        arenas: arena_bytes
            .into_iter()
            .map(|bytes| Arena { bytes })
            .collect(),
        regions,
        recomputed: 0,
        forward_kept_bytes: 0,
    };
    Ok((values, memory))
}

/// Turn lifetimes in schedule steps into lifetimes in kernel indices, once code generation has
/// given each step its kernels. A kernel belongs to the latest step whose node it writes; one that
/// writes no scheduled node (a first pass, say) to the next kernel's step. Steps map to
/// increasing, disjoint kernel ranges, so values disjoint in steps stay disjoint in kernels.
///
/// `at` is where each node is carried out (`fuse::carried_at`), over `steps` steps.
pub fn retime(values: &mut [ValuePlan], at: &[Vec<usize>], steps: usize, kernels: &[Kernel]) {
    let mut ks: Vec<Option<usize>> = kernels
        .iter()
        .map(|k| {
            (k.writes.iter())
                .filter_map(|&w| at.get(w).and_then(|s| s.iter().copied().max()))
                .max()
        })
        .collect();
    for k in (0..ks.len()).rev() {
        if ks[k].is_none() {
            ks[k] = ks.get(k + 1).copied().flatten();
        }
    }
    let fallback = ks.iter().rev().find_map(|s| *s).unwrap_or(0);
    let ks: Vec<usize> = ks.into_iter().map(|s| s.unwrap_or(fallback)).collect();
    let last = kernels.len().saturating_sub(1);
    let first_of = |s: usize| ks.iter().position(|&t| t >= s).unwrap_or(last);
    let last_of = |s: usize| ks.iter().rposition(|&t| t <= s).unwrap_or(0);
    let end = steps.saturating_sub(1);
    for v in values {
        let (a, b) = v.live;
        let a = if a == 0 { 0 } else { first_of(a) };
        let b = if b == end { last } else { last_of(b) };
        v.live = (a, b.max(a));
    }
}
