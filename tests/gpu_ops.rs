//! Every op, compiled and run on the device (lavapipe without a GPU), against the CPU reference
//! in f64 on random inputs: odd sizes, strides 1 and 2, paddings, kernel sizes 1/3/4/7, and a
//! small binding limit that splits values across arenas.

mod gpu_support;

use compiler::Target;
use gpu_support::{check, check_on, random_feeds, G};
use ir::ops::*;
use ir::{NodeId, Op};

fn conv_graph(x: [usize; 4], out: usize, k: usize, stride: usize, pad: usize, bias: bool) -> G {
    let mut g = G::new(&format!("conv{k}s{stride}p{pad}"));
    let xi = g.input("x", &x);
    let w = g.param("w", &[out, x[1], k, k]);
    let mut ins = vec![xi, w];
    if bias {
        ins.push(g.param("b", &[out]));
    }
    let y = g.op(
        "y",
        Op::Conv2d(Conv2d {
            stride,
            pad,
            bias,
            groups: 1,
        }),
        &ins,
    );
    g.output(y);
    g
}

#[test]
fn conv2d() {
    // (input, out channels, kernel, stride, pad, bias)
    let cases = [
        ([2, 3, 7, 9], 5, 1, 1, 0, true),
        ([1, 4, 8, 8], 6, 1, 2, 0, false),
        ([2, 3, 7, 9], 5, 3, 1, 1, true),
        ([1, 5, 9, 6], 7, 3, 2, 1, true),
        ([1, 3, 11, 10], 4, 4, 2, 2, true),
        ([1, 4, 10, 9], 3, 4, 1, 2, false),
        ([1, 3, 13, 12], 4, 7, 1, 0, true),
        ([1, 2, 9, 9], 3, 7, 2, 3, true),
        ([1, 16, 5, 5], 33, 3, 1, 1, true),
    ];
    for (i, &(x, out, k, s, p, b)) in cases.iter().enumerate() {
        let g = conv_graph(x, out, k, s, p, b);
        check(&g.0, &random_feeds(&g.0, i as u64));
    }
}

#[test]
fn conv_transpose2d() {
    // (input, out channels, kernel, stride, pad, out_pad, bias)
    let cases = [
        ([1, 4, 5, 6], 3, 3, 2, 1, 1, true),
        ([2, 3, 4, 5], 2, 4, 2, 1, 0, true),
        ([1, 3, 5, 5], 4, 3, 1, 1, 0, false),
        ([1, 2, 3, 4], 3, 1, 2, 0, 1, true),
        ([1, 5, 4, 3], 2, 3, 2, 0, 0, true),
    ];
    for (i, &(x, out, k, stride, pad, out_pad, bias)) in cases.iter().enumerate() {
        let mut g = G::new(&format!("convT{k}s{stride}p{pad}o{out_pad}"));
        let xi = g.input("x", &x);
        let w = g.param("w", &[x[1], out, k, k]);
        let mut ins = vec![xi, w];
        if bias {
            ins.push(g.param("b", &[out]));
        }
        let y = g.op(
            "y",
            Op::ConvTranspose2d(ConvTranspose2d {
                stride,
                pad,
                out_pad,
                bias,
                groups: 1,
            }),
            &ins,
        );
        g.output(y);
        check(&g.0, &random_feeds(&g.0, 10 + i as u64));
    }
}

fn unary_graph(shape: &[usize], name: &str, ops: &[Op]) -> G {
    let mut g = G::new(name);
    let mut v = g.input("x", shape);
    for (i, op) in ops.iter().enumerate() {
        v = g.op(&format!("op{i}"), op.clone(), &[v]);
    }
    g.output(v);
    g
}

