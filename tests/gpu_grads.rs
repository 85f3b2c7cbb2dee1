//! Gradients of IRD-GAN's objectives computed on the device (lavapipe without a GPU): the graph of
//! models/ird_gan.ron, differentiated by `compiler::autodiff` with respect to every parameter and
//! input, compiled and run, against the CPU reference (f64) of the same differentiated graph. The
//! critic's loss holds a gradient penalty, so its parameters' gradients are second order. Every
//! training plan also passes the plan checker. Last, `irdc grad` end to end.

mod gpu_support;

use compiler::autodiff::{grad, sum_to_scalar};
use compiler::differentiate::Autodiff;
use gpu_support::{gpu, random_feeds};
use ir::ops::{Binary, Const};
use ir::{Graph, Op, Tensor};
use std::collections::HashMap;
use std::path::Path;

fn model(set: &[(&str, &str)]) -> ir::front::Model {
    let set: Vec<(String, String)> = set
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ir::front::load(Path::new("models/ird_gan.ron"), &set).unwrap_or_else(|e| panic!("{e}"))
}

/// `g` with outputs: its (only) output, then d sum(output) / d v for every parameter and input v,
/// named as v (what `irdc grad` computes).
fn with_gradients(g: &Graph) -> Graph {
    let (name, out) = g.outputs[0].clone();
    let wrt: Vec<usize> = (0..g.nodes.len())
        .filter(|&i| matches!(g.nodes[i].op, Op::Param { .. } | Op::Input { .. }))
        .collect();
    let mut g = g.clone();
    let scalar = sum_to_scalar(&mut g, out).unwrap();
    let (mut t, grads) = grad(&g, scalar, &wrt).unwrap_or_else(|e| panic!("{e}"));
    t.outputs = vec![(name, out)];
    for (&w, &d) in wrt.iter().zip(&grads) {
        t.outputs.push((g.nodes[w].name.clone(), d));
    }
    t
}

/// Compile and run `g` on the device, check the plan, and compare every output with the CPU:
/// |gpu - cpu| <= 1e-3 * max(scale, |cpu|), scale the largest |cpu| of that output. Why the
/// scale: a gradient element is a long sum of terms of both signs (a weight gradient sums over
/// every pixel, a second-order one over two passes), so f32 rounding is relative to the size of
/// the terms, which the tensor's largest element measures, not to an element that cancelled to
/// near zero. A gradient that is zero in exact arithmetic (the bias of a conv followed by
/// InstanceNorm, which subtracts it again) is f32 cancellation noise on the device: it must be
/// below 1e-4 of the largest gradient. Returns the GPU outputs by name.
fn check_gradients(
    g: &Graph,
    feeds: &HashMap<String, Tensor<f32>>,
) -> HashMap<String, Tensor<f32>> {
    let f64_feeds: HashMap<String, Tensor<f64>> =
        feeds.iter().map(|(k, v)| (k.clone(), v.cast())).collect();
    let cpu = ir::cpu::evaluate::<f64>(g, &f64_feeds).unwrap_or_else(|e| panic!("CPU: {e}"));
    let (plan, simplified) =
        compiler::compile(g, &gpu().target()).unwrap_or_else(|e| panic!("compile: {e}"));
    compiler::verify::verify(&plan, &simplified)
        .unwrap_or_else(|e| panic!("plan checker on {}: {}", g.name, e.join("; ")));
    // The plan reads the simplified graph's sources only; it refuses any other feed.
    let mut gpu_feeds = HashMap::new();
    for node in &simplified.nodes {
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
    let largest = g.outputs[1..]
        .iter()
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
            let err = (x as f64 - y).abs();
            let bound = if zero {
                1e-4 * largest
            } else {
                1e-3 * scale.max(y.abs())
            };
            assert!(
                err <= bound,
                "{}: `{name}` {:?} element {i} is {x} on the GPU, {y} on the CPU (scale {scale:.3e}, largest {largest:.3e})",
                g.name,
                c.shape
            );
        }
    }
    // Most gradients must be non-zero, or the comparison proves little.
    assert!(
        2 * nonzero > out.len(),
        "{}: only {nonzero} of {} outputs are non-zero",
        g.name,
        out.len()
    );
    out.into_iter().collect()
}

#[test]
fn critic_loss_with_gradient_penalty() {
    let m = model(&[("ndf", "4"), ("H", "16"), ("W", "16")]);
    let loss = m.build_with("critic_loss", &[], &Autodiff).unwrap();
    let g = with_gradients(&loss);
    let mut feeds = random_feeds(&g, 3);
    feeds.insert("alpha".into(), Tensor::new(&[1, 1, 1, 1], vec![0.3]));
    let out = check_gradients(&g, &feeds);
    assert!(out.contains_key("critic.conv1.weight"));
    assert!(out.contains_key("alpha"));
}

#[test]
fn generator_loss_with_perceptual_term() {
    // 8x8: VGG19's 64..256 channels make the f64 CPU reference the slow part (16x16: ~6 s).
    let m = model(&[("N", "4"), ("ndf", "4"), ("H", "8"), ("W", "8")]);
    let loss = m.build_with("generator_loss", &[], &Autodiff).unwrap();
    let g = with_gradients(&loss);
    let out = check_gradients(&g, &random_feeds(&g, 4));
    assert!(out.contains_key("vgg19.features.14.weight"));
    assert!(out.contains_key("generator.tail_conv.weight"));
}

