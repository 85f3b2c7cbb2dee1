//! Shared by the codegen tests: a graph builder, a trivial placement of values, graphs of
//! every forward and backward op, and the checks every generated kernel must pass.

#![allow(dead_code)] // each test binary uses part of it

use compiler::codegen::{generate, validate_wgsl};
use compiler::{Kernel, Piece, Target, ValuePlan};
use ir::ops::*;
use ir::{Graph, Node, NodeId, Op};

pub fn source(g: &mut Graph, name: &str, op: Op, shape: &[usize]) -> NodeId {
    g.nodes.push(Node {
        name: name.into(),
        op,
        inputs: vec![],
        shape: shape.to_vec(),
    });
    g.nodes.len() - 1
}

pub fn input(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
    source(g, name, Op::Input { name: name.into() }, shape)
}

pub fn param(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
    source(g, name, Op::Param { init: Init::Zeros }, shape)
}

pub fn push(g: &mut Graph, name: &str, op: Op, inputs: &[NodeId]) -> NodeId {
    g.push(name, op, inputs.to_vec()).unwrap()
}

/// A trivial placement: value k in arena k % 3, values one after another. With `split`, a value
/// of 2 or more channels is cut into two pieces by channels, the second in the next arena.
pub fn place(g: &Graph, split: bool) -> Vec<ValuePlan> {
    let mut next = [0u64; 3];
    let mut plans = Vec::new();
    for (id, node) in g.nodes.iter().enumerate() {
        let [n, c, h, w] = ir::shape4(&node.shape);
        let cuts = if split && c >= 2 {
            vec![(0, c / 2), (c / 2, c)]
        } else {
            vec![(0, c)]
        };
        let mut pieces = Vec::new();
        for (k, (c0, c1)) in cuts.into_iter().enumerate() {
            let arena = (id + k) % 3;
            let cc = c1 - c0;
            let strides = [(cc * h * w) as u64, (h * w) as u64, w as u64, 1];
            pieces.push(Piece {
                arena,
                c0,
                c1,
                offset: next[arena],
                strides,
            });
            next[arena] += (n * cc * h * w) as u64;
        }
        let (name, shape, kind) = (node.name.clone(), node.shape.clone(), g.kind(id));
        plans.push(ValuePlan {
            node: id,
            name,
            shape,
            kind,
            pieces,
            live: (0, 0),
            slice_of: None,
            fused: None,
        });
    }
    plans
}

/// Every computed node, in order.
pub fn steps(g: &Graph) -> Vec<NodeId> {
    (0..g.nodes.len())
        .filter(|&i| g.kind(i) == ir::ValueKind::Computed)
        .collect()
}

pub fn const_u32(k: &Kernel, name: &str) -> u64 {
    let pat = format!("const {name}: u32 = ");
    let at = k
        .wgsl
        .find(&pat)
        .unwrap_or_else(|| panic!("{}: no {name}", k.name))
        + pat.len();
    k.wgsl[at..].split('u').next().unwrap().parse().unwrap()
}

/// Generate, then check what every kernel must satisfy: valid WGSL, arenas distinct
/// with one binding each, a dispatch within the limits that covers every item.
pub fn check(g: &Graph, values: &[ValuePlan], target: &Target) -> Vec<Kernel> {
    let kernels = generate(g, &steps(g), values, &[], target).unwrap();
    for k in &kernels {
        if let Err(e) = validate_wgsl(&k.wgsl) {
            panic!("{} does not validate:\n{e}\n{}", k.name, k.wgsl);
        }
        assert!(
            (1..k.arenas.len()).all(|i| !k.arenas[..i].contains(&k.arenas[i])),
            "{}: arenas {:?}",
            k.name,
            k.arenas
        );
        for (b, a) in k.arenas.iter().enumerate() {
            let decl =
                format!("@group(0) @binding({b}) var<storage, read_write> a{b}: array<f32>;");
            assert!(
                k.wgsl.contains(&decl),
                "{}: binding {b} of arena {a}",
                k.name
            );
        }
        let [x, y, z] = k.workgroups;
        let max = target.limits.max_workgroups_per_dim;
        assert!(
            x <= max && y <= max && z == 1 && x >= 1,
            "{}: {:?}",
            k.name,
            k.workgroups
        );
        let groups_are_items = [
            "instance_norm",
            "reduce",
            "weight_grad",
            "matmul",
            "softmax",
        ]
        .contains(&k.template.as_str());
        let per_group = if groups_are_items {
            1
        } else {
            const_u32(k, "WG")
        };
        let covered = x as u64 * y as u64 * per_group;
        assert!(
            covered >= const_u32(k, "TOTAL"),
            "{}: {:?}",
            k.name,
            k.workgroups
        );
        assert_eq!(k.writes.len(), 1);
        assert_eq!(k.nodes.len(), 1);
    }
    kernels
}