#[test]
fn reflect_pad_instance_norm_max_pool_dropout() {
    let cases: Vec<(&str, [usize; 4], Op)> = vec![
        (
            "pad3",
            [1, 2, 7, 9],
            Op::ReflectPad(ReflectPad { pads: [3, 3, 3, 3] }),
        ),
        (
            "pad_uneven",
            [2, 3, 5, 4],
            Op::ReflectPad(ReflectPad { pads: [1, 2, 0, 3] }),
        ),
        (
            "inorm",
            [2, 5, 6, 7],
            Op::InstanceNorm(InstanceNorm { eps: 1e-5 }),
        ),
        (
            "inorm_big",
            [1, 3, 33, 31],
            Op::InstanceNorm(InstanceNorm { eps: 1e-5 }),
        ),
        (
            "pool2",
            [2, 3, 8, 9],
            Op::MaxPool2d(MaxPool2d {
                kernel: 2,
                stride: 2,
                pad: 0,
            }),
        ),
        (
            "pool3_pad",
            [1, 3, 7, 9],
            Op::MaxPool2d(MaxPool2d {
                kernel: 3,
                stride: 2,
                pad: 1,
            }),
        ),
        // Output widths 8: runs of 4 outputs an invocation (codegen/window.rs), padding at
        // both ends of a run's row.
        (
            "pool3_s1_runs",
            [1, 2, 5, 8],
            Op::MaxPool2d(MaxPool2d {
                kernel: 3,
                stride: 1,
                pad: 1,
            }),
        ),
        (
            "pool3_s2_runs",
            [2, 3, 7, 15],
            Op::MaxPool2d(MaxPool2d {
                kernel: 3,
                stride: 2,
                pad: 1,
            }),
        ),
        (
            "pool3_s1",
            [1, 2, 5, 6],
            Op::MaxPool2d(MaxPool2d {
                kernel: 3,
                stride: 1,
                pad: 1,
            }),
        ),
        (
            "dropout",
            [1, 2, 3, 5],
            Op::Dropout(Dropout { p: 0.5, salt: 0 }),
        ),
    ];
    for (i, (name, shape, op)) in cases.into_iter().enumerate() {
        let g = unary_graph(&shape, name, &[op]);
        check(&g.0, &random_feeds(&g.0, 20 + i as u64));
    }
}

#[test]
fn unary_ops() {
    let ops = [
        Unary::Relu,
        Unary::LeakyRelu { slope: 0.2 },
        Unary::Tanh,
        Unary::Clamp {
            min: -0.5,
            max: 0.25,
        },
        Unary::Abs,
        Unary::Neg,
        Unary::Sqrt,
        Unary::Square,
        Unary::Exp,
        Unary::Log,
        Unary::Affine {
            scale: 0.5,
            shift: 0.5,
        },
        Unary::Sigmoid,
        Unary::Silu,
        Unary::Softplus,
        Unary::Erf,
        Unary::Gelu,
        Unary::GeluTanh,
    ];
    for (i, u) in ops.into_iter().enumerate() {
        let positive = matches!(u, Unary::Sqrt | Unary::Log);
        let g = unary_graph(&[2, 3, 5, 7], u.name(), &[Op::Unary(u)]);
        let mut feeds = random_feeds(&g.0, 40 + i as u64);
        if positive {
            let x = feeds.get_mut("x").unwrap();
            x.data.iter_mut().for_each(|v| *v = v.abs() + 0.05);
        }
        check(&g.0, &feeds);
    }
    // A chain that the compiler fuses into one kernel.
    let chain = [
        Unary::Affine {
            scale: 3.0,
            shift: -0.2,
        },
        Unary::Tanh,
        Unary::Square,
        Unary::Neg,
        Unary::Exp,
    ];
    let g = unary_graph(&[1, 4, 9, 11], "chain", &chain.map(Op::Unary));
    check(&g.0, &random_feeds(&g.0, 60));
}

#[test]
fn binary_ops_with_broadcasting() {
    let ops = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Max,
        Binary::Min,
    ];
    let shapes: [(&[usize], &[usize]); 5] = [
        (&[2, 3, 5, 7], &[2, 3, 5, 7]),
        (&[2, 3, 5, 7], &[1, 3, 1, 1]),
        (&[2, 3, 5, 7], &[7]),
        (&[1, 1, 5, 1], &[2, 3, 1, 7]),
        (&[3, 1], &[2, 1, 4]),
    ];
    let mut seed = 100;
    for op in ops {
        for (a, b) in shapes {
            seed += 1;
            let mut g = G::new(&format!("{}{a:?}{b:?}", op.name()));
            let ai = g.input("a", a);
            let bi = g.input("b", b);
            let y = g.op("y", Op::Binary(op), &[ai, bi]);
            g.output(y);
            let mut feeds = random_feeds(&g.0, seed);
            if op == Binary::Div {
                // Keep the divisor away from zero.
                let b = feeds.get_mut("b").unwrap();
                b.data
                    .iter_mut()
                    .for_each(|v| *v = v.signum() * (v.abs() + 0.5));
            }
            check(&g.0, &feeds);
        }
    }
}

