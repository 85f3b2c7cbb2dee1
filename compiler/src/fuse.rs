//! Fusion (docs/design.md, "Fusion"). Every kernel touches memory only through the generated
//! accessors `ld_<v>(n, c, h, w)` / `st_<v>(n, c, h, w, v)` (`codegen/access.rs`), so fusion is
//! a choice of what those accessors do:
//! - an elementwise value is *inlined*: it gets no memory and no kernel, and each reader's
//!   `ld_<v>` computes it from its inputs' accessors (themselves loads or inlined). This one
//!   rule makes elementwise chains one kernel, puts InstanceNorm's normalisation and the ReLU
//!   after it into the next convolution's load (the IRD bottleneck), elementwise work into the
//!   reductions after it, and does the same in backward graphs; a reindexing (a pixel
//!   shuffle: one load of its input elsewhere) is inlined the same way;
//! - a reduction whose only reader is a reshape stores into the reshape's bytes;
//! - a convolution (or a Winograd output transform, `ir/src/ops/winograd/`, or a weight
//!   gradient or a reduction to a scalar, each element written once by one workgroup) whose only reader is
//!   an elementwise op of its shape (bias, activation, residual add, the sum of a shared
//!   weight's gradients, the terms of a loss) is *stored through* it:
//!   the convolution's `st_y` computes that op and stores its result, and the op's kernel
//!   disappears; so is that op in turn through its only reader, a chain (conv -> tanh -> + skip
//!   is one kernel). Chains are chosen first: a convolution's output that never reaches memory
//!   saves the most.
//!
//! What must stay in memory does: graph outputs, concat slices and in-place values
//! (`memory::in_place`), and values read by a channel slice or a concat.

use crate::{Fused, Target, ValuePlan};
use ir::{numel, Graph, NodeId, Op, ValueKind};

/// Ops inlined into a reader of a bigger cost per element than this are materialised instead.
const MAX_OPS: usize = 12;
/// The same for readers that read each element many times (a convolution's window over all its
/// output channels): only a short expression of at most one full-size value (a normalisation and
/// an activation of one tensor, say) is worth recomputing there. The default of
/// `Target::max_ops_in_conv_loads`, which the compiler uses instead.
pub const MAX_OPS_REREAD: usize = 4;
/// `Target::max_ops_in_conv_loads` for CPU adapters (lavapipe): an activation, not a norm.
pub const MAX_OPS_REREAD_CPU: usize = 1;
/// `Target::small_value_elements` for CPU adapters.
pub const SMALL_VALUE_CPU: usize = 16 << 10;
/// Full-size loads a small value's expression may make in a rereading kernel's loads (a
/// residual add of two stored values): at that size a kernel costs more than the rereads.
const MAX_FULL_LOADS_SMALL: usize = 2;
/// `Target::plane_apply_pixels` for GPUs: planes up to 64x64.
pub const PLANE_APPLY_GPU: usize = 64 * 64;

/// What fusion decided, per node.
#[derive(Debug, Clone)]
pub struct Fusion {
    /// Computed in its readers' loads: no memory, no kernel.
    pub inlined: Vec<bool>,
    /// A value stored through its only reader: `store_into[y] = Some(e)`; y has no memory, and
    /// e is written by the kernel of the convolution that starts the chain.
    pub store_into: Vec<Option<NodeId>>,
    /// A plane reduction whose kernel also computes an elementwise reader of it, after its
    /// sums: `applies[r] = Some(e)`. Both keep their memory; r's kernel runs at e's step.
    pub applies: Vec<Option<NodeId>>,
}

impl Fusion {
    /// Nothing fused.
    pub fn none(graph: &Graph) -> Fusion {
        let n = graph.nodes.len();
        Fusion {
            inlined: vec![false; n],
            store_into: vec![None; n],
            applies: vec![None; n],
        }
    }

    /// The value has bytes of its own (sources, and every computed value fusion left alone).
    pub fn has_memory(&self, v: NodeId) -> bool {
        !self.inlined[v] && self.store_into[v].is_none()
    }

    /// Kernels fusion removed: each inlined value, each op stored through and each value a
    /// reduction applies was one kernel.
    pub fn kernels_saved(&self) -> usize {
        self.inlined.iter().filter(|&&i| i).count()
            + self.store_into.iter().flatten().count()
            + self.applies.iter().flatten().count()
    }
}

