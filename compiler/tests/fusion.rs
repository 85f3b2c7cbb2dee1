//! Fusion's structure (compiler/src/fuse.rs): which nodes each kernel carries out, how many
//! kernels there are before and after, and that fused plans pass the plan checker. The numbers
//! (fused against unfused, on the device) are in tests/gpu_fusion.rs.

use compiler::{compile, compile_with, verify::verify, Options, Plan, Target};
use ir::ops::{Binary, Conv2d, Init, InstanceNorm, Unary};
use ir::{Graph, Node, NodeId, Op};

fn source(g: &mut Graph, name: &str, op: Op, shape: &[usize]) -> NodeId {
    g.nodes.push(Node {
        name: name.into(),
        op,
        inputs: vec![],
        shape: shape.to_vec(),
    });
    g.nodes.len() - 1
}

fn input(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
    source(g, name, Op::Input { name: name.into() }, shape)
}

/// A bias-free convolution with a `k` x `k` kernel, same size out.
fn conv(g: &mut Graph, name: &str, x: NodeId, out: usize, k: usize) -> NodeId {
    let c = g.nodes[x].shape[1];
    let init = Init::Normal { std: 0.02 };
    let w = source(
        g,
        &format!("{name}.weight"),
        Op::Param { init },
        &[out, c, k, k],
    );
    let op = Op::Conv2d(Conv2d {
        stride: 1,
        pad: k / 2,
        bias: false,
        groups: 1,
    });
    g.push(name, op, vec![x, w]).unwrap()
}

fn op(g: &mut Graph, name: &str, op: Op, inputs: &[NodeId]) -> NodeId {
    g.push(name, op, inputs.to_vec()).unwrap()
}

/// Compile fused and unfused; both pass the checker, and the fused plan says how many kernels
/// the unfused one has.
fn plans(g: &Graph) -> (Plan, Plan) {
    let (fused, fg) = compile(g, &Target::default()).unwrap();
    let off = Options {
        fuse: false,
        ..Options::default()
    };
    let (unfused, ug) = compile_with(g, &Target::default(), &off).unwrap();
    for (p, pg) in [(&fused, &fg), (&unfused, &ug)] {
        if let Err(e) = verify(p, pg) {
            panic!("the checker rejects `{}`:\n{}", g.name, e.join("\n"));
        }
    }
    // The WGSL of every fused kernel is valid (as wgpu will check it).
    for k in &fused.kernels {
        if let Err(e) = compiler::codegen::validate_wgsl(&k.wgsl) {
            panic!("{} does not validate:\n{e}\n{}", k.name, k.wgsl);
        }
    }
    assert_eq!(fused.unfused_kernels, unfused.kernels.len(), "{}", g.name);
    assert_eq!(unfused.unfused_kernels, unfused.kernels.len());
    (fused, unfused)
}

fn names(p: &Plan) -> Vec<(String, Vec<String>)> {
    (p.kernels.iter())
        .map(|k| (k.name.clone(), k.nodes.clone()))
        .collect()
}

/// conv3x3 -> InstanceNorm -> ReLU -> conv1x1, as in every IRD block.
fn bottleneck() -> Graph {
    let mut g = Graph {
        name: "bottleneck".into(),
        ..Graph::default()
    };
    let x = input(&mut g, "x", &[2, 4, 8, 8]);
    let c1 = conv(&mut g, "c1", x, 8, 3);
    let norm = op(
        &mut g,
        "norm",
        Op::InstanceNorm(InstanceNorm { eps: 1e-5 }),
        &[c1],
    );
    let act = op(&mut g, "act", Op::Unary(Unary::Relu), &[norm]);
    let c2 = conv(&mut g, "c2", act, 4, 1);
    g.outputs = vec![("y".into(), c2)];
    g
}