#[test]
fn channel_affine_and_const() {
    let mut g = G::new("channel_affine");
    let x = g.input("x", &[2, 3, 4, 5]);
    let a = g.op(
        "norm",
        Op::ChannelAffine(ChannelAffine {
            scale: vec![1.0 / 0.229, 1.0 / 0.224, 1.0 / 0.225],
            shift: vec![-2.1, -2.0, -1.8],
        }),
        &[x],
    );
    let c = g.op(
        "c",
        Op::Const(Const {
            shape: vec![1, 3, 1, 1],
            values: vec![0.5, -1.0, 2.0],
        }),
        &[],
    );
    let y = g.op("y", Op::Binary(Binary::Mul), &[a, c]);
    g.output(y);
    check(&g.0, &random_feeds(&g.0, 200));
}

#[test]
fn reductions() {
    let cases: [(ReduceKind, &[usize], &[usize]); 6] = [
        (ReduceKind::Sum, &[2, 3, 5, 7], &[]),
        (ReduceKind::Mean, &[2, 3, 5, 7], &[]),
        (ReduceKind::Sum, &[2, 3, 5, 7], &[1]),
        (ReduceKind::Mean, &[2, 3, 5, 7], &[2, 3]),
        (ReduceKind::Sum, &[2, 3, 5, 7], &[0, 2]),
        (ReduceKind::Mean, &[33, 17], &[0]),
    ];
    for (i, (kind, shape, axes)) in cases.into_iter().enumerate() {
        let g = unary_graph(
            shape,
            &format!("reduce{i}"),
            &[Op::Reduce(Reduce {
                kind,
                axes: axes.to_vec(),
            })],
        );
        check(&g.0, &random_feeds(&g.0, 300 + i as u64));
    }
}

/// A dense block: x, then k convs each reading the concat of everything so far, as IRD-GAN's
/// feature tensor is built. The compiler writes each conv straight into its region slice.
fn dense_block(name: &str, x: [usize; 4], growth: usize, k: usize) -> G {
    let mut g = G::new(name);
    let mut cat: NodeId = g.input("x", &x);
    let mut channels = x[1];
    for i in 0..k {
        let w = g.param(&format!("b{i}.w"), &[growth, channels, 3, 3]);
        let b = g.param(&format!("b{i}.b"), &[growth]);
        let y = g.op(
            &format!("b{i}.conv"),
            Op::Conv2d(Conv2d {
                stride: 1,
                pad: 1,
                bias: true,
                groups: 1,
            }),
            &[cat, w, b],
        );
        let r = g.op(&format!("b{i}.relu"), Op::Unary(Unary::Relu), &[y]);
        cat = g.op(&format!("b{i}.cat"), Op::Concat(Concat {}), &[cat, r]);
        channels += growth;
    }
    let w = g.param("out.w", &[4, channels, 1, 1]);
    let y = g.op(
        "out",
        Op::Conv2d(Conv2d {
            stride: 1,
            pad: 0,
            bias: false,
            groups: 1,
        }),
        &[cat, w],
    );
    g.output(y);
    g.output(cat);
    g
}

#[test]
fn concat_in_place_and_copied() {
    // In place: a dense block.
    let g = dense_block("dense", [2, 4, 6, 7], 3, 3);
    let (plan, _) = check(&g.0, &random_feeds(&g.0, 400));
    assert!(
        !plan.memory.regions.is_empty(),
        "the dense block is planned as a concat region"
    );
    // Copied: both inputs are graph inputs, one is concatenated twice, and one is also read
    // elsewhere, so no slice can simply be written in place.
    let mut g = G::new("concat_copy");
    let a = g.input("a", &[2, 3, 4, 5]);
    let b = g.input("b", &[2, 2, 4, 5]);
    let ab = g.op("ab", Op::Concat(Concat {}), &[a, b]);
    let aba = g.op("aba", Op::Concat(Concat {}), &[ab, a]);
    let t = g.op("t", Op::Unary(Unary::Tanh), &[b]);
    let y = g.op("y", Op::Concat(Concat {}), &[t, aba, b]);
    g.output(y);
    g.output(ab);
    check(&g.0, &random_feeds(&g.0, 401));
}

