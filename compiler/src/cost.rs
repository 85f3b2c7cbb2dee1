//! What a kernel costs, counted from the IR nodes it carries out: floating-point operations
//! (each op counts its own, `ir::ops::Flops`) and the bytes of the values it reads and writes,
//! so `irdc profile` and the benchmarks report achieved GFLOP/s and GB/s against the same
//! numbers.
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

/// FLOPs of one node, from its input and output shapes (each op counts its own: `ir::ops::Flops`).
pub fn node_flops(graph: &Graph, node: &Node) -> u64 {
    let inputs: Vec<&[usize]> = (node.inputs.iter())
        .map(|&i| graph.nodes.get(i).map_or(&[][..], |n| n.shape.as_slice()))
        .collect();
    node.op.flops(&inputs, &node.shape)
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
            groups: 1,
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
            parts: Vec::new(),
        };
        let c = kernel_cost(&g, &k);
        assert_eq!(c.flops, 2 * (2 * 5 * 4 * 4) * (3 * 3 * 3));
        assert_eq!(c.bytes, 4 * (2 * 3 * 8 * 8 + 5 * 3 * 3 * 3 + 2 * 5 * 4 * 4));
    }
}
