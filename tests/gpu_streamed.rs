//! Streamed runs on the device (lavapipe here) against the whole image on the device: the same
//! result within 1e-3 on the [-1, 1] scale, and one set of pipelines for every image size.

mod gpu_support;

use compiler::stream;
use gpu_support::gpu;
use ir::{Graph, Tensor, ValueKind};
use runtime::{Executable, PipelineCache, Streamed};
use std::collections::HashMap;

fn model(file: &str, sets: &[(&str, &str)]) -> ir::front::Model {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(file);
    let sets: Vec<(String, String)> = (sets.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ir::front::load(&path, &sets).unwrap()
}

fn build(m: &ir::front::Model, h: usize, w: usize) -> Result<Graph, String> {
    let input = m.input_shapes("generator").unwrap()[0].0.clone();
    m.build_with(
        "generator",
        &[(input, vec![1, 3, h, w])],
        &compiler::differentiate::Autodiff,
    )
    .map_err(|e| e.to_string())
}

/// Weights from the model's initialisers, those that start at zero made small and nonzero so
/// that every op shows in the result.
fn weights(g: &Graph) -> HashMap<String, Tensor<f32>> {
    (ir::init::init_params(g, 3).into_iter())
        .map(|(name, mut t)| {
            if t.data.iter().all(|&v| v == 0.0) {
                for (i, v) in t.data.iter_mut().enumerate() {
                    *v = 0.2 * (i as f32 * 0.7 + 0.3).sin();
                }
            }
            (name, t)
        })
        .collect()
}

fn image(h: usize, w: usize) -> Tensor<f32> {
    let data = (0..3 * h * w)
        .map(|i| {
            let (c, y, x) = (i / (h * w), (i / w) % h, i % w);
            ((x as f32 * 0.21 + c as f32).sin() * (y as f32 * 0.13).cos()).clamp(-1.0, 1.0)
        })
        .collect();
    Tensor::new(&[1, 3, h, w], data)
}

/// The whole image through one executable of its size.
fn whole(g: &Graph, params: &HashMap<String, Tensor<f32>>, x: &Tensor<f32>) -> Tensor<f32> {
    let (plan, _) = compiler::compile(g, &gpu().target()).unwrap();
    let exe = Executable::new(gpu(), &plan).unwrap();
    for v in plan.values.iter().filter(|v| !v.pieces.is_empty()) {
        match v.kind {
            ValueKind::Input => exe.write(v.node, &x.data).unwrap(),
            ValueKind::Param => exe.write(v.node, &params[&v.name].data).unwrap(),
            _ => {}
        }
    }
    exe.run().unwrap();
    let out = plan.outputs[0].1;
    Tensor::new(&plan.values[out].shape, exe.read(out).unwrap())
}

fn largest_difference(a: &Tensor<f32>, b: &Tensor<f32>) -> f32 {
    assert_eq!(a.shape, b.shape);
    (a.data.iter().zip(&b.data))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn ird_gan_streamed_on_the_device_equals_the_whole_image_at_several_sizes() {
    let m = model("ird_gan.ron", &[("N", "2")]);
    let plan = stream::plan_fitted(&|s| build(&m, s, s), 48).unwrap();
    let params = weights(&plan.graph);
    let streamed = Streamed::compile(plan, &gpu().target()).unwrap();
    let mut cache = PipelineCache::new();
    let mut pipelines = Vec::new();
    // Sizes that split into several windows on each axis (NAFNet's streaming, with its global
    // means, is checked against the CPU reference in compiler/tests/stream.rs).
    for (h, w) in [(92, 120), (124, 84)] {
        let x = image(h, w);
        let mut windows = 0;
        let got = (streamed.run(gpu(), &mut cache, &params, x.clone(), &mut |_, n| {
            windows = n
        }))
        .unwrap();
        let expected = whole(&build(&m, h, w).unwrap(), &params, &x);
        let diff = largest_difference(&got, &expected);
        assert!(diff < 1e-3, "{h}x{w}: largest difference {diff}");
        assert!(
            windows > streamed.plan.stages.len(),
            "{h}x{w}: {windows} windows"
        );
        pipelines.push(cache.len());
    }
    // One plan for every size: the later sizes compile nothing new.
    assert_eq!(
        pipelines[0], pipelines[1],
        "pipelines after each size: {pipelines:?}"
    );
}

#[test]
fn an_image_below_the_window_is_refused_with_the_sizes() {
    let m = model("ird_gan.ron", &[("N", "2")]);
    let plan = stream::plan_fitted(&|s| build(&m, s, s), 48).unwrap();
    let params = weights(&plan.graph);
    let streamed = Streamed::compile(plan, &gpu().target()).unwrap();
    let side = streamed.plan.window[0];
    let err = (streamed.run(
        gpu(),
        &mut PipelineCache::new(),
        &params,
        image(40, 200),
        &mut |_, _| {},
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "a 200x40 image does not fit windows of {side}x{side}: it needs sides of at least the \
             window's, multiples of 4"
        )
    );
}
