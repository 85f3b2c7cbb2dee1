//! The plan checker: a proof, independent of the planner's code, that a plan's memory is sound.
//! It reasons in bytes: a piece covers [offset * 4, (offset + extent) * 4) of its arena, where the
//! extent spans its strides. It checks that
//! (a) no two values alive at the same kernel share bytes, unless both belong to one concat
//!     region (then (b) proves they sit exactly at the region's bytes for their channels);
//! (b) every slice aliases its region at the channels the graph's concatenations give it;
//! (c) every value a kernel reads was written by an earlier kernel (or assembled in place from
//!     such), or is fed (Input/Param/Const); every kernel touches values only inside their
//!     lifetimes and binds the arenas they live in; every output is written;
//! (d) pieces cover their value's channels, lie inside their arenas, are aligned when they are
//!     a value's own, and no arena or piece exceeds one binding;
//! (e) inside a region, where values share bytes by design, every read sees the value it means:
//!     walking the kernels in order, each channel of a region holds the content last written
//!     there, and a kernel reading a member must find that member's content (a concat's content
//!     is its inputs', a channel slice no kernel writes is a view of its input's). This is what
//!     makes an in-place write sound: a backward pass accumulates a gradient into a view
//!     (`Add(view, b)` written over the view's bytes) only when nothing later needs the old value;
//! (f) a kernel writing bytes it also reads does so only elementwise, index for index: the value
//!     read and the value written cover the same channels of their region;
//! (g) a value fusion gave no memory (computed in its readers' loads, or stored through its
//!     reader) has no pieces, is no output, and no kernel reads or writes it as memory: its
//!     readers read its materialised inputs instead, which (c) checks like any read;
//! (h) the prologue, run on the first run only, reads no input and writes nothing fed, and what
//!     later kernels read of it lives through the whole plan and is written by no later kernel
//!     (`prologue.rs`);
//! (i) the kernels of a plan's first phase (before `Plan::split`) read none of its late sources;
//! (j) the parts of a merged kernel, which run at once, are independent: no part writes bytes
//!     that another reads or writes (`merged.rs`).

mod merged;
mod prologue;

use crate::Plan;
use ir::ops::ChannelSlice;
use ir::{shape4, Graph, NodeId, Op, ValueKind};

