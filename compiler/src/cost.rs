//! What a kernel costs, counted from the IR nodes it carries out: floating-point operations and
//! the bytes of the values it reads and writes. One place for every op's count, so `irdc profile`
//! and the benchmarks report achieved GFLOP/s and GB/s against the same numbers.
//!
//! Conventions: a multiply-add is 2 FLOPs; an elementwise op is 1 per output element; a reduction
//! 1 per input element; pure data movement (pads, concatenation, slices, reshapes) 0. Bytes are
//! f32 values as the kernel touches them once each: every distinct value read plus every value
//! written, so they are a lower bound on the real traffic (a tiled conv rereads its input).

use crate::Kernel;
use ir::{numel, Graph, Node, Op};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Cost {
    pub flops: u64,
    pub bytes: u64,
}

/// The cost of `kernel` of a plan compiled from `graph` (the graph `compiler::compile` returns
/// with the plan). After fusion a kernel carries out several nodes: their FLOPs add up, while its
/// bytes are only those of the values it reads and writes in memory.
pub fn kernel_cost(graph: &Graph, kernel: &Kernel) -> Cost {
    let by_name: HashMap<&str, &Node> = graph.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let flops = (kernel.nodes.iter())
        .filter_map(|name| by_name.get(name.as_str()))
        .map(|node| node_flops(graph, node))
        .sum();
    let value_bytes = |id: &usize| {
        graph
            .nodes
            .get(*id)
            .map_or(0, |n| 4 * numel(&n.shape) as u64)
    };
    let mut reads = kernel.reads.clone();
    reads.sort_unstable();
    reads.dedup();
    let read: u64 = reads.iter().map(value_bytes).sum();
    // A concatenation kernel copies its inputs into their slices of the region it "writes": it
    // stores what it loads, not the whole region.
    let copies_into_region = kernel.writes.iter().all(|w| {
        graph
            .nodes
            .get(*w)
            .is_some_and(|n| matches!(n.op, Op::Concat(_)))
    });
    let written: u64 = if copies_into_region && !kernel.writes.is_empty() {
        read
    } else {
        kernel.writes.iter().map(value_bytes).sum()
    };
    Cost {
        flops,
        bytes: read + written,
    }
}