/// A reduction to one element (a loss term): its kernel's one store can compute what follows
/// (other reductions over planes leave their readers to `plane_apply.rs`).
fn scalar_reduction(node: &ir::Node) -> bool {
    matches!(node.op, Op::Reduce(_)) && numel(&node.shape) == 1
}

/// Ops computed in their readers' loads: elementwise ops (each output element from the same
/// element of its inputs, broadcasting) and reindexings (one element of the input, elsewhere).
fn inlinable(op: &Op) -> bool {
    let p = op.properties();
    p.elementwise || p.reindexes
}

/// Readers that load each input element many times (`ir::ops::Properties::rereads`). A
/// Winograd input transform is not one: it loads each element (m + 2)^2 / m^2 times (2.25 for
/// m = 4), so a norm and an activation are cheaper computed there than written out and read
/// back.
fn rereads(op: &Op) -> bool {
    op.properties().rereads
}

/// Decide what to fuse in `graph`, whose in-place values are `slices` (`memory::in_place`),
/// computing at most `target.policy.max_ops_in_conv_loads` ops in the loads of rereading kernels (and
/// `MAX_OPS_REREAD` and `MAX_FULL_LOADS_SMALL` for values of at most
/// `target.policy.small_value_elements`).
pub fn fuse(graph: &Graph, slices: &[Option<(NodeId, usize)>], target: &Target) -> Fusion {
    // (ops, full-size loads) a value's expression may have in a rereading kernel's loads.
    let max_reread = |v: NodeId| match numel(&graph.nodes[v].shape) {
        n if n <= target.policy.small_value_elements => (
            MAX_OPS_REREAD.max(target.policy.max_ops_in_conv_loads),
            MAX_FULL_LOADS_SMALL,
        ),
        _ => (target.policy.max_ops_in_conv_loads, 1),
    };
    let n = graph.nodes.len();
    let consumers = graph.consumers();
    let mut output = vec![false; n];
    graph.outputs.iter().for_each(|&(_, o)| output[o] = true);
    let mut holds = vec![false; n];
    slices.iter().flatten().for_each(|&(h, _)| holds[h] = true);
    // Written over another value's bytes (an in-place accumulation): its kernel reads and writes
    // the same bytes index for index, which an inlined operand must not disturb.
    let accumulates =
        |u: NodeId| slices[u].is_some_and(|(h, _)| !matches!(graph.nodes[h].op, Op::Concat(_)));
    let private = |v: NodeId| {
        graph.kind(v) == ValueKind::Computed && !output[v] && slices[v].is_none() && !holds[v]
    };
    let mut f = Fusion::none(graph);
    let stores = |y: NodeId, e: NodeId| {
        let en = &graph.nodes[e];
        private(y)
            && en.op.properties().store_epilogue
            && en.shape == graph.nodes[y].shape
            && en.inputs.iter().filter(|&&i| i == y).count() == 1
            && !accumulates(e)
    };
    let mut chained = vec![false; n];
    for (y, node) in graph.nodes.iter().enumerate() {
        if !node.op.properties().stores_through && !scalar_reduction(node) {
            continue;
        }
        chain(&mut f, &mut chained, &consumers, &stores, y);
    }
    // A reduction read only by a reshape (a bias gradient, [1, O, 1, 1] -> [O]) stores straight
    // into the reshape's bytes: the same elements in the same order, so no copy kernel.
    for (y, node) in graph.nodes.iter().enumerate() {
        if let (Op::Reduce(_), &[e]) = (&node.op, consumers[y].as_slice()) {
            if private(y) && matches!(graph.nodes[e].op, Op::Reshape(_)) && !accumulates(e) {
                f.store_into[y] = Some(e);
                chained[e] = true;
                // And on through what reads the reshape (the sum of a shared bias's gradients).
                chain(&mut f, &mut chained, &consumers, &stores, e);
            }
        }
    }
    // Per value as an inlined expression: its ops, and its loads of values of its own size.
    let mut ops = vec![0usize; n];
    let mut full = vec![0usize; n];
    for (v, node) in graph.nodes.iter().enumerate() {
        let size = numel(&node.shape);
        for &i in &node.inputs {
            let (o, l) = if f.inlined[i] {
                (ops[i], full[i])
            } else {
                (0, usize::from(numel(&graph.nodes[i].shape) == size))
            };
            ops[v] += o;
            full[v] += l;
        }
        ops[v] += 1;
        let (max_ops, max_full) = max_reread(v);
        f.inlined[v] = inlinable(&node.op)
            && private(v)
            && !chained[v]
            && f.store_into[v].is_none()
            && !consumers[v].is_empty()
            && consumers[v].iter().all(|&u| {
                let op = &graph.nodes[u].op;
                let cheap = match rereads(op) {
                    true => ops[v] <= max_ops && full[v] <= max_full,
                    false => ops[v] <= MAX_OPS,
                };
                cheap && !op.properties().channel_view && !accumulates(u)
            });
    }
    f.applies = crate::plane_apply::choose(graph, &f, &consumers, slices, target);
    f
}

