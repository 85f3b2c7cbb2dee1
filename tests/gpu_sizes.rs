//! Kernels that take sizes as data (`compiler::Sizes::Data`), on the device against the CPU
//! reference: IRD-GAN's generator at several sizes through one pipeline cache, whose pipelines
//! do not grow after the first size, for a CPU adapter's policy and a GPU's (workgroup tiles and
//! tree sums, whose barriers make the kernels read sizes from the uniform); values split over
//! bindings, at two sizes; and a training step's gradients. (That the WGSL is the same at every
//! size, for every model: compiler/tests/sizes.rs.)

mod gpu_support;

use compiler::{DeviceKind, Sizes, Target};
use gpu_support::{check_on, check_within, gpu, random_feeds};
use ir::{Graph, Op};
use runtime::{Executable, PipelineCache};
use std::path::Path;

fn generator(h: usize, w: usize) -> Graph {
    let set = [("N".to_string(), "4".to_string())];
    let model = ir::front::load(Path::new("models/ird_gan.ron"), &set).unwrap();
    (model.build("generator", &[("blurred".into(), vec![1, 3, h, w])]))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn targets() -> [(&'static str, Target); 2] {
    let gpu_policy = Target::new(gpu().target().limits, DeviceKind::Gpu, &Default::default());
    [
        ("CPU policy", gpu().target_for(Sizes::Data)),
        ("GPU policy", gpu_policy.with_sizes(Sizes::Data)),
    ]
}

#[test]
fn one_set_of_pipelines_runs_the_generator_at_every_size() {
    for (what, target) in targets() {
        let mut cache = PipelineCache::new();
        let mut counts = Vec::new();
        // A width no run of 4 divides (max pooling cuts its last run), and a height of 36.
        for (h, w) in [(24, 32), (36, 20), (28, 44)] {
            let g = generator(h, w);
            let (plan, _) = check_on(&g, &target, &random_feeds(&g, 7));
            Executable::with_cache(gpu(), &plan, &mut cache).unwrap();
            counts.push(cache.len());
        }
        assert!(counts[0] > 10, "{what}: {counts:?}");
        assert!(counts.iter().all(|&c| c == counts[0]), "{what}: {counts:?}");
    }
    // Specialised, each size compiles its own.
    let mut cache = PipelineCache::new();
    let mut counts = Vec::new();
    for (h, w) in [(24, 32), (36, 20)] {
        let (plan, _) = compiler::compile(&generator(h, w), &gpu().target()).unwrap();
        Executable::with_cache(gpu(), &plan, &mut cache).unwrap();
        counts.push(cache.len());
    }
    assert!(counts[1] > counts[0] + 10, "specialised: {counts:?}");
}

#[test]
fn values_split_over_bindings_take_their_channel_ranges_as_data() {
    for (what, target) in targets() {
        // Bindings of 16 KiB: the generator's full-size values (N = 4 channels, 25 KiB at
        // 40x40, 33 KiB at 44x48) split in two and in four.
        let mut small = target;
        small.limits.max_binding_bytes = 16 * 1024;
        for (h, w) in [(40, 40), (44, 48)] {
            let g = generator(h, w);
            let (plan, _) = check_on(&g, &small, &random_feeds(&g, 11));
            let split = plan.values.iter().filter(|v| v.pieces.len() > 1).count();
            assert!(split > 0, "{what} at {h}x{w}: nothing split");
        }
    }
}

#[test]
fn a_training_step_takes_sizes_as_data() {
    let mut g = generator(16, 20);
    let out = g.outputs[0].1;
    let wrt: Vec<usize> = (0..g.nodes.len())
        .filter(|&i| matches!(g.nodes[i].op, Op::Param { .. }))
        .collect();
    let s = compiler::autodiff::sum_to_scalar(&mut g, out).unwrap();
    let (mut step, _) = compiler::autodiff::grad(&g, s, &wrt).unwrap();
    // The output and a few parameters' gradients: the input's first conv, a block's, the tail's.
    step.outputs.truncate(4);
    // Gradients sum over every pixel in f32, as tests/gpu_grads.rs allows for.
    for (_, target) in targets() {
        check_within(&step, &target, &random_feeds(&step, 5), 1e-3);
    }
}
