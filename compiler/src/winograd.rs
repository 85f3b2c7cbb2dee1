//! Stride-1 3x3 convolutions rewritten as Winograd's F(m x m, 3 x 3) (`ir/src/ops/winograd.rs`):
//! `conv(x, w, b)` becomes `WinogradOutput(WinogradGemm(WinogradWeight(w), WinogradInput(x)), b)`
//! (and so does a stride-1 transposed conv, a conv2d's input gradient, with its weight flipped),
//! which keeps the conv's name (plans and profiles still show `ird.3.conv`), so readers, concat
//! slices and graph outputs see the same value. The products then do 4 multiply-adds per output
//! and input channel for m = 4 instead of 9; the transforms are a few adds per value and fuse
//! like a conv: the input transform computes the input's elementwise producers in its loads,
//! the output transform stores through its consumers (`fuse.rs`).
//!
//! Only convs wide enough that the products outweigh the transforms are rewritten
//! ([`MIN_CHANNELS`]); `compile_with` applies this, forward and backward, for targets that ask
//! for it (`Target::winograd_tile`).

use ir::ops::{
    ConvTranspose2d, WinogradGemm, WinogradInput, WinogradOutput, WinogradTransforms,
    WinogradWeight,
};
use ir::{Graph, Node, NodeId, Op};

/// Input and output channels a conv needs to be rewritten. Below this the transforms (whose
/// cost per output does not shrink with the channels) weigh as much as the products they save.
pub const MIN_CHANNELS: usize = 16;

/// `graph` with its stride-1 3x3 convs (conv2d, and transposed without out_pad) of at least
/// [`MIN_CHANNELS`] channels in and out as F(`tile` x `tile`, 3 x 3), and how many were
/// rewritten. Node ids change; outputs do not.
/// A `tile` without transforms (`WinogradTransforms::TILES`) rewrites nothing.
pub fn rewrite(graph: &Graph, tile: usize) -> (Graph, usize) {
    let mut out = Graph {
        name: graph.name.clone(),
        ..Graph::default()
    };
    let mut new_id = vec![usize::MAX; graph.nodes.len()];
    let mut count = 0;
    let known = WinogradTransforms::of(tile).is_ok();
    for (i, node) in graph.nodes.iter().enumerate() {
        let mut node = node.clone();
        node.inputs.iter_mut().for_each(|j| *j = new_id[*j]);
        let conv = match &node.op {
            Op::Conv2d(c) if c.stride == 1 => Some(AsConv2d {
                pad: c.pad,
                bias: c.bias,
                transposed: false,
            }),
            // A conv2d of the flipped weight with padding 2 - pad (see ir/src/ops/winograd.rs).
            Op::ConvTranspose2d(ConvTranspose2d {
                stride: 1,
                pad,
                out_pad: 0,
                bias,
            }) if *pad <= 2 => Some(AsConv2d {
                pad: 2 - pad,
                bias: *bias,
                transposed: true,
            }),
            _ => None,
        };
        new_id[i] = match conv {
            Some(c) if known && wide(&out, &node) => {
                count += 1;
                winograd(&mut out, node, c, tile)
            }
            _ => push(&mut out, node),
        };
    }
    out.outputs = (graph.outputs.iter())
        .map(|(name, o)| (name.clone(), new_id[*o]))
        .collect();
    (out, count)
}

/// A stride-1 conv as the conv2d that Winograd computes: its padding, bias, and whether its
/// weight is a transposed conv's.
#[derive(Clone, Copy)]
struct AsConv2d {
    pad: usize,
    bias: bool,
    transposed: bool,
}

/// A 3x3 weight with at least [`MIN_CHANNELS`] on both sides, and a rank-4 output.
fn wide(g: &Graph, node: &Node) -> bool {
    let w = &g.nodes[node.inputs[1]].shape;
    matches!(w[..], [a, b, 3, 3] if a >= MIN_CHANNELS && b >= MIN_CHANNELS) && node.shape.len() == 4
}

/// The four nodes of `conv` (already in `g`'s ids); returns the last, which is the conv's value.
fn winograd(g: &mut Graph, conv: Node, c: AsConv2d, tile: usize) -> NodeId {
    let (x, w) = (conv.inputs[0], conv.inputs[1]);
    let mut add = |suffix: &str, op: Op, inputs: Vec<NodeId>| {
        let name = match suffix {
            "" => conv.name.clone(),
            s => format!("{}.winograd.{s}", conv.name),
        };
        // `rewrite` took only shapes these ops accept.
        g.push(name, op, inputs)
            .expect("the conv's shapes fit Winograd's")
    };
    let weight = WinogradWeight {
        tile,
        transposed: c.transposed,
    };
    let u = add("u", Op::WinogradWeight(weight), vec![w]);
    let v = add(
        "v",
        Op::WinogradInput(WinogradInput { tile, pad: c.pad }),
        vec![x],
    );
    let m = add("m", Op::WinogradGemm(WinogradGemm), vec![u, v]);
    let out = WinogradOutput {
        tile,
        height: conv.shape[2],
        width: conv.shape[3],
        bias: c.bias,
    };
    let mut inputs = vec![m];
    inputs.extend(conv.inputs.get(2));
    add("", Op::WinogradOutput(out), inputs)
}

fn push(g: &mut Graph, node: Node) -> NodeId {
    g.nodes.push(node);
    g.nodes.len() - 1
}