/// Store `y` through its only reader, and that through its own, while `stores` allows (at most
/// `MAX_OPS` ops).
fn chain(
    f: &mut Fusion,
    chained: &mut [bool],
    consumers: &[Vec<NodeId>],
    stores: &dyn Fn(NodeId, NodeId) -> bool,
    y: NodeId,
) {
    let (mut u, mut ops) = (y, 0);
    while let &[e] = consumers[u].as_slice() {
        // One chain per reader: another convolution summed into it stays a load there.
        if ops == MAX_OPS || chained[e] || !stores(u, e) {
            break;
        }
        f.store_into[u] = Some(e);
        chained[e] = true;
        (u, ops) = (e, ops + 1);
    }
}

/// The schedule with fusion: inlined values have no step, and a convolution stored through its
/// reader runs at the reader's step (its own inputs are all ready by then; the reader's other
/// inputs may not be at the convolution's).
pub fn schedule(steps: &[NodeId], f: &Fusion) -> Vec<NodeId> {
    // The end of each chain, run by the convolution that starts it.
    let mut stored_from = vec![None; f.inlined.len()];
    for &s in steps {
        let end = chain_end(f, s);
        // The convolution comes first in node order; the chain's later values find it set.
        stored_from[end] = stored_from[end].or(Some(s));
    }
    // A reduction that applies its reader runs in the reader's place.
    for (r, e) in f.applies.iter().enumerate() {
        if let &Some(e) = e {
            stored_from[e] = Some(r);
        }
    }
    (steps.iter())
        .filter(|&&s| f.has_memory(s) && f.applies[s].is_none())
        .map(|&s| stored_from[s].filter(|&y| y != s).unwrap_or(s))
        .collect()
}

/// For every node, the steps whose kernels carry it out: its own, its anchor's (an op stored
/// through), or its readers' (an inlined value, computed wherever it is read).
pub fn carried_at(graph: &Graph, steps: &[NodeId], f: &Fusion) -> Vec<Vec<usize>> {
    let n = graph.nodes.len();
    let mut at = vec![Vec::new(); n];
    for (s, &v) in steps.iter().enumerate() {
        at[v].push(s);
        if let Some(e) = f.applies[v] {
            at[e].push(s);
        }
        let mut u = v;
        while let Some(e) = f.store_into[u] {
            at[e].push(s);
            u = e;
        }
    }
    let consumers = graph.consumers();
    for v in (0..n).rev().filter(|&v| f.inlined[v]) {
        let mut steps: Vec<usize> = consumers[v].iter().flat_map(|&u| at[u].clone()).collect();
        steps.sort_unstable();
        steps.dedup();
        at[v] = steps;
    }
    at
}

/// The last value of the chain of stores that starts at `v` (`v` itself if none does).
fn chain_end(f: &Fusion, mut v: NodeId) -> NodeId {
    while let Some(e) = f.store_into[v] {
        v = e;
    }
    v
}

/// Give the fused values of a memory plan what code generation needs to reach them: an inlined
/// value its op over its inputs' plans, a convolution stored through its reader that reader's
/// op, operands and plan.
pub fn describe(graph: &Graph, f: &Fusion, values: &mut [ValuePlan]) {
    for (v, node) in graph.nodes.iter().enumerate() {
        if f.inlined[v] {
            let inputs = node.inputs.iter().map(|&i| values[i].clone()).collect();
            values[v].fused = Some(Box::new(Fused::Inline {
                op: node.op.clone(),
                inputs,
            }));
        }
    }
    // From the ends of chains back, so that each reader's plan already says how it is stored.
    for y in (0..graph.nodes.len()).rev() {
        if let Some(e) = f.store_into[y] {
            let en = &graph.nodes[e];
            let at = en.inputs.iter().position(|&i| i == y).unwrap_or(0);
            let inputs = en.inputs.iter().map(|&i| values[i].clone()).collect();
            values[y].fused = Some(Box::new(Fused::Store {
                op: en.op.clone(),
                at,
                inputs,
                out: Box::new(values[e].clone()),
            }));
        }
    }
}
