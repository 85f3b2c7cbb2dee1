//! Recomputation in training graphs (docs/design.md, "Memory"): a forward value of a cheap op that the
//! backward pass reads is computed again, from its inputs, right before its first backward use,
//! instead of being kept alive from the forward pass, as memory-efficient DenseNets do. In IRD-GAN
//! every conv is followed by InstanceNorm -> ReLU and the backward pass reads all three outputs;
//! recomputing the norm and the activation keeps only the conv's output (which the norm's
//! backward reads anyway), a third of what would be kept.
//!
//! The pass rewrites every such value; [`crate::compile_with`] plans the graph with and without it
//! and keeps the lower peak.

use crate::rewrite::{push, rewrite};
use ir::{Graph, NodeId, Op, ValueKind};

/// Prefix of the nodes this pass adds: `recompute.<node path>`.
pub const PREFIX: &str = "recompute.";

/// The backward part of a graph: the nodes `autodiff::grad` appended (named `grad.<path>...`) and
/// everything that depends on them. The rest is forward.
pub fn backward(graph: &Graph) -> Vec<bool> {
    let mut back = vec![false; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        back[i] = node.name.starts_with("grad.") || node.inputs.iter().any(|&j| back[j]);
    }
    back
}

/// Ops cheap enough to run twice: normalisations, activations and other unary elementwise ops,
/// per-channel affines, padding. (A convolution is not: it is nearly all the arithmetic.)
fn cheap(op: &Op) -> bool {
    op.properties().cheap
}

/// `graph` with every forward value of a cheap op that a backward node reads recomputed for the
/// backward pass (graph outputs excepted: they are kept anyway), and how many were. Forward nodes
/// keep their order; each clone is placed right before the first backward node that needs it
/// (node order is the schedule's order), its inputs the clones of recomputed inputs. Node ids
/// change; names do not, and outputs are preserved.
pub fn recompute(graph: &Graph) -> (Graph, usize) {
    let n = graph.nodes.len();
    let back = backward(graph);
    let consumers = graph.consumers();
    let mut output = vec![false; n];
    graph.outputs.iter().for_each(|&(_, o)| output[o] = true);
    let redo: Vec<bool> = (0..n)
        .map(|v| {
            !back[v]
                && !output[v]
                && graph.kind(v) == ValueKind::Computed
                && cheap(&graph.nodes[v].op)
                && consumers[v].iter().any(|&u| back[u])
        })
        .collect();
    let mut clone: Vec<Option<NodeId>> = vec![None; n];
    let out = rewrite(graph, |out, new_id, i, mut node| {
        // A backward node reads the clone of a recomputed input, emitted right before it.
        if back[i] {
            for (k, &j) in graph.nodes[i].inputs.iter().enumerate() {
                if redo[j] {
                    node.inputs[k] = emit_clone(graph, &redo, new_id, &mut clone, out, j);
                }
            }
        }
        new_id[i] = push(out, node);
    });
    let count = clone.iter().flatten().count();
    (out, count)
}

/// The clone of forward value `v` in `out`, emitted now (after its inputs' clones) if not yet.
fn emit_clone(
    graph: &Graph,
    redo: &[bool],
    new_id: &[NodeId],
    clone: &mut [Option<NodeId>],
    out: &mut Graph,
    v: NodeId,
) -> NodeId {
    if let Some(c) = clone[v] {
        return c;
    }
    let mut node = graph.nodes[v].clone();
    for j in node.inputs.iter_mut() {
        *j = if redo[*j] {
            emit_clone(graph, redo, new_id, clone, out, *j)
        } else {
            new_id[*j]
        };
    }
    node.name = format!("{PREFIX}{}", node.name);
    let c = push(out, node);
    clone[v] = Some(c);
    c
}