#[test]
fn ird_bottleneck_is_a_stats_kernel_and_one_conv() {
    let g = bottleneck();
    let (fused, unfused) = plans(&g);
    // Unfused: c1, the norm's statistics and its normalisation (lowered either way), act, c2.
    assert_eq!(unfused.kernels.len(), 5);
    assert_eq!(
        names(&fused),
        [
            ("conv2d:c1".to_string(), vec!["c1".to_string()]),
            (
                "instance_norm_stats:norm.stats".into(),
                vec!["norm.stats".into()]
            ),
            (
                "conv2d:c2".into(),
                vec!["c2".into(), "norm".into(), "act".into()]
            ),
        ]
    );
    // The conv 1x1 reads the conv 3x3's output and the statistics, not a normalised copy.
    let id = |name: &str| fused.values.iter().position(|v| v.name == name).unwrap();
    let last = &fused.kernels[2];
    assert_eq!(last.reads, [id("c1"), id("norm.stats"), id("c2.weight")]);
    for v in ["norm", "act"] {
        assert!(fused.values[id(v)].pieces.is_empty(), "{v} has memory");
    }
}

#[test]
fn a_cpu_target_keeps_the_norm_out_of_the_conv_load() {
    // The bottleneck above with `max_ops_in_conv_loads: 1` (what the runtime gives lavapipe):
    // norm and ReLU (two ops) are one elementwise kernel writing `act`, which the conv reads
    // (with no plane reduction computing its reader, below).
    let g = bottleneck();
    let cpu = {
        let mut t = Target::default();
        t.policy.max_ops_in_conv_loads = 1;
        t.policy.plane_apply_pixels = 0;
        t
    };
    let (plan, pg) = compile(&g, &cpu).unwrap();
    verify(&plan, &pg).unwrap();
    assert_eq!(
        names(&plan),
        [
            ("conv2d:c1".to_string(), vec!["c1".to_string()]),
            (
                "instance_norm_stats:norm.stats".into(),
                vec!["norm.stats".into()]
            ),
            ("relu:act".into(), vec!["act".into(), "norm".into()]),
            ("conv2d:c2".into(), vec!["c2".into()]),
        ]
    );
}

#[test]
fn the_statistics_kernel_computes_the_normalisation_after_them() {
    // The same with plane reductions computing their readers: the statistics kernel walks each
    // plane again and writes `act`, reading the statistics it holds, not memory.
    let g = bottleneck();
    let cpu = {
        let mut t = Target::default();
        t.policy.max_ops_in_conv_loads = 1;
        t.policy.plane_apply_pixels = usize::MAX;
        t
    };
    let (plan, pg) = compile(&g, &cpu).unwrap();
    verify(&plan, &pg).unwrap();
    assert_eq!(
        names(&plan),
        [
            ("conv2d:c1".to_string(), vec!["c1".to_string()]),
            (
                "instance_norm_stats:norm.stats".into(),
                vec!["norm.stats".into(), "norm".into(), "act".into()]
            ),
            ("conv2d:c2".into(), vec!["c2".into()]),
        ]
    );
    let id = |name: &str| plan.values.iter().position(|v| v.name == name).unwrap();
    let stats = &plan.kernels[1];
    assert_eq!(stats.reads, [id("c1")]);
    assert_eq!(stats.writes, [id("norm.stats"), id("act")]);
    // Planes bigger than the target takes keep their elementwise kernel.
    let small = {
        let mut t = cpu;
        t.policy.plane_apply_pixels = 15;
        t
    };
    let (plan, _) = compile(&g, &small).unwrap();
    assert_eq!(plan.kernels.len(), 4);
}

#[test]
fn elementwise_chain_is_one_kernel() {
    let mut g = Graph {
        name: "chain".into(),
        ..Graph::default()
    };
    let x = input(&mut g, "x", &[1, 3, 4, 4]);
    let s = input(&mut g, "s", &[1, 3, 1, 1]);
    let a = op(&mut g, "a", Op::Unary(Unary::Tanh), &[x]);
    let b = op(&mut g, "b", Op::Binary(Binary::Mul), &[a, s]);
    let c = op(
        &mut g,
        "c",
        Op::Unary(Unary::LeakyRelu { slope: 0.2 }),
        &[b],
    );
    g.outputs = vec![("c".into(), c)];
    let (fused, unfused) = plans(&g);
    assert_eq!(unfused.kernels.len(), 3);
    assert_eq!(fused.kernels.len(), 1);
    let k = &fused.kernels[0];
    let mut nodes = k.nodes.clone();
    nodes.sort();
    assert_eq!(nodes, ["a", "b", "c"]);
    assert_eq!(k.reads, [x, s]);
    assert_eq!(k.writes, [c]);
}

