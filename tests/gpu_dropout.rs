//! Training-mode dropout on the device (lavapipe without a GPU): the kernel's masks and values are
//! exactly the f32 CPU reference's, on odd shapes, on a value split across arenas, and in a
//! gradient (the backward dropout draws the forward's mask).

mod gpu_support;

use compiler::autodiff::{grad, sum_to_scalar};
use compiler::Target;
use gpu_support::{check, gpu, random_feeds, G};
use ir::ops::{Binary, Dropout, DROPOUT_SEED};
use ir::{Graph, Op, Tensor};
use std::collections::HashMap;

fn dropout_graph(name: &str, shape: &[usize], d: Dropout) -> G {
    let mut g = G::new(name);
    let x = g.input("x", shape);
    let seed = g.input(DROPOUT_SEED, &[1]);
    let y = g.op("y", Op::Dropout(d), &[x, seed]);
    g.output(y);
    g
}

/// Run `g` on the device with `x` random and the seed given; the output must equal the f32 CPU
/// reference bit for bit (the same integer hash decides the mask, one f32 multiply the value).
fn exact(g: &Graph, target: &Target, seed: f32) -> (compiler::Plan, Vec<f32>) {
    let mut feeds = random_feeds(g, 7);
    feeds.insert(DROPOUT_SEED.into(), Tensor::new(&[1], vec![seed]));
    let want = ir::cpu::evaluate::<f32>(g, &feeds).unwrap();
    let want = &want[g.outputs[0].1].data;
    let (plan, _) = compiler::compile(g, target).unwrap();
    let got = runtime::execute(gpu(), &plan, &feeds).unwrap_or_else(|e| panic!("{e}"));
    let got = &got[0].1.data;
    let dropped = want.iter().filter(|&&v| v == 0.0).count();
    assert!(
        dropped > 0 && dropped < want.len(),
        "{}: a trivial mask",
        g.name
    );
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            a.to_bits() == b.to_bits(),
            "{}: element {i} is {a} on the GPU, {b} on the CPU",
            g.name
        );
    }
    (plan, got.clone())
}

#[test]
fn masks_equal_the_cpu_reference() {
    let target = gpu().target();
    let cases = [
        ([2, 3, 5, 7], 0.5, 1),
        ([1, 4, 3, 9], 0.2, 0xdead_beef),
        ([3, 1, 1, 11], 0.9, 0),
    ];
    for (shape, p, salt) in cases {
        let g = dropout_graph(&format!("drop{p}"), &shape, Dropout { p, salt });
        let (plan, a) = exact(&g.0, &target, 12.0);
        assert!(plan.kernels.iter().any(|k| k.name == "dropout:y"));
        // Another seed, another mask; the largest seed is exact too.
        let (_, b) = exact(&g.0, &target, 16_777_215.0);
        assert_ne!(a, b);
    }
    // Rank 2, as the op allows ranks 1 to 4.
    let g = dropout_graph("drop_rank2", &[6, 13], Dropout { p: 0.3, salt: 5 });
    exact(&g.0, &target, 1.0);
}

/// A `[seed, first]` seed: a graph holding samples 2..5 of a batch draws, on the device, the masks
/// that the whole batch's graph draws for those samples (a data-parallel rank's share).
#[test]
fn a_share_of_the_batch_draws_the_whole_batchs_masks() {
    let target = gpu().target();
    let graph = |name: &str, n: usize| {
        let mut g = G::new(name);
        let x = g.input("x", &[n, 2, 4, 5]);
        let seed = g.input(DROPOUT_SEED, &[2]);
        let y = g.op("y", Op::Dropout(Dropout { p: 0.5, salt: 4 }), &[x, seed]);
        g.output(y);
        g.0
    };
    let ones = |n: usize| Tensor::new(&[n, 2, 4, 5], vec![1.0f32; n * 40]);
    let run = |g: &Graph, x: Tensor<f32>, seed: Vec<f32>| {
        let feeds = HashMap::from([
            ("x".to_string(), x),
            (DROPOUT_SEED.to_string(), Tensor::new(&[2], seed)),
        ]);
        let want = ir::cpu::evaluate::<f32>(g, &feeds).unwrap();
        let (plan, _) = compiler::compile(g, &target).unwrap();
        let got = runtime::execute(gpu(), &plan, &feeds).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got[0].1.data, want[g.outputs[0].1].data, "{}", g.name);
        got[0].1.data.clone()
    };
    let whole = run(&graph("whole", 5), ones(5), vec![77.0, 0.0]);
    let share = run(&graph("share", 3), ones(3), vec![77.0, 2.0]);
    assert_eq!(share, whole[80..]);
    let (kept, dropped) = (
        share.iter().filter(|&&v| v == 2.0),
        share.iter().filter(|&&v| v == 0.0),
    );
    assert!(kept.count() > 0 && dropped.count() > 0, "a trivial mask");
}

/// With a 64 KiB binding limit, the 96 KiB input and output are split across arenas by channels;
/// the mask still follows the flat index of the whole value.
#[test]
fn masks_on_values_split_across_arenas() {
    let small = {
        let mut t = Target::default();
        t.limits.max_binding_bytes = 64 * 1024;
        t
    };
    let mut g = G::new("split_drop");
    let x = g.input("x", &[1, 24, 32, 32]);
    let seed = g.input(DROPOUT_SEED, &[1]);
    // Computed, so that the dropout reads a planned (split) value.
    let r = g.op("r", Op::Unary(ir::ops::Unary::Neg), &[x]);
    let y = g.op("y", Op::Dropout(Dropout { p: 0.4, salt: 3 }), &[r, seed]);
    g.output(y);
    let (plan, _) = exact(&g.0, &small, 99.0);
    let split = (plan.values.iter())
        .filter(|v| v.pieces.iter().any(|p| p.arena != v.pieces[0].arena))
        .count();
    assert!(
        split > 0,
        "the small limit should split the values across arenas"
    );
}

/// d sum(dropout(x) * x) / dx on the device against the CPU reference: the backward dropout uses
/// the forward's mask.
#[test]
fn gradient_on_the_device() {
    let mut g = G::new("drop_grad");
    let x = g.input("x", &[1, 3, 4, 6]);
    let seed = g.input(DROPOUT_SEED, &[1]);
    let y = g.op("y", Op::Dropout(Dropout { p: 0.5, salt: 8 }), &[x, seed]);
    let m = g.op("m", Op::Binary(Binary::Mul), &[y, x]);
    let mut graph = g.0;
    let s = sum_to_scalar(&mut graph, m).unwrap();
    let (mut gg, ids) = grad(&graph, s, &[x]).unwrap();
    gg.outputs = vec![("dx".into(), ids[0])];
    let mut feeds: HashMap<String, Tensor<f32>> = random_feeds(&gg, 3);
    feeds.insert(DROPOUT_SEED.into(), Tensor::new(&[1], vec![21.0]));
    let (plan, _) = check(&gg, &feeds);
    // Each dropout is a kernel, or a part of one where independent kernels run as one.
    let kernels = (plan.kernels.iter()).flat_map(|k| match k.parts.is_empty() {
        true => vec![k.name.clone()],
        false => k.parts.iter().map(|p| p.name.clone()).collect(),
    });
    let drops = kernels.filter(|k| k.starts_with("dropout:"));
    assert_eq!(drops.count(), 2, "the forward and the backward dropout");
}