pub fn verify(plan: &Plan, graph: &Graph) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    if plan.values.len() != graph.nodes.len() {
        return Err(vec![format!(
            "plan has {} values for {} graph nodes",
            plan.values.len(),
            graph.nodes.len()
        )]);
    }
    let last = plan.kernels.len().saturating_sub(1);
    let name = |v: NodeId| &graph.nodes[v].name;
    let family = |v: NodeId| plan.values[v].slice_of.map_or(v, |(r, _)| r);

    // (d) pieces, and each value's byte intervals per arena.
    let mut spans: Vec<Vec<(usize, u64, u64)>> = Vec::new();
    for (v, vp) in plan.values.iter().enumerate() {
        if vp.fused.is_some() {
            if !vp.pieces.is_empty() {
                errs.push(format!(
                    "value `{}` is fused, yet has pieces in memory",
                    name(v)
                ));
            }
            spans.push(Vec::new());
            continue;
        }
        let [n, c, h, w] = shape4(&graph.nodes[v].shape);
        let mut next = 0;
        let mut s = Vec::new();
        for p in &vp.pieces {
            if p.c0 != next || p.c1 <= p.c0 {
                errs.push(format!(
                    "value `{}`: piece of channels {}..{} after channel {next}",
                    name(v),
                    p.c0,
                    p.c1
                ));
            }
            next = p.c1;
            let dims = [n, p.c1.saturating_sub(p.c0), h, w];
            let extent = if dims.contains(&0) {
                0
            } else {
                1 + dims
                    .iter()
                    .zip(p.strides)
                    .map(|(&d, s)| (d as u64 - 1) * s)
                    .sum::<u64>()
            };
            let (lo, hi) = (p.offset * 4, (p.offset + extent) * 4);
            let arena = plan.memory.arenas.get(p.arena).map_or(0, |a| a.bytes);
            if hi > arena {
                errs.push(format!(
                    "value `{}`: bytes {lo}..{hi} lie outside arena {} ({arena} bytes)",
                    name(v),
                    p.arena
                ));
            }
            if hi - lo > plan.target.limits.max_binding_bytes {
                errs.push(format!(
                    "value `{}`: a piece of {} bytes exceeds one binding",
                    name(v),
                    hi - lo
                ));
            }
            if vp.slice_of.is_none() {
                let hw = (h * w) as u64;
                if p.strides != [dims[1] as u64 * hw, hw, w as u64, 1]
                    || lo % plan.target.limits.storage_alignment.max(1) != 0
                {
                    errs.push(format!(
                        "value `{}`: a piece is not contiguous and aligned at byte {lo}",
                        name(v)
                    ));
                }
            }
            s.push((p.arena, lo, hi));
        }
        if next != c {
            errs.push(format!(
                "value `{}`: pieces cover channels 0..{next} of {c}",
                name(v)
            ));
        }
        spans.push(s);
    }
    for (i, a) in plan.memory.arenas.iter().enumerate() {
        if a.bytes > plan.target.limits.max_binding_bytes {
            errs.push(format!(
                "arena {i} of {} bytes exceeds one binding",
                a.bytes
            ));
        }
    }

    // Lifetimes that fed values and outputs must have.
    for (v, vp) in plan.values.iter().enumerate() {
        if graph.kind(v) != ValueKind::Computed && vp.live != (0, last) {
            errs.push(format!(
                "fed value `{}` must live 0..{last}, found {}..{}",
                name(v),
                vp.live.0,
                vp.live.1
            ));
        }
    }
    for (out, o) in &graph.outputs {
        if plan.values[*o].fused.is_some() {
            errs.push(format!(
                "output `{out}` is fused: it has no memory to be read from"
            ));
        }
        if plan.values[*o].live.1 != last {
            errs.push(format!(
                "output `{out}` must live to kernel {last}, found {}",
                plan.values[*o].live.1
            ));
        }
    }

    // (a) values alive together share no bytes.
    for u in 0..plan.values.len() {
        for v in u + 1..plan.values.len() {
            let (a, b) = (plan.values[u].live, plan.values[v].live);
            if family(u) == family(v) || a.0 > b.1 || b.0 > a.1 {
                continue;
            }
            let shared = spans[u].iter().find_map(|x| {
                spans[v]
                    .iter()
                    .find(|y| x.0 == y.0 && x.1 < y.2 && y.1 < x.2)
                    .map(|_| x.0)
            });
            if let Some(arena) = shared {
                errs.push(format!(
                    "values `{}` (live {}..{}) and `{}` (live {}..{}) share bytes in arena {arena} while both alive",
                    name(u),
                    a.0,
                    a.1,
                    name(v),
                    b.0,
                    b.1
                ));
            }
        }
    }

    // (b) slices alias their region.
    let consumers = graph.consumers();
    let mut writes_any = vec![false; graph.nodes.len()];
    for &v in plan.kernels.iter().flat_map(|k| &k.writes) {
        if let Some(w) = writes_any.get_mut(v) {
            *w = true;
        }
    }
    for (v, vp) in plan.values.iter().enumerate() {
        let Some((r, first)) = vp.slice_of else {
            continue;
        };
        let at = format!(
            "slice `{}` of region `{}` at channel {first}",
            name(v),
            graph.nodes.get(r).map_or("?", |n| &n.name)
        );
        if r >= plan.values.len() || plan.values[r].slice_of.is_some() {
            errs.push(format!("{at}: the region is not a root value"));
            continue;
        }
        let [n, c, h, w] = shape4(&graph.nodes[v].shape);
        let [rn, rc, rh, rw] = shape4(&graph.nodes[r].shape);
        if (n, h, w) != (rn, rh, rw) || first + c > rc {
            errs.push(format!(
                "{at}: shape {:?} does not fit region shape {:?}",
                graph.nodes[v].shape, graph.nodes[r].shape
            ));
            continue;
        }
        // The graph must put it there: an input of a concat that is the region at this channel, or
        // is itself a slice of it; or a view (a channel slice no kernel writes) of its input's
        // channels; or an elementwise result written over an operand of its shape (an in-place
        // accumulation), which (e) and (f) prove clobbers nothing still needed.
        let node = &graph.nodes[v];
        let at_input = |x: NodeId, c0: usize| {
            let (xr, xf) = plan.values[x].slice_of.unwrap_or((x, 0));
            xr == r && xf + c0 == first
        };
        let view = match node.op {
            Op::ChannelSlice(ChannelSlice { c0, .. }) => {
                !writes_any[v] && at_input(node.inputs[0], c0)
            }
            Op::Binary(_) | Op::Unary(_) => {
                writes_any[v]
                    && (node.inputs.iter())
                        .any(|&x| graph.nodes[x].shape == node.shape && at_input(x, 0))
            }
            _ => false,
        };
        let placed = view
            || consumers[v].iter().any(|&u| {
                let node = &graph.nodes[u];
                let (ur, uc) = plan.values[u].slice_of.unwrap_or((u, 0));
                matches!(node.op, Op::Concat(_))
                    && ur == r
                    && node
                        .inputs
                        .iter()
                        .scan(0, |ch, &i| {
                            let o = *ch;
                            *ch += shape4(&graph.nodes[i].shape)[1];
                            Some((i, o))
                        })
                        .any(|(i, o)| i == v && uc + o == first)
            });
        if !placed {
            errs.push(format!("{at}: no concatenation of the graph puts it there"));
        }
        let (l, rl) = (vp.live, plan.values[r].live);
        if l.0 < rl.0 || l.1 > rl.1 {
            errs.push(format!(
                "{at}: lives {}..{} outside its region's {}..{}",
                l.0, l.1, rl.0, rl.1
            ));
        }
        let find = |v: NodeId, ch: usize| {
            plan.values[v]
                .pieces
                .iter()
                .find(|p| p.c0 <= ch && ch < p.c1)
        };
        let aliased = (0..c).all(|ch| match (find(v, ch), find(r, first + ch)) {
            (Some(p), Some(q)) => {
                p.arena == q.arena
                    && p.offset + (ch - p.c0) as u64 * p.strides[1]
                        == q.offset + (first + ch - q.c0) as u64 * q.strides[1]
                    && (n == 1 || p.strides[0] == q.strides[0])
                    && (h == 1 || p.strides[2] == q.strides[2])
                    && (w == 1 || p.strides[3] == q.strides[3])
            }
            _ => false,
        });
        if !aliased {
            errs.push(format!(
                "{at}: its bytes are not the region's bytes for those channels"
            ));
        }
    }

    // (c) order of writes and reads, lifetimes and bindings.
    let mut written = vec![false; graph.nodes.len()];
    for (k, kernel) in plan.kernels.iter().enumerate() {
        let at = format!("kernel {k} `{}`", kernel.name);
        for (&v, verb) in kernel
            .reads
            .iter()
            .map(|v| (v, "reads"))
            .chain(kernel.writes.iter().map(|v| (v, "writes")))
        {
            if v >= graph.nodes.len() {
                errs.push(format!("{at} {verb} unknown value {v}"));
                continue;
            }
            if plan.values[v].fused.is_some() {
                errs.push(format!(
                    "{at} {verb} `{}`, which fusion gave no memory",
                    name(v)
                ));
            }
            if verb == "reads" && !available(plan, graph, &written, v) {
                errs.push(format!(
                    "{at} reads `{}` before any kernel writes it",
                    name(v)
                ));
            }
            let l = plan.values[v].live;
            if k < l.0 || k > l.1 {
                errs.push(format!(
                    "{at} {verb} `{}` outside its lifetime {}..{}",
                    name(v),
                    l.0,
                    l.1
                ));
            }
            for p in &plan.values[v].pieces {
                if !kernel.arenas.contains(&p.arena) {
                    errs.push(format!(
                        "{at} {verb} `{}` in arena {}, which it does not bind",
                        name(v),
                        p.arena
                    ));
                }
            }
        }
        for &v in &kernel.writes {
            if let Some(w) = written.get_mut(v) {
                *w = true;
            }
        }
    }
    for (out, o) in &graph.outputs {
        if !available(plan, graph, &written, *o) {
            errs.push(format!("output `{out}` is never written"));
        }
    }
    regions_content(plan, graph, &writes_any, &mut errs);
    prologue::check(plan, graph, &mut errs);
    merged::check(plan, graph, &mut errs);
    prologue::check_split(plan, graph, &mut errs);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// A value can be read: it is fed, or written, or a Concat whose every input is available and sits