#[test]
fn conv_with_residual_add_and_activation_is_one_kernel() {
    let mut g = Graph {
        name: "residual".into(),
        ..Graph::default()
    };
    let x = input(&mut g, "x", &[1, 4, 8, 8]);
    let r = input(&mut g, "r", &[1, 4, 8, 8]);
    let y = conv(&mut g, "conv", x, 4, 3);
    let sum = op(&mut g, "sum", Op::Binary(Binary::Add), &[y, r]);
    let act = op(&mut g, "act", Op::Unary(Unary::Relu), &[sum]);
    g.outputs = vec![("y".into(), act)];
    let (fused, unfused) = plans(&g);
    assert_eq!(unfused.kernels.len(), 3);
    assert_eq!(
        names(&fused),
        [(
            "conv2d:conv".to_string(),
            vec!["conv".to_string(), "sum".into(), "act".into()]
        )]
    );
    let k = &fused.kernels[0];
    assert_eq!(k.writes, [act]);
    assert!(k.reads.contains(&r));
    assert!(k.wgsl.contains("fn st_y("), "{}", k.wgsl);
}

#[test]
fn a_small_sum_of_two_stored_values_is_computed_in_the_conv_loads() {
    // r = a + b read by a 3x3 conv (an IRD block's residual, read by its conv): two full-size
    // loads per element, which a conv's many reads of it make too costly, except for values of
    // at most `small_value_elements`, where a kernel of its own costs more.
    let mut g = Graph {
        name: "small_residual".into(),
        ..Graph::default()
    };
    let a = input(&mut g, "a", &[1, 4, 8, 8]);
    let b = input(&mut g, "b", &[1, 4, 8, 8]);
    let r = op(&mut g, "r", Op::Binary(Binary::Add), &[a, b]);
    let y = conv(&mut g, "conv", r, 4, 3);
    g.outputs = vec![("y".into(), y)];
    let cpu = |small_value_elements| {
        let mut t = Target::default();
        t.policy.max_ops_in_conv_loads = 1;
        t.policy.small_value_elements = small_value_elements;
        t
    };
    let (plan, pg) = compile(&g, &cpu(256)).unwrap();
    verify(&plan, &pg).unwrap();
    assert_eq!(
        names(&plan),
        [(
            "conv2d:conv".to_string(),
            vec!["conv".to_string(), "r".into()]
        )]
    );
    assert!(plan.kernels[0].reads.contains(&a) && plan.kernels[0].reads.contains(&b));
    // With a limit one element under r's size, the sum is a kernel of its own.
    let (plan, _) = compile(&g, &cpu(255)).unwrap();
    assert_eq!(
        names(&plan),
        [
            ("add:r".to_string(), vec!["r".to_string()]),
            ("conv2d:conv".into(), vec!["conv".into()]),
        ]
    );
}

#[test]
fn what_must_stay_in_memory_does() {
    // An output, and a value read by a concat, keep their memory; so does their producer's result.
    let mut g = Graph {
        name: "kept".into(),
        ..Graph::default()
    };
    let x = input(&mut g, "x", &[1, 2, 4, 4]);
    let a = op(&mut g, "a", Op::Unary(Unary::Relu), &[x]);
    let b = op(&mut g, "b", Op::Unary(Unary::Tanh), &[a]);
    let cat = op(&mut g, "cat", Op::Concat(ir::ops::Concat {}), &[a, x]);
    g.outputs = vec![("b".into(), b), ("cat".into(), cat)];
    let (fused, _) = plans(&g);
    for v in [a, b, cat] {
        assert!(fused.values[v].fused.is_none(), "{}", fused.values[v].name);
        assert!(!fused.values[v].pieces.is_empty());
    }
}

