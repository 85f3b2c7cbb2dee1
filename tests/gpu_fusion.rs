//! Fused and unfused plans of the same graph give the same numbers on the device (lavapipe without
//! a GPU), and both match the CPU reference (f64): IRD-GAN's generator, the critic's loss with its
//! gradient penalty and gradients (second order), and a generator training step. Every fused plan
//! passes the plan checker. Fused plans also merge independent kernels into one dispatch
//! (`compiler::merge`), unfused ones do not, so these compare the merged kernels too.

mod gpu_support;

use compiler::autodiff::{grad, sum_to_scalar};
use compiler::differentiate::Autodiff;
use compiler::Options;
use gpu_support::{gpu, random_feeds};
use ir::{Graph, Op, Tensor};
use std::collections::HashMap;
use std::path::Path;

fn model(set: &[(&str, &str)]) -> ir::front::Model {
    let set: Vec<(String, String)> = (set.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ir::front::load(Path::new("models/ird_gan.ron"), &set).unwrap_or_else(|e| panic!("{e}"))
}

/// `g` with outputs: its (only) output, then d sum(output) / d p for every parameter p.
fn with_gradients(g: &Graph) -> Graph {
    let (name, out) = g.outputs[0].clone();
    let wrt: Vec<usize> = (0..g.nodes.len())
        .filter(|&i| matches!(g.nodes[i].op, Op::Param { .. }))
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

/// GPUs' fusion policy even on a CPU adapter (which keeps norms out of conv loads), so that
/// conv loads that normalise and activate are checked here on lavapipe too.
const GPU_POLICY: usize = compiler::fuse::MAX_OPS_REREAD;

type Outputs = Vec<(String, Tensor<f32>)>;

/// Compile `g` with or without fusion under the fusion `policy`, check the plan, run it; its
/// outputs, its kernel count before and after fusion, and the graph the plan refers to.
fn run(
    g: &Graph,
    feeds: &HashMap<String, Tensor<f32>>,
    fuse: bool,
    policy: usize,
) -> (Outputs, [usize; 2], Graph) {
    let options = Options {
        fuse,
        ..Options::default()
    };
    // The CPU policy comes with the CPU's Winograd convs, the GPU's without.
    let target = {
        let mut t = gpu().target();
        t.policy.max_ops_in_conv_loads = policy;
        t.policy.winograd_tile = if policy == GPU_POLICY { 0 } else { 4 };
        t
    };
    let (plan, planned) = compiler::compile_with(g, &target, &options)
        .unwrap_or_else(|e| panic!("compile {} (fuse {fuse}): {e}", g.name));
    compiler::verify::verify(&plan, &planned)
        .unwrap_or_else(|e| panic!("plan checker on {} (fuse {fuse}): {}", g.name, e.join("; ")));
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
    (out, [plan.unfused_kernels, plan.kernels.len()], planned)
}

/// Fused, unfused and CPU agree on every output: |a - b| <= 1e-3 * max(scale, |b|), scale the
/// largest |cpu| of that output (sums of many terms round relative to the terms); an output that
/// is zero in exact arithmetic (a conv bias before InstanceNorm) is f32 noise on the device, and
/// must be below 1e-4 of the largest output. `policy` is the targets' fusion policy
/// (`Target::max_ops_in_conv_loads`); returns the graph of the fused plan.
fn fused_matches_unfused(g: &Graph, feeds: &HashMap<String, Tensor<f32>>, policy: usize) -> Graph {
    let mut planned = fused_plans_match_unfused(g, feeds, &[policy]);
    planned.remove(0)
}

/// [`fused_matches_unfused`] for the fused plan under each of `policies`, all against one
/// unfused plan: the GPU policy's, which computes every conv directly (no Winograd products),
/// the plainest reference, compiled and run once (lavapipe's compile of an unfused training
/// step takes most of a minute). Returns the fused plans' graphs, in order.
fn fused_plans_match_unfused(
    g: &Graph,
    feeds: &HashMap<String, Tensor<f32>>,
    policies: &[usize],
) -> Vec<Graph> {
    let f64_feeds: HashMap<_, _> = feeds.iter().map(|(k, v)| (k.clone(), v.cast())).collect();
    let cpu = ir::cpu::evaluate::<f64>(g, &f64_feeds).unwrap_or_else(|e| panic!("CPU: {e}"));
    let (unfused, _, _) = run(g, feeds, false, GPU_POLICY);
    (policies.iter())
        .map(|&policy| fused_agrees(g, feeds, policy, &cpu, &unfused))
        .collect()
}

/// The fused plan under `policy` against the unfused plan's outputs and the CPU's (see
/// [`fused_matches_unfused`]); its graph.
fn fused_agrees(
    g: &Graph,
    feeds: &HashMap<String, Tensor<f32>>,
    policy: usize,
    cpu: &[Tensor<f64>],
    unfused: &Outputs,
) -> Graph {
    // The fused plan's own count before fusion: the unfused plan computes convs directly,
    // where the fused one may compute them as Winograd products, four nodes each.
    let (fused, [unfused_kernels, fused_kernels], planned) = run(g, feeds, true, policy);
    assert!(
        fused_kernels < unfused_kernels,
        "{}: {fused_kernels} kernels fused, {unfused_kernels} unfused (policy {policy})",
        g.name
    );
    let scale = |id: usize| cpu[id].data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let largest = g
        .outputs
        .iter()
        .map(|&(_, id)| scale(id))
        .fold(0.0, f64::max);
    let mut nonzero = 0;
    for (((name, f), (_, u)), (want, id)) in fused.iter().zip(unfused).zip(&g.outputs) {
        assert_eq!(name, want);
        let c = &cpu[*id];
        assert_eq!(f.shape, c.shape, "{name}");
        let scale = scale(*id);
        let zero = scale <= 1e-9 * largest;
        nonzero += usize::from(!zero);
        for (i, ((&a, &b), &y)) in f.data.iter().zip(&u.data).zip(&c.data).enumerate() {
            let bound = if zero {
                1e-4 * largest
            } else {
                1e-3 * scale.max(y.abs())
            };
            for (what, x, r) in [
                ("fused vs unfused", a as f64, b as f64),
                ("fused vs CPU", a as f64, y),
            ] {
                assert!(
                    (x - r).abs() <= bound,
                    "{} (policy {policy}): `{name}` {:?} element {i}, {what}: {x} vs {r} (scale {scale:.3e})",
                    g.name,
                    c.shape
                );
            }
        }
    }
    assert!(
        2 * nonzero > fused.len(),
        "{}: most outputs are zero",
        g.name
    );
    planned
}

/// Whether the fused plan of `g` under `policy` runs some independent kernels as one.
fn merged(g: &Graph, policy: usize) -> bool {
    let mut target = gpu().target();
    target.policy.max_ops_in_conv_loads = policy;
    let (plan, _) = compiler::compile(g, &target).unwrap();
    plan.kernels.len() < plan.unmerged_kernels && plan.kernels.iter().any(|k| k.parts.len() > 1)
}

/// Whether a plan's graph split norms over concats (`compiler::channelwise`).
fn split(planned: &Graph) -> bool {
    (planned.nodes.iter()).any(|n| n.name.ends_with(".part1"))
}

/// Whether a plan's graph reads norms' gradients' plane statistics from their stats and takes
/// their two plane means in one reduction (`compiler::lower`, `compiler::plane_means`).
fn norm_gradients_share_reductions(planned: &Graph) -> bool {
    let has = |f: fn(&Op) -> bool| planned.nodes.iter().any(|n| f(&n.op));
    has(|op| matches!(op, Op::PlaneMeans(_)))
        && has(|op| matches!(op, Op::PlaneStat(ir::ops::PlaneStat { index: 1 })))
}

/// Whether a plan's graph computes convs as Winograd products (`compiler::winograd`).
fn winograd(planned: &Graph) -> bool {
    (planned.nodes.iter()).any(|n| matches!(n.op, Op::WinogradOutput(_)))
}

/// With the GPU policy, and with the CPU's (norms written out, one op in a conv's loads, 3x3
/// convs as Winograd products), under which the dense blocks' norms and ReLUs are split over
/// their concats; at N = 16 the 3x3 convs are wide enough for Winograd (64 -> 16 and 16 -> 16).
#[test]
fn generator_fused_matches_unfused() {
    let m = model(&[("N", "4")]);
    let g = m
        .build("generator", &[("blurred".into(), vec![1, 3, 32, 32])])
        .unwrap();
    let planned = fused_matches_unfused(&g, &random_feeds(&g, 21), GPU_POLICY);
    assert!(!split(&planned) && !winograd(&planned) && merged(&g, GPU_POLICY));
    let m = model(&[("N", "16")]);
    let g = m
        .build("generator", &[("blurred".into(), vec![1, 3, 32, 32])])
        .unwrap();
    let planned = fused_matches_unfused(&g, &random_feeds(&g, 24), 1);
    assert!(split(&planned) && winograd(&planned) && merged(&g, 1));
}

#[test]
fn critic_loss_with_gradient_penalty_fused_matches_unfused() {
    let m = model(&[("ndf", "4"), ("H", "16"), ("W", "16")]);
    let loss = m.build_with("critic_loss", &[], &Autodiff).unwrap();
    let g = with_gradients(&loss);
    let mut feeds = random_feeds(&g, 22);
    feeds.insert("alpha".into(), Tensor::new(&[1, 1, 1, 1], vec![0.3]));
    let planned = fused_matches_unfused(&g, &feeds, GPU_POLICY);
    assert!(!split(&planned) && norm_gradients_share_reductions(&planned));
}

#[test]
fn generator_training_step_fused_matches_unfused() {
    let m = model(&[("N", "4"), ("ndf", "4"), ("H", "8"), ("W", "8")]);
    let loss = m.build_with("generator_loss", &[], &Autodiff).unwrap();
    let g = with_gradients(&loss);
    let [gpu_planned, cpu_planned] =
        fused_plans_match_unfused(&g, &random_feeds(&g, 23), &[GPU_POLICY, 1])
            .try_into()
            .expect("two plans");
    assert!(!split(&gpu_planned) && !winograd(&gpu_planned));
    // The CPU's: VGG's 3x3 convs (64 channels and more) and their input gradients as Winograd
    // products.
    assert!(
        winograd(&cpu_planned) && norm_gradients_share_reductions(&cpu_planned) && merged(&g, 1)
    );
}

/// The activations of newer restoration networks, written in a model file, in convs' loads and
/// stores, in a sigmoid channel gate and a SimpleGate (the product of a conv's two channel
/// halves), forward and with the parameters' gradients.
#[test]
fn activations_fused_match_unfused() {
    let src = r#"Model(
    params: { C: 4 },
    graphs: {
        net: Graph(
            inputs: { x: [1, 3, 12, 12] },
            nodes: {
                c1: Conv(in: x, out: C, kernel: 3),
                a1: Gelu(in: c1),
                c2: Conv(in: a1, out: "2 * C", kernel: 3),
                first: Slice(in: c2, to: C),
                second: Slice(in: c2, from: C),
                simple_gate: Mul(a: first, b: second),
                a2: Silu(in: simple_gate),
                gate: Sigmoid(in: a2),
                gated: Mul(a: a2, b: gate),
                c3: Conv(in: gated, out: C, kernel: 1),
                a3: Gelu(in: c3, tanh: true),
                a4: Softplus(in: a3),
                c4: Conv(in: a4, out: 3, kernel: 3),
                y: Erf(in: c4),
            },
            outputs: { y: y },
        ),
    },
)"#;
    let m = ir::front::parse(src, "activations.ron", &[]).unwrap_or_else(|e| panic!("{e}"));
    let g = m.build_with("net", &[], &Autodiff).unwrap();
    let g = with_gradients(&g);
    fused_plans_match_unfused(&g, &random_feeds(&g, 31), &[GPU_POLICY, 1]);
}

/// Pixel shuffles, resizes and average pooling between convs, with elementwise ops in their
/// loads and a squeeze-and-excitation style gate (a plane mean, `Mean` over H and W, broadcast
/// back by `Mul`), forward and with the parameters' gradients (the adjoints of each).
#[test]
fn layout_ops_fused_match_unfused() {
    let src = r#"Model(
    graphs: {
        net: Graph(
            inputs: { x: [1, 3, 8, 8] },
            nodes: {
                c1: Conv(in: x, out: 8, kernel: 3),
                a1: Tanh(in: c1),
                up: PixelShuffle(in: a1, factor: 2),
                a2: LeakyRelu(in: up, slope: 0.2),
                down: PixelUnshuffle(in: a2, factor: 2),
                c2: Conv(in: down, out: 4, kernel: 3),
                near: Resize(in: c2, factor: 2),
                a3: Sigmoid(in: near),
                smooth: Resize(in: a3, factor: 2, mode: "bilinear"),
                pool: AvgPool(in: smooth, kernel: 3, stride: 2, pad: 1),
                gap: Mean(in: pool, axes: [2, 3]),
                gated: Mul(a: pool, b: gap),
                avg: AvgPool(in: gated, kernel: 2),
                y: Conv(in: avg, out: 3, kernel: 3),
            },
            outputs: { y: y },
        ),
    },
)"#;
    let m = ir::front::parse(src, "layout.ron", &[]).unwrap_or_else(|e| panic!("{e}"));
    let g = m.build_with("net", &[], &Autodiff).unwrap();
    let g = with_gradients(&g);
    fused_plans_match_unfused(&g, &random_feeds(&g, 41), &[GPU_POLICY, 1]);
}