#[test]
fn generator_32x32_weighted_output() {
    let m = model(&[("N", "8")]);
    let mut g = m
        .build("generator", &[("blurred".into(), vec![1, 3, 32, 32])])
        .unwrap();
    // sum(output * R), R fixed and random: every output element weighs differently.
    let out = g.outputs[0].1;
    let shape = g.nodes[out].shape.clone();
    let r: Vec<f64> = (0..ir::numel(&shape))
        .map(|i| ((i * 7919 % 1000) as f64 / 500.0) - 1.0)
        .collect();
    let r = g
        .push("r", Op::Const(Const { shape, values: r }), vec![])
        .unwrap();
    let weighted = g
        .push("weighted", Op::Binary(Binary::Mul), vec![out, r])
        .unwrap();
    g.outputs = vec![("weighted".into(), weighted)];
    let t = with_gradients(&g);
    let out = check_gradients(&t, &random_feeds(&t, 5));
    assert_eq!(out["blurred"].shape, [1, 3, 32, 32]);
}

#[test]
fn irdc_grad_writes_one_tensor_per_parameter_and_input() {
    let dir = std::env::temp_dir().join(format!("irdc-grad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output) = (dir.join("in.safetensors"), dir.join("grads.safetensors"));
    let image = |k: usize| {
        Tensor::new(
            &[1, 3, 16, 16],
            (0..768)
                .map(|i| ((i * k % 97) as f32 / 48.5) - 1.0)
                .collect(),
        )
    };
    let inputs = vec![
        ("fake".to_string(), image(13)),
        ("sharp".to_string(), image(29)),
        ("alpha".to_string(), Tensor::new(&[1, 1, 1, 1], vec![0.25])),
    ];
    runtime::io::write_tensors(&input, &inputs, &HashMap::new()).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_irdc"))
        .args([
            "grad",
            "models/ird_gan.ron",
            "--set",
            "ndf=4",
            "--graph",
            "critic_loss",
        ])
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--seed", "2"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let file = runtime::io::read_tensors(&output).unwrap();
    let m = model(&[("ndf", "4")]);
    let shapes: Vec<(String, Vec<usize>)> = inputs
        .iter()
        .map(|(n, t)| (n.clone(), t.shape.clone()))
        .collect();
    let g = m.build_with("critic_loss", &shapes, &Autodiff).unwrap();
    let mut want: Vec<(String, Vec<usize>)> = vec![("loss".into(), vec![1, 1, 1, 1])];
    want.extend(
        g.nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Param { .. } | Op::Input { .. }))
            .map(|n| (n.name.clone(), n.shape.clone())),
    );
    let mut have: Vec<(String, Vec<usize>)> = file
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.shape.clone()))
        .collect();
    have.sort();
    want.sort();
    assert_eq!(have, want);
    // The loss is the graph's, with the seeded weights.
    let mut feeds: HashMap<String, Tensor<f64>> = ir::init::init_params(&g, 2)
        .into_iter()
        .map(|(n, t)| (n, t.cast()))
        .collect();
    feeds.extend(inputs.iter().map(|(n, t)| (n.clone(), t.cast())));
    let cpu = ir::cpu::evaluate::<f64>(&g, &feeds).unwrap();
    let want_loss = cpu[g.outputs[0].1].data[0];
    let got = file.get("loss").unwrap().data[0] as f64;
    assert!(
        (got - want_loss).abs() <= 1e-4 * want_loss.abs().max(1.0),
        "loss {got} vs {want_loss}"
    );
}

fn irdc(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_irdc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn irdc_plan_train_plans_the_whole_step_and_checks_it() {
    let o = irdc(&[
        "plan",
        "models/ird_gan.ron",
        "--graph",
        "critic_loss",
        "--set",
        "ndf=4",
        "--input",
        "fake=1x3x16x16",
        "--input",
        "sharp=1x3x16x16",
        "--train",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("plan `critic_loss.train`: "), "{out}");
    // Forward, backward (weight gradients of the shared critic) and the memory report.
    assert!(out.contains("conv2d_weight_grad"), "{out}");
    assert!(out.contains("\nmemory: peak "), "{out}");
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("plan check: passed ("), "{last}");
    let o = irdc(&[
        "plan",
        "models/ird_gan.ron",
        "--graph",
        "critic_loss",
        "--train",
        "--of",
        "nope",
    ]);
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim_end(),
        "error: graph critic_loss has no output `nope`; its outputs: loss"
    );
}

/// The weight-gradient kernels of `irdc plan models/ird_gan.ron --graph generator_loss --train`
/// (tiny sizes) with `extra` arguments.
fn generator_step_weight_grads(extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "plan",
        "models/ird_gan.ron",
        "--graph",
        "generator_loss",
        "--set",
        "N=4",
        "--set",
        "ndf=4",
        "--set",
        "H=16",
        "--set",
        "W=16",
        "--train",
    ];
    args.extend_from_slice(extra);
    let o = irdc(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (String::from_utf8_lossy(&o.stdout).lines())
        .filter_map(|l| l.split_whitespace().find(|w| w.contains("_weight_grad:")))
        .map(|w| w.trim_end_matches(':').to_string())
        .collect()
}

#[test]
fn plan_train_of_a_loss_graph_differentiates_what_its_step_trains() {
    // As `irdc train`: the generator's step needs no gradient of the critic's or VGG19's weights.
    let trained = generator_step_weight_grads(&[]);
    assert!(!trained.is_empty());
    for k in &trained {
        assert!(k.contains(":grad.out."), "{k} in {trained:?}");
    }
    let all = generator_step_weight_grads(&["--all-params"]);
    assert!(all.iter().any(|k| k.contains(":grad.d_out.")), "{all:?}");
    assert!(all.iter().any(|k| k.contains(":grad.f_out.")), "{all:?}");
    for k in &trained {
        assert!(all.contains(k), "{k}");
    }
}