#[test]
fn ird_gan_generator_has_fewer_kernels_fused() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ird_gan.ron");
    let model = ir::front::load(&path, &[("N".into(), "8".into())]).unwrap();
    let g = model
        .build("generator", &[("blurred".into(), vec![1, 3, 32, 32])])
        .unwrap();
    let (fused, unfused) = plans(&g);
    println!(
        "generator N=8 32x32: {} kernels fused, {} unfused; peak {} fused, {} unfused",
        fused.kernels.len(),
        unfused.kernels.len(),
        fused.memory.peak_bytes,
        unfused.memory.peak_bytes
    );
    assert!(fused.kernels.len() < unfused.kernels.len());
    // Every IRD bottleneck: a conv 1x1 that normalises and activates its input in its load.
    let bottlenecks = (fused.kernels.iter())
        .filter(|k| {
            k.template.starts_with("conv2d")
                && k.nodes
                    .iter()
                    .any(|n| n.ends_with("bn_norm") || n.contains("norm"))
                && k.nodes.len() >= 3
        })
        .count();
    assert!(
        bottlenecks >= 9,
        "{bottlenecks} convs carry their input's norm and activation"
    );
    // Outputs and inputs are the same, by name and shape.
    assert_eq!(fused.outputs.len(), unfused.outputs.len());
    for ((n1, o1), (n2, o2)) in fused.outputs.iter().zip(&unfused.outputs) {
        assert_eq!(n1, n2);
        assert_eq!(fused.values[*o1].shape, unfused.values[*o2].shape);
    }
}

#[test]
fn two_convolutions_summed_store_through_the_sum_once() {
    // As autodiff sums the gradients of one input from two convolutions.
    let mut g = Graph {
        name: "sum_of_convs".into(),
        ..Graph::default()
    };
    let x = input(&mut g, "x", &[1, 4, 8, 8]);
    let a = conv(&mut g, "a", x, 4, 3);
    let b = conv(&mut g, "b", x, 4, 1);
    let sum = op(&mut g, "sum", Op::Binary(Binary::Add), &[a, b]);
    g.outputs = vec![("sum".into(), sum)];
    let (fused, unfused) = plans(&g);
    assert_eq!(unfused.kernels.len(), 3);
    assert_eq!(
        names(&fused),
        [
            ("conv2d:b".to_string(), vec!["b".to_string()]),
            ("conv2d:a".into(), vec!["a".into(), "sum".into()]),
        ]
    );
}

#[test]
fn the_checker_catches_broken_fused_plans() {
    let g = bottleneck();
    let (plan, planned) = compile(&g, &Target::default()).unwrap();
    let id = |name: &str| planned.find(name).unwrap();
    let last = plan.kernels.len() - 1;
    // A kernel that says it reads the normalised value, which has no memory.
    let mut bad = plan.clone();
    bad.kernels[last].reads.push(id("norm"));
    let errs = verify(&bad, &planned).unwrap_err();
    assert!(
        errs.contains(&format!(
            "kernel {last} `conv2d:c2` reads `norm`, which fusion gave no memory"
        )),
        "{errs:?}"
    );
    // The conv 3x3's output must live until the conv 1x1 that normalises it in its load.
    let mut bad = plan.clone();
    bad.values[id("c1")].live.1 = last - 1;
    let errs = verify(&bad, &planned).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.contains("reads `c1` outside its lifetime")),
        "{errs:?}"
    );
    // A fused value given bytes.
    let mut bad = plan;
    bad.values[id("act")].pieces = bad.values[id("c1")].pieces.clone();
    let errs = verify(&bad, &planned).unwrap_err();
    assert!(
        errs.contains(&"value `act` is fused, yet has pieces in memory".to_string()),
        "{errs:?}"
    );
}
