//! Channel-wise ops split over concats (`compiler::channelwise`): a dense chain normalises each
//! part once, the split graph computes what the original does (CPU reference), and ops over
//! concats none of whose parts they already cover stay whole.

use compiler::channelwise::split_over_concats;
use ir::ops::{Concat, InstanceNorm, Unary};
use ir::{Graph, Node, NodeId, Op, Tensor};
use std::collections::HashMap;

fn input(g: &mut Graph, name: &str, channels: usize) -> NodeId {
    g.nodes.push(Node {
        name: name.into(),
        op: Op::Input { name: name.into() },
        inputs: vec![],
        shape: vec![2, channels, 3, 4],
    });
    g.nodes.len() - 1
}

fn norm() -> Op {
    Op::InstanceNorm(InstanceNorm { eps: 1e-5 })
}

/// A dense chain of three blocks (x0: 2 channels, then 3 and 4 more), each normalising and
/// activating all features so far; plus a norm and a ReLU of the concat of the two later
/// inputs alone.
fn dense_chain() -> Graph {
    let mut g = Graph::default();
    let x0 = input(&mut g, "x0", 2);
    let y0 = input(&mut g, "y0", 3);
    let y1 = input(&mut g, "y1", 4);
    let mut x = x0;
    let mut outputs = vec![];
    for (k, y) in [(0, None), (1, Some(y0)), (2, Some(y1))] {
        if let Some(y) = y {
            x = g
                .push(format!("b{k}.cat"), Op::Concat(Concat {}), vec![x, y])
                .unwrap();
        }
        let n = g.push(format!("b{k}.norm"), norm(), vec![x]).unwrap();
        let r = g
            .push(format!("b{k}.relu"), Op::Unary(Unary::Relu), vec![n])
            .unwrap();
        outputs.push((format!("b{k}"), r));
    }
    let fresh = g
        .push("fresh", Op::Concat(Concat {}), vec![y0, y1])
        .unwrap();
    let n = g.push("fresh.norm", norm(), vec![fresh]).unwrap();
    let r = g
        .push("fresh.relu", Op::Unary(Unary::Relu), vec![fresh])
        .unwrap();
    outputs.push(("fresh.norm".into(), n));
    outputs.push(("fresh.relu".into(), r));
    g.outputs = outputs;
    g
}

fn feeds(g: &Graph) -> HashMap<String, Tensor<f64>> {
    let mut feeds = HashMap::new();
    for (k, (_, node)) in g.inputs().enumerate() {
        let len: usize = node.shape.iter().product();
        let data = (0..len)
            .map(|i| (((i * 37 + k * 11) % 23) as f64 / 11.0) - 1.0)
            .collect();
        feeds.insert(node.name.clone(), Tensor::new(&node.shape, data));
    }
    feeds
}

/// Channels each op of kind `op` normalises or activates, summed.
fn channels_of(g: &Graph, op: fn(&Op) -> bool) -> usize {
    (g.nodes.iter())
        .filter(|n| op(&n.op))
        .map(|n| n.shape[1])
        .sum()
}

#[test]
fn a_dense_chain_normalises_each_part_once_and_computes_the_same() {
    let g = dense_chain();
    let (split, count) = split_over_concats(&g);
    // b1's norm and ReLU reuse b0's (of x0), b2's reuse b1's; the fresh norm reuses the norms
    // of y0 and y1 that b1 and b2 computed; the fresh ReLU has no part to reuse and stays whole.
    assert_eq!(count, 5);
    let is_norm = |op: &Op| matches!(op, Op::InstanceNorm(_));
    let is_relu = |op: &Op| matches!(op, Op::Unary(Unary::Relu));
    // Unsplit: 2 + 5 + 9 channels in the blocks, 7 in the fresh ones.
    assert_eq!(channels_of(&g, is_norm), 2 + 5 + 9 + 7);
    assert_eq!(channels_of(&g, is_relu), 2 + 5 + 9 + 7);
    // Split, each block normalises and activates its new channels only.
    assert_eq!(channels_of(&split, is_norm), 2 + 3 + 4);
    assert_eq!(channels_of(&split, is_relu), 2 + 3 + 4 + 7);
    let names: Vec<&str> = split.nodes.iter().map(|n| n.name.as_str()).collect();
    for name in [
        "b1.norm.part1",
        "b2.norm.part1",
        "b1.relu.part1",
        "b2.relu.part1",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let outputs: Vec<&str> = split.outputs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(outputs, ["b0", "b1", "b2", "fresh.norm", "fresh.relu"]);
    // The same numbers as the original graph, output by output.
    let f = feeds(&g);
    let want = ir::cpu::evaluate(&g, &f).unwrap();
    let got = ir::cpu::evaluate(&split, &f).unwrap();
    for ((name, a), (_, b)) in g.outputs.iter().zip(&split.outputs) {
        let (a, b) = (&want[*a], &got[*b]);
        assert_eq!(a.shape, b.shape, "{name}");
        for (i, (x, y)) in a.data.iter().zip(&b.data).enumerate() {
            assert!((x - y).abs() < 1e-12, "{name} element {i}: {x} vs {y}");
        }
    }
}