/// in place at its channels.
fn available(plan: &Plan, graph: &Graph, written: &[bool], v: NodeId) -> bool {
    if graph.kind(v) != ValueKind::Computed || written[v] {
        return true;
    }
    let node = &graph.nodes[v];
    let (r, first) = plan.values[v].slice_of.unwrap_or((v, 0));
    if let Op::ChannelSlice(ChannelSlice { c0, .. }) = node.op {
        // A view: its input's bytes at its channels.
        let x = node.inputs[0];
        let (xr, xf) = plan.values[x].slice_of.unwrap_or((x, 0));
        return (xr, xf + c0) == (r, first) && available(plan, graph, written, x);
    }
    if !matches!(node.op, Op::Concat(_)) {
        return false;
    }
    let mut ch = first;
    node.inputs.iter().all(|&i| {
        let ok = plan.values[i].slice_of == Some((r, ch)) && available(plan, graph, written, i);
        ch += shape4(&graph.nodes[i].shape)[1];
        ok
    })
}

/// The content a member means at its channel `ch`: (the value whose kernel computed it, its
/// channel there). A concat means its inputs; a channel slice no kernel writes, its input.
fn content(graph: &Graph, writes_any: &[bool], u: NodeId, ch: usize) -> (NodeId, usize) {
    let node = &graph.nodes[u];
    match node.op {
        Op::Concat(_) => {
            let mut off = 0;
            for &i in &node.inputs {
                let c = shape4(&graph.nodes[i].shape)[1];
                if ch < off + c {
                    return content(graph, writes_any, i, ch - off);
                }
                off += c;
            }
            (u, ch)
        }
        Op::ChannelSlice(ChannelSlice { c0, .. }) if !writes_any[u] => {
            content(graph, writes_any, node.inputs[0], ch + c0)
        }
        _ => (u, ch),
    }
}