/// One graph that uses every op that gets a kernel.
pub fn every_op() -> Graph {
    let mut g = Graph {
        name: "all".into(),
        ..Default::default()
    };
    let x = input(&mut g, "x", &[2, 6, 10, 12]);
    let w = param(&mut g, "conv.weight", &[8, 6, 3, 3]);
    let b = param(&mut g, "conv.bias", &[8]);
    let c = push(
        &mut g,
        "conv",
        Op::Conv2d(Conv2d {
            stride: 1,
            pad: 1,
            bias: true,
            groups: 1,
        }),
        &[x, w, b],
    );
    let w2 = param(&mut g, "down.weight", &[5, 8, 4, 4]);
    let d = push(
        &mut g,
        "down",
        Op::Conv2d(Conv2d {
            stride: 2,
            pad: 2,
            bias: false,
            groups: 1,
        }),
        &[c, w2],
    );
    let wt = param(&mut g, "up.weight", &[5, 3, 3, 3]);
    let bt = param(&mut g, "up.bias", &[3]);
    let t = ConvTranspose2d {
        stride: 2,
        pad: 1,
        out_pad: 1,
        bias: true,
        groups: 1,
    };
    let up = push(&mut g, "up", Op::ConvTranspose2d(t), &[d, wt, bt]);
    let p = push(
        &mut g,
        "pad",
        Op::ReflectPad(ReflectPad { pads: [3, 2, 1, 3] }),
        &[up],
    );
    let n = push(
        &mut g,
        "norm",
        Op::InstanceNorm(InstanceNorm { eps: 1e-5 }),
        &[p],
    );
    // The lowered parts of norms and of their gradients (compiler::lower, plane_means).
    let stats = push(
        &mut g,
        "stats",
        Op::InstanceNormStats(InstanceNormStats { eps: 1e-5 }),
        &[p],
    );
    push(
        &mut g,
        "rstd",
        Op::PlaneStat(PlaneStat { index: 1 }),
        &[stats],
    );
    push(&mut g, "means", Op::PlaneMeans(PlaneMeans), &[p, n]);
    let mut last = n;
    let unaries = [
        Unary::Relu,
        Unary::LeakyRelu { slope: 0.2 },
        Unary::Tanh,
        Unary::Clamp {
            min: -1.0,
            max: 1.0,
        },
        Unary::Abs,
        Unary::Neg,
        Unary::Sqrt,
        Unary::Square,
        Unary::Exp,
        Unary::Log,
        Unary::Affine {
            scale: 0.5,
            shift: -0.5,
        },
    ];
    for (k, u) in unaries.into_iter().enumerate() {
        last = push(&mut g, &format!("u{k}"), Op::Unary(u), &[last]);
    }
    let per_channel = input(&mut g, "pc", &[1, 3, 1, 1]);
    let width = ir::shape4(&g.nodes[last].shape)[3];
    let row = input(&mut g, "row", &[width]);
    let binaries = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Max,
        Binary::Min,
    ];
    for (k, op) in binaries.into_iter().enumerate() {
        let other = [per_channel, row, n][k % 3];
        last = push(&mut g, &format!("b{k}"), Op::Binary(op), &[last, other]);
    }
    let aff = ChannelAffine {
        scale: vec![1.0, 2.0, 0.5],
        shift: vec![-0.25, 0.0, 3.0],
    };
    let a = push(&mut g, "affine", Op::ChannelAffine(aff), &[last]);
    let mp = push(
        &mut g,
        "pool",
        Op::MaxPool2d(MaxPool2d {
            kernel: 3,
            stride: 1,
            pad: 1,
        }),
        &[a],
    );
    let dr = push(
        &mut g,
        "drop",
        Op::Dropout(Dropout { p: 0.2, salt: 0 }),
        &[mp],
    );
    let cat = push(&mut g, "cat", Op::Concat(Concat {}), &[dr, a, p]);
    push(
        &mut g,
        "sum_all",
        Op::Reduce(Reduce {
            kind: ReduceKind::Sum,
            axes: vec![],
        }),
        &[cat],
    );
    push(
        &mut g,
        "mean_hw",
        Op::Reduce(Reduce {
            kind: ReduceKind::Mean,
            axes: vec![2, 3],
        }),
        &[cat],
    );
    let v = input(&mut g, "v", &[5, 7]);
    push(
        &mut g,
        "sum_rows",
        Op::Reduce(Reduce {
            kind: ReduceKind::Sum,
            axes: vec![0],
        }),
        &[v],
    );
    // Attention's ops: a batched product of transposed operands with a broadcast batch axis,
    // and a softmax along a middle axis.
    let qa = input(&mut g, "qa", &[2, 1, 6, 5]);
    let qb = input(&mut g, "qb", &[1, 3, 7, 6]);
    let mm = MatMul {
        trans_a: true,
        trans_b: true,
    };
    let scores = push(&mut g, "scores", Op::MatMul(mm), &[qa, qb]);
    push(
        &mut g,
        "softmax",
        Op::Softmax(Softmax { axis: 2 }),
        &[scores],
    );
    g
}