/// With a 64 KiB binding limit, values larger than that are split across arenas by channels.
#[test]
fn values_split_across_arenas() {
    let small = {
        let mut t = Target::default();
        t.limits.max_binding_bytes = 64 * 1024;
        t
    };
    // conv 24 -> 24 channels at 32x32: 96 KiB per value.
    let mut g = G::new("split_conv");
    let x = g.input("x", &[1, 24, 32, 32]);
    let w1 = g.param("w1", &[24, 24, 3, 3]);
    let b1 = g.param("b1", &[24]);
    let y1 = g.op(
        "c1",
        Op::Conv2d(Conv2d {
            stride: 1,
            pad: 1,
            bias: true,
            groups: 1,
        }),
        &[x, w1, b1],
    );
    let n1 = g.op("n1", Op::InstanceNorm(InstanceNorm { eps: 1e-5 }), &[y1]);
    let r1 = g.op("r1", Op::Unary(Unary::Relu), &[n1]);
    let w2 = g.param("w2", &[20, 24, 3, 3]);
    let y2 = g.op(
        "c2",
        Op::Conv2d(Conv2d {
            stride: 2,
            pad: 1,
            bias: false,
            groups: 1,
        }),
        &[r1, w2],
    );
    let s = g.op("s", Op::Binary(Binary::Add), &[x, r1]);
    g.output(y2);
    g.output(s);
    let (plan, _) = check_on(&g.0, &small, &random_feeds(&g.0, 500));
    let split = plan
        .values
        .iter()
        .filter(|v| v.pieces.iter().any(|p| p.arena != v.pieces[0].arena))
        .count();
    assert!(
        split > 0,
        "the small limit should split some value across arenas"
    );

    // A dense block whose 8 + 3 * 8 = 32 channel region at 24x24 (72 KiB) exceeds the limit.
    let g = dense_block("split_dense", [1, 8, 24, 24], 8, 3);
    let (plan, _) = check_on(&g.0, &small, &random_feeds(&g.0, 501));
    assert!(
        !plan.memory.regions.is_empty(),
        "the dense block is planned as a concat region"
    );
}

/// Instance-norm statistics and sums as one subgroup summing with `subgroupAdd`
/// (`Target::subgroup_reductions`, lavapipe's default) and as a 256-invocation tree: both match
/// the CPU, over planes larger than, and not a multiple of, either workgroup.
#[test]
fn reductions_in_one_subgroup_and_in_a_tree() {
    let lanes = gpu_support::gpu().limits_target().subgroup_size();
    assert!(lanes > 0, "the test device has no fixed subgroup size");
    let norm = Op::InstanceNorm(InstanceNorm { eps: 1e-5 });
    let sum = Op::Reduce(Reduce {
        kind: ReduceKind::Sum,
        axes: vec![2, 3],
    });
    for (i, (op, template)) in [(norm, "instance_norm_stats"), (sum, "reduce")]
        .into_iter()
        .enumerate()
    {
        let g = unary_graph(&[2, 3, 37, 29], &format!("sums{i}"), &[op]);
        let feeds = random_feeds(&g.0, 400 + i as u64);
        for subgroup_reductions in [true, false] {
            let t = {
                let mut t = gpu_support::gpu().target();
                t.policy.subgroup_reductions = subgroup_reductions;
                t
            };
            let (plan, _) = check_on(&g.0, &t, &feeds);
            let k = (plan.kernels.iter())
                .find(|k| k.template == template)
                .unwrap_or_else(|| panic!("no {template} kernel"));
            let wg = match subgroup_reductions {
                true => lanes,
                false => 256,
            };
            assert!(
                k.wgsl.contains(&format!("const WG: u32 = {wg}u;")),
                "{template}: workgroup of {wg}"
            );
            assert_eq!(
                k.wgsl.contains("subgroupAdd(v)"),
                subgroup_reductions,
                "{template}"
            );
        }
    }
}