/// FLOPs of one node, from its input and output shapes.
pub fn node_flops(graph: &Graph, node: &Node) -> u64 {
    let input = |k: usize| -> &[usize] {
        node.inputs
            .get(k)
            .and_then(|&i| graph.nodes.get(i))
            .map_or(&[], |n| n.shape.as_slice())
    };
    // Input-channel count times kernel area of a weight tensor, `[a, b, kh, kw]` -> b * kh * kw or
    // a * kh * kw.
    let window = |w: &[usize], channel_axis: usize| -> u64 {
        match w {
            [_, _, kh, kw] => (w[channel_axis] * kh * kw) as u64,
            _ => 0,
        }
    };
    let out = numel(&node.shape) as u64;
    let elems = |k: usize| numel(input(k)) as u64;
    match &node.op {
        Op::Input { .. } | Op::Param { .. } | Op::Const(_) => 0,
        // out [N, O, Ho, Wo], weight [O, C, kh, kw]: 2 N O Ho Wo C kh kw.
        Op::Conv2d(_) => 2 * out * window(input(1), 1),
        // x [N, C, H, W] scatters through weight [C, O, kh, kw]: 2 N C H W O kh kw.
        Op::ConvTranspose2d(_) => 2 * elems(0) * window(input(1), 1),
        // gy [N, O, Ho, Wo] against x through the window, out [O, C, kh, kw]: 2 N O Ho Wo C kh kw.
        Op::Conv2dWeightGrad(_) => 2 * elems(1) * window(&node.shape, 1),
        // x [N, C, H, W] against gy, out [C, O, kh, kw]: 2 N C H W O kh kw.
        Op::ConvTranspose2dWeightGrad(_) => 2 * elems(0) * window(&node.shape, 1),
        // Mean and variance (sum, square, sum: 3 per element), then (x - mean) * rstd (2).
        Op::InstanceNorm(_) => 5 * out,
        // Its two parts once lowered (`ir/src/ops/norm_parts.rs`).
        Op::InstanceNormStats(_) => 3 * elems(0),
        Op::InstanceNormApply(_) => 2 * out,
        Op::PlaneMeans(_) => 2 * elems(0),
        Op::Unary(_) | Op::Binary(_) | Op::ChannelAffine(_) | Op::Dropout(_) => out,
        // One comparison per window element after the first.
        Op::MaxPool2d(p) => out * (p.kernel * p.kernel).saturating_sub(1) as u64,
        Op::MaxPool2dGrad(p) => elems(1) * (p.kernel * p.kernel) as u64,
        Op::Reduce(_) => elems(0),
        // Reflected border pixels add onto the ones they mirror.
        Op::ReflectPadGrad(_) => elems(0),
        // Winograd's transforms counted as two sums per value they write, of a patch side's
        // terms (the weights': 3), an upper bound (the kernels drop zero terms); the products
        // 2 A^2 O C N T.
        Op::WinogradWeight(_) => 2 * 2 * 3 * out,
        Op::WinogradInput(o) => 2 * 2 * winograd_side(o.tile, o.kind, |t| t.patch()) * out,
        Op::WinogradGemm(_) => 2 * out * input(0).get(2).copied().unwrap_or(0) as u64,
        Op::WinogradOutput(o) => 2 * 2 * winograd_side(o.tile, o.kind, |t| t.alpha()) * out,
        Op::ReflectPad(_)
        | Op::Concat(_)
        | Op::Expand(_)
        | Op::ChannelSlice(_)
        | Op::PlaneStat(_)
        | Op::Reshape(_) => 0,
    }
}

/// A length of a Winograd algorithm's matrices (`side` of them), 0 for one without matrices.
fn winograd_side(
    tile: usize,
    kind: ir::ops::WinogradKind,
    side: impl Fn(&ir::ops::WinogradTransforms) -> usize,
) -> u64 {
    ir::ops::WinogradTransforms::of(tile, kind).map_or(0, |t| side(&t) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ir::ops::Conv2d;

    #[test]
    fn a_conv_counts_two_flops_per_multiply_add_and_its_values_bytes() {
        let mut g = Graph::default();
        // Sources get their shapes from the front end, not a shape rule: set them by hand.
        let mut source = |name: &str, shape: Vec<usize>| {
            let op = Op::Input { name: name.into() };
            let inputs = vec![];
            let name = name.into();
            g.nodes.push(Node {
                name,
                op,
                inputs,
                shape,
            });
            g.nodes.len() - 1
        };
        let x = source("x", vec![2, 3, 8, 8]);
        let w = source("w", vec![5, 3, 3, 3]);
        let conv = Op::Conv2d(Conv2d {
            stride: 2,
            pad: 1,
            bias: false,
        });
        let y = g.push("y", conv, vec![x, w]).unwrap();
        assert_eq!(g.nodes[y].shape, vec![2, 5, 4, 4]);
        let k = Kernel {
            name: "conv2d:y".into(),
            template: "conv2d".into(),
            nodes: vec!["y".into()],
            reads: vec![x, w, x],
            writes: vec![y],
            arenas: vec![],
            offsets: vec![],
            workgroups: [1, 1, 1],
            wgsl: String::new(),
        };
        let c = kernel_cost(&g, &k);
        assert_eq!(c.flops, 2 * (2 * 5 * 4 * 4) * (3 * 3 * 3));
        assert_eq!(c.bytes, 4 * (2 * 3 * 8 * 8 + 5 * 3 * 3 * 3 + 2 * 5 * 4 * 4));
    }
}