/// (e) and (f): replay the kernels over each region's channels.
fn regions_content(plan: &Plan, graph: &Graph, writes_any: &[bool], errs: &mut Vec<String>) {
    let n = graph.nodes.len();
    // Per region root, what each channel holds now (None: nothing written yet).
    let mut holds: Vec<Vec<Option<(NodeId, usize)>>> = vec![Vec::new(); n];
    for vp in &plan.values {
        if let Some((r, _)) = vp.slice_of.filter(|&(r, _)| r < n && holds[r].is_empty()) {
            let c = shape4(&graph.nodes[r].shape)[1];
            let fed = graph.kind(r) != ValueKind::Computed;
            holds[r] = (0..c).map(|ch| fed.then_some((r, ch))).collect();
        }
    }
    // (root, first channel, channels) of a value in a region.
    let place = |v: NodeId| {
        let (r, f) = plan.values[v].slice_of.unwrap_or((v, 0));
        (r, f, shape4(&graph.nodes[v].shape)[1])
    };
    let check = |holds: &[Vec<Option<(NodeId, usize)>>], v: NodeId, what: &str| {
        let (r, f, c) = place(v);
        let row = holds.get(r).filter(|h| h.len() >= f + c)?;
        (0..c).find_map(|ch| {
            let want = content(graph, writes_any, v, ch);
            (row[f + ch] != Some(want)).then(|| {
                let found = row[f + ch].map_or("nothing".to_string(), |(w, wc)| {
                    format!("`{}` channel {wc}", graph.nodes[w].name)
                });
                format!(
                    "{what} `{}` channel {ch}, but its bytes (channel {} of region `{}`) hold {found}",
                    graph.nodes[v].name,
                    f + ch,
                    graph.nodes[r].name
                )
            })
        })
    };
    for (k, kernel) in plan.kernels.iter().enumerate() {
        let at = format!("kernel {k} `{}`", kernel.name);
        for u in kernel.reads.iter().copied().filter(|&v| v < n) {
            if let Some(e) = check(&holds, u, &format!("{at} reads")) {
                errs.push(e);
            }
        }
        // (f) for each kernel a merged one runs ((j) keeps its parts apart).
        let whole = [(&kernel.template, &kernel.reads, &kernel.writes)];
        let parts: Vec<_> = (kernel.parts.iter())
            .map(|p| (&p.template, &p.reads, &p.writes))
            .collect();
        let units = if parts.is_empty() {
            &whole[..]
        } else {
            &parts[..]
        };
        for &(template, reads, writes) in units {
            for u in reads.iter().copied().filter(|&v| v < n) {
                for v in writes.iter().copied().filter(|&v| v < n) {
                    let ((ru, fu, cu), (rv, fv, cv)) = (place(u), place(v));
                    let overlap = ru == rv && fu < fv + cv && fv < fu + cu;
                    let same = (fu, cu) == (fv, cv) && template == "elementwise";
                    // A concat's copy kernels declare the whole concat but write only the copied
                    // inputs' channels, which (e) checks at the next read.
                    if overlap && !same && !matches!(graph.nodes[v].op, Op::Concat(_)) {
                        errs.push(format!(
                            "{at} writes `{}` over bytes of `{}` that it reads",
                            graph.nodes[v].name, graph.nodes[u].name
                        ));
                    }
                }
            }
        }
        for v in kernel.writes.iter().copied().filter(|&v| v < n) {
            let (r, f, c) = place(v);
            if holds[r].len() >= f + c {
                for ch in 0..c {
                    holds[r][f + ch] = Some(content(graph, writes_any, v, ch));
                }
            }
        }
    }
    for (out, o) in &graph.outputs {
        if let Some(e) = check(&holds, *o, "at the end, output") {
            errs.push(format!("{e} (output `{out}`)"));
        }
    }
}
