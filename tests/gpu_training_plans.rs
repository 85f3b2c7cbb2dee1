//! A training plan run on the device (lavapipe without a GPU): IRD-GAN's generator at N=8, 32x32,
//! differentiated w.r.t. every parameter, compiled with the training-memory planning (the gradient
//! of the dense-concat region accumulated in place in one region, cheap forward values
//! recomputed), against the CPU reference (f64) of the same differentiated graph.

mod gpu_support;

use compiler::autodiff::{grad, sum_to_scalar};
use gpu_support::{gpu, random_feeds};
use ir::{Graph, Op};
use std::collections::HashMap;
use std::path::Path;

/// The generator's output, then d sum(output) / d p for every parameter p, named as p.
fn generator_step() -> Graph {
    let set = [("N".to_string(), "8".to_string())];
    let model = ir::front::load(Path::new("models/ird_gan.ron"), &set).unwrap();
    let mut g = model
        .build("generator", &[("blurred".into(), vec![1, 3, 32, 32])])
        .unwrap();
    let (name, out) = g.outputs[0].clone();
    let wrt: Vec<usize> = (0..g.nodes.len())
        .filter(|&i| matches!(g.nodes[i].op, Op::Param { .. }))
        .collect();
    let scalar = sum_to_scalar(&mut g, out).unwrap();
    let (mut t, grads) = grad(&g, scalar, &wrt).unwrap_or_else(|e| panic!("{e}"));
    t.outputs = vec![(name, out)];
    for (&w, &d) in wrt.iter().zip(&grads) {
        t.outputs.push((g.nodes[w].name.clone(), d));
    }
    t
}

/// |gpu - cpu| <= 1e-3 * max(scale, |cpu|), scale the largest |cpu| of that output (a gradient
/// element is a long sum of terms of both signs, so f32 rounding is relative to the terms); an
/// output that is zero in exact arithmetic (a conv bias before InstanceNorm) must be below 1e-4
/// of the largest gradient.
#[test]
fn generator_gradients_from_the_training_plan_match_the_cpu() {
    let g = generator_step();
    let feeds = random_feeds(&g, 11);
    let f64_feeds: HashMap<_, _> = feeds.iter().map(|(k, v)| (k.clone(), v.cast())).collect();
    let cpu = ir::cpu::evaluate::<f64>(&g, &f64_feeds).unwrap_or_else(|e| panic!("CPU: {e}"));
    let (plan, planned) = compiler::compile(&g, &gpu().target()).unwrap();
    compiler::verify::verify(&plan, &planned)
        .unwrap_or_else(|e| panic!("plan checker: {}", e.join("; ")));
    // The plan under test is the one the training planning shapes.
    assert!(plan.memory.recomputed > 0, "nothing recomputed");
    assert!(
        (plan.memory.regions.iter()).any(|r| r.channels == 13 * 8 && r.name.starts_with("grad.")),
        "no 13N-channel gradient region"
    );
    let mut gpu_feeds = HashMap::new();
    for node in &planned.nodes {
        let key = match &node.op {
            Op::Input { name } => name,
            Op::Param { .. } => &node.name,
            _ => continue,
        };
        gpu_feeds.insert(key.clone(), feeds[key].clone());
    }
    let out = runtime::execute(gpu(), &plan, &gpu_feeds).unwrap_or_else(|e| panic!("run: {e}"));
    assert_eq!(out.len(), g.outputs.len());
    let scale = |id: usize| cpu[id].data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let largest = (g.outputs[1..].iter())
        .map(|&(_, id)| scale(id))
        .fold(0.0, f64::max);
    let mut nonzero = 0;
    for ((name, t), (want, id)) in out.iter().zip(&g.outputs) {
        assert_eq!(name, want);
        let c = &cpu[*id];
        assert_eq!(t.shape, c.shape, "{name}");
        let scale = scale(*id);
        let zero = scale <= 1e-9 * largest;
        nonzero += usize::from(!zero);
        for (i, (&x, &y)) in t.data.iter().zip(&c.data).enumerate() {
            let bound = if zero {
                1e-4 * largest
            } else {
                1e-3 * scale.max(y.abs())
            };
            assert!(
                (x as f64 - y).abs() <= bound,
                "`{name}` {:?} element {i} is {x} on the GPU, {y} on the CPU (scale {scale:.3e})",
                c.shape
            );
        }
    }
    assert!(
        2 * nonzero > out.len(),
        "only {nonzero} of {} outputs are non-zero",
        out.len()
    );
}
