//! The plan checker (compiler::verify) on every plan of the shipped models: no two values alive at
//! the same time share bytes, concat slices alias their region, every input is written before it
//! is read. Planning needs no GPU, so these run at full size.

use compiler::{compile, verify::verify, Target};

fn plan(
    model: &str,
    sets: &[(&str, &str)],
    graph: &str,
    inputs: &[(&str, Vec<usize>)],
    target: &Target,
) -> compiler::Plan {
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let model = ir::front::load(std::path::Path::new(model), &sets).unwrap();
    let inputs: Vec<(String, Vec<usize>)> = inputs
        .iter()
        .map(|(n, s)| (n.to_string(), s.clone()))
        .collect();
    let graph = model.build(graph, &inputs).unwrap();
    let (plan, simplified) = compile(&graph, target).unwrap();
    if let Err(problems) = verify(&plan, &simplified) {
        panic!(
            "plan of {graph:?} fails the checker:\n{}",
            problems.join("\n"),
            graph = simplified.name
        );
    }
    plan
}

#[test]
fn every_ird_gan_and_deblurgan_plan_passes_the_checker() {
    let t = Target::default();
    for graph in ["generator", "critic", "vgg19"] {
        plan("models/ird_gan.ron", &[], graph, &[], &t);
        plan("models/ird_gan.ron", &[("N", "8")], graph, &[], &t);
    }
    plan("models/deblurgan.ron", &[], "generator", &[], &t);
}

#[test]
fn the_dense_features_of_ird_gan_are_one_region_with_a_slice_per_block() {
    let p = plan(
        "models/ird_gan.ron",
        &[],
        "generator",
        &[],
        &Target::default(),
    );
    let region = p
        .memory
        .regions
        .iter()
        .find(|r| r.channels == 13 * 64)
        .expect("a 13N-channel region");
    // down2's 4N channels, then each block's N new ones (and each block's own concat output as a prefix).
    let firsts: Vec<(usize, usize)> = region.slices.iter().map(|&(_, c0, n)| (c0, n)).collect();
    for k in 0..9 {
        assert!(
            firsts.contains(&((4 + k) * 64, 64)),
            "block {k}'s new channels are a slice: {firsts:?}"
        );
    }
    assert!(
        firsts.contains(&(0, 256)),
        "down2 is the first slice: {firsts:?}"
    );
    assert!(
        !p.kernels
            .iter()
            .any(|k| k.template == "concat" || k.name.starts_with("concat:ird")),
        "no concat is executed"
    );
    assert!(p.memory.peak_bytes * 4 < p.memory.naive_bytes);
}

#[test]
fn a_full_gopro_frame_is_split_across_bindings_and_still_checks() {
    // 1280x720 at N=64: the 64-channel full-resolution tensors are 225 MiB, over lavapipe's 128 MiB.
    let p = plan(
        "models/ird_gan.ron",
        &[],
        "generator",
        &[("blurred", vec![1, 3, 720, 1280])],
        &Target::default(),
    );
    assert!(
        p.values.iter().any(|v| v.pieces.len() > 1),
        "some value is split"
    );
    assert!(p.memory.arenas.iter().all(|a| a.bytes <= 128 << 20));
}

#[test]
fn an_artificially_small_binding_splits_the_small_generator_and_still_checks() {
    let t = {
        let mut t = Target::default();
        t.limits.max_binding_bytes = 64 * 1024;
        t
    };
    let p = plan(
        "models/ird_gan.ron",
        &[("N", "8")],
        "generator",
        &[("blurred", vec![1, 3, 64, 64])],
        &t,
    );
    assert!(p.values.iter().filter(|v| v.pieces.len() > 1).count() > 10);
}

/// A training plan: the graph's scalar output differentiated w.r.t. every parameter, as
/// `irdc plan --train` builds it.
fn train_plan(sets: &[(&str, &str)], graph: &str) -> compiler::Plan {
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let model = ir::front::load(std::path::Path::new("models/ird_gan.ron"), &sets).unwrap();
    let mut graph = model
        .build_with(graph, &[], &compiler::differentiate::Autodiff)
        .unwrap();
    let (_, out) = graph.outputs[0].clone();
    let loss = compiler::autodiff::sum_to_scalar(&mut graph, out).unwrap();
    let params: Vec<usize> = graph.params().map(|(id, _)| id).collect();
    let (trained, _) = compiler::autodiff::grad(&graph, loss, &params).unwrap();
    let (plan, simplified) = compile(&trained, &Target::default()).unwrap();
    if let Err(problems) = verify(&plan, &simplified) {
        panic!(
            "training plan of {} fails the checker:\n{}",
            simplified.name,
            problems.join("\n")
        );
    }
    plan
}

#[test]
fn every_training_plan_passes_the_checker() {
    // Full size for the critic step (N=64, ndf=64, 256x256); the generator steps at N=8 keep the
    // test quick (the full-size ones are checked by `irdc plan --train`, see the README).
    let critic = train_plan(&[], "critic_loss");
    assert!(critic.memory.recomputed > 0);
    for graph in ["critic_loss", "generator_loss", "content_loss", "generator"] {
        let p = train_plan(&[("N", "8"), ("H", "64"), ("W", "64")], graph);
        assert!(p.memory.peak_bytes < p.memory.naive_bytes);
    }
}