/// Restormer's channel attention written in a model file: q, k, v from 1x1 convs, split into
/// heads of C / heads channels over H * W pixels, q and k normalised along the pixels, the
/// softmax of their scaled products weighing v, the heads merged back and projected; forward
/// and with the parameters' gradients.
#[test]
fn channel_attention_fused_matches_unfused() {
    let src = r#"Model(
    params: { C: 4, heads: 2, H: 3, W: 5 },
    graphs: {
        net: Graph(
            inputs: { x: [1, C, H, W] },
            nodes: {
                q: Conv(in: x, out: C, kernel: 1),
                k: Conv(in: x, out: C, kernel: 1),
                v: Conv(in: x, out: C, kernel: 1),
                qh: Reshape(in: q, shape: [1, heads, "C / heads", "H * W"]),
                kh: Reshape(in: k, shape: [1, heads, "C / heads", "H * W"]),
                vh: Reshape(in: v, shape: [1, heads, "C / heads", "H * W"]),
                q_norm: Seq(in: qh, layers: [Square, Sum(axes: [3]), Sqrt]),
                qn: Div(a: qh, b: q_norm),
                k_norm: Seq(in: kh, layers: [Square, Sum(axes: [3]), Sqrt]),
                kn: Div(a: kh, b: k_norm),
                scores: MatMul(a: qn, b: kn, trans_b: true),
                scale: Const(shape: [1], values: [2.5]),
                scaled: Mul(a: scores, b: scale),
                attn: Softmax(in: scaled, axis: 3),
                mixed: MatMul(a: attn, b: vh),
                merged: Reshape(in: mixed, shape: [1, C, H, W]),
                y: Conv(in: merged, out: C, kernel: 1),
            },
            outputs: { y: y },
        ),
    },
)"#;
    let m = ir::front::parse(src, "attention.ron", &[]).unwrap_or_else(|e| panic!("{e}"));
    let g = m.build_with("net", &[], &Autodiff).unwrap();
    let g = with_gradients(&g);
    fused_plans_match_unfused(&g, &random_feeds(&g, 41), &[GPU_POLICY, 1]);
}

/// models/nafnet.ron's NAF block: layer norms, a depthwise conv, SimpleGates, the simplified
/// channel attention and the learnable branch scales, forward and with every parameter's
/// gradient, under both fusion policies.
#[test]
fn nafnet_block_fused_matches_unfused() {
    let set: Vec<(String, String)> = [("width", "4"), ("H", "8"), ("W", "8")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let m = ir::front::load(Path::new("models/nafnet.ron"), &set).unwrap_or_else(|e| panic!("{e}"));
    let g = m.build_with("block", &[], &Autodiff).unwrap();
    let g = with_gradients(&g);
    fused_plans_match_unfused(&g, &random_feeds(&g, 51), &[GPU_POLICY, 1]);
}
