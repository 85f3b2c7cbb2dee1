//! 3x3 convolutions rewritten as Winograd products (`ir/src/ops/winograd/`): `conv(x, w, b)`
//! becomes `WinogradOutput(WinogradGemm(WinogradWeight(w), WinogradInput(x)), b)`, which keeps
//! the conv's name (plans and profiles still show `ird.3.conv`), so readers, concat slices and
//! graph outputs see the same value. Stride-1 convs become F(m x m, 3 x 3) (and so do stride-1
//! transposed convs, a conv2d's input gradient, with the weight flipped): 4 multiply-adds per
//! output and input channel for m = 4 instead of 9. Stride-2 convs and stride-2 transposed
//! convs with padding 1 (each other's input gradients) become their polyphase forms
//! (`WinogradKind`): 81 products for 16 outputs (or 16 inputs) instead of 144. The transforms
//! are a few adds per value and fuse like a conv: the input transform computes the input's
//! elementwise producers in its loads, the output transform stores through its consumers
//! (`fuse.rs`).
//!
//! Only convs wide enough that the products outweigh the transforms are rewritten
//! ([`MIN_CHANNELS`]); `compile_with` applies this, forward and backward, for targets that ask
//! for it (`Target::winograd_tile`).

use crate::rewrite::push;
use ir::ops::{
    Conv2d, ConvTranspose2d, WinogradGemm, WinogradInput, WinogradKind, WinogradOutput,
    WinogradTransforms, WinogradWeight,
};
use ir::{Graph, Node, NodeId, Op};

/// The most bytes a conv's transformed input or products may take, in a target's bindings: a
/// value over several arenas is bound once per piece, and the products' kernel binds the
/// weights, the inputs and the products within a stage's 8 storage buffers. Convs over larger
/// images stay direct, which also bounds the memory the transforms add (a 1280x720 forward
/// would plan 1.0 GiB with all its stride-2 convs rewritten; with the two that fit, as without
/// any, 0.70 GiB).
pub const MAX_TRANSFORMED_BINDINGS: u64 = 3;

/// Input and output channels a conv needs to be rewritten. Below this the transforms (whose
/// cost per output does not shrink with the channels) weigh as much as the products they save.
pub const MIN_CHANNELS: usize = 16;

/// `graph` with its 3x3 convs of at least [`MIN_CHANNELS`] channels in and out (conv2d of
/// stride 1 or 2, transposed of stride 1 without out_pad or of stride 2 with padding 1) as
/// Winograd products of tile `tile` whose transformed values take at most `max_bytes` each,
/// and how many were rewritten. Node ids change; outputs do not.
/// A `tile` without transforms (`WinogradTransforms::TILES`) rewrites nothing.
pub fn rewrite(graph: &Graph, tile: usize, max_bytes: u64) -> (Graph, usize) {
    let mut count = 0;
    let known = WinogradTransforms::of(tile, WinogradKind::Stride1).is_ok();
    let mut weights = Vec::new();
    let out = crate::rewrite::rewrite(graph, |out, new_id, i, node| {
        let conv = match &node.op {
            Op::Conv2d(Conv2d {
                stride,
                pad,
                bias,
                groups: 1,
            }) if *stride <= 2 => Some(AsConv2d {
                kind: match stride {
                    1 => WinogradKind::Stride1,
                    _ => WinogradKind::Stride2,
                },
                pad: *pad,
                bias: *bias,
                transposed: false,
            }),
            // A conv2d of the flipped weight with padding 2 - pad (see ir/src/ops/winograd/).
            Op::ConvTranspose2d(ConvTranspose2d {
                stride: 1,
                pad,
                out_pad: 0,
                bias,
                groups: 1,
            }) if *pad <= 2 => Some(AsConv2d {
                kind: WinogradKind::Stride1,
                pad: 2 - pad,
                bias: *bias,
                transposed: true,
            }),
            // The upsampling's patches start at the tile's first input.
            Op::ConvTranspose2d(ConvTranspose2d {
                stride: 2,
                pad: 1,
                out_pad: 0 | 1,
                bias,
                groups: 1,
            }) => Some(AsConv2d {
                kind: WinogradKind::Upsample2,
                pad: 0,
                bias: *bias,
                transposed: true,
            }),
            _ => None,
        };
        new_id[i] = match conv {
            Some(c) if known && wide(out, &node) && fits(out, &node, c, tile, max_bytes) => {
                count += 1;
                winograd(out, node, c, tile, &mut weights)
            }
            _ => push(out, node),
        };
    });
    (out, count)
}

/// A conv as the conv2d that Winograd computes: which kind, the input transform's padding, the
/// bias, and whether its weight is a transposed conv's.
#[derive(Clone, Copy)]
struct AsConv2d {
    kind: WinogradKind,
    pad: usize,
    bias: bool,
    transposed: bool,
}

/// A 3x3 weight with at least [`MIN_CHANNELS`] on both sides, and a rank-4 output.
fn wide(g: &Graph, node: &Node) -> bool {
    let w = &g.nodes[node.inputs[1]].shape;
    matches!(w[..], [a, b, 3, 3] if a >= MIN_CHANNELS && b >= MIN_CHANNELS) && node.shape.len() == 4
}

/// Whether the transformed input V [A^2, C, N, T] and the products M [A^2, O, N, T] take at
/// most `max_bytes` each (f32).
fn fits(g: &Graph, node: &Node, c: AsConv2d, tile: usize, max_bytes: u64) -> bool {
    let input = WinogradInput {
        tile,
        kind: c.kind,
        pad: c.pad,
    };
    let Ok(v) = input.shape(&[&g.nodes[node.inputs[0]].shape]) else {
        return false;
    };
    let out_channels = node.shape[1];
    let bytes = |channels: usize| 4 * (v[0] * channels * v[2] * v[3]) as u64;
    bytes(v[1]).max(bytes(out_channels)) <= max_bytes
}

/// Transformed weights made so far: (weight, transform, U). A weight read by several convs (a
/// frozen network applied to two images, a conv recomputed for the backward pass) is
/// transformed once.
type Transformed = Vec<(NodeId, WinogradWeight, NodeId)>;

/// The nodes of `conv` (already in `g`'s ids); returns the last, which is the conv's value.
fn winograd(g: &mut Graph, conv: Node, c: AsConv2d, tile: usize, made: &mut Transformed) -> NodeId {
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
    let kind = c.kind;
    let weight = WinogradWeight {
        tile,
        kind,
        transposed: c.transposed,
    };
    let u = match made.iter().find(|(mw, op, _)| *mw == w && *op == weight) {
        Some(&(_, _, u)) => u,
        None => {
            let u = add("u", Op::WinogradWeight(weight.clone()), vec![w]);
            made.push((w, weight, u));
            u
        }
    };
    let v = add(
        "v",
        Op::WinogradInput(WinogradInput {
            tile,
            kind,
            pad: c.pad,
        }),
        vec![x],
    );
    let m = add("m", Op::WinogradGemm(WinogradGemm), vec![u, v]);
    let out = WinogradOutput {
        tile,
        kind,
        height: conv.shape[2],
        width: conv.shape[3],
        bias: c.bias,
    };
    let mut inputs = vec![m];
    inputs.extend(conv.inputs.get(2));
    add("", Op::WinogradOutput(out), inputs)
}