/// One graph with every op a backward pass adds: weight gradients, the gradients of padding and
/// pooling, the layout ops and the derivative unaries.
pub fn backward_ops() -> Graph {
    let mut g = Graph {
        name: "backward".into(),
        ..Default::default()
    };
    let x = input(&mut g, "x", &[2, 6, 9, 11]);
    let gy = input(&mut g, "gy", &[2, 5, 5, 6]);
    let wg = Conv2dWeightGrad {
        stride: 2,
        pad: 1,
        kh: 3,
        kw: 3,
        groups: 1,
    };
    push(&mut g, "conv_wg", Op::Conv2dWeightGrad(wg), &[x, gy]);
    let gyt = input(&mut g, "gyt", &[2, 3, 18, 22]);
    let twg = ConvTranspose2dWeightGrad {
        stride: 2,
        pad: 1,
        kh: 4,
        kw: 4,
        groups: 1,
    };
    push(
        &mut g,
        "convt_wg",
        Op::ConvTranspose2dWeightGrad(twg),
        &[x, gyt],
    );
    let pg = ReflectPadGrad { pads: [3, 2, 1, 3] };
    push(&mut g, "pad_grad", Op::ReflectPadGrad(pg), &[x]);
    let gp = input(&mut g, "gp", &[2, 6, 5, 6]);
    let mp = MaxPool2dGrad {
        kernel: 3,
        stride: 2,
        pad: 1,
    };
    push(&mut g, "pool_grad", Op::MaxPool2dGrad(mp), &[x, gp]);
    let per_channel = input(&mut g, "pc", &[6, 1, 1]);
    let to = vec![2, 6, 9, 11];
    push(
        &mut g,
        "expand_c",
        Op::Expand(Expand { shape: to.clone() }),
        &[per_channel],
    );
    let row = input(&mut g, "row", &[11]);
    push(&mut g, "expand_w", Op::Expand(Expand { shape: to }), &[row]);
    let cs = ChannelSlice { c0: 1, c1: 4 };
    push(&mut g, "slice", Op::ChannelSlice(cs), &[x]);
    let shape = vec![12, 99];
    push(&mut g, "reshape", Op::Reshape(Reshape { shape }), &[x]);
    let mut last = x;
    for (k, u) in [
        Unary::Step,
        Unary::LeakyStep { slope: 0.2 },
        Unary::Sign,
        Unary::InRange {
            min: -1.0,
            max: 1.0,
        },
        Unary::Recip,
    ]
    .into_iter()
    .enumerate()
    {
        last = push(&mut g, &format!("d{k}"), Op::Unary(u), &[last]);
    }
    g
}
