//! The second order against finite differences (the gradient of a gradient norm, WGAN-GP's
//! shape) for every op the critic uses, and the whole IRD-GAN critic with a gradient penalty.

mod autodiff_support;

use autodiff_support::*;
use compiler::autodiff::{grad, sum_to_scalar};
use ir::ops::*;
use ir::{Graph, NodeId, Op, Tensor};

/// The gradient-penalty shape: || d f / d x ||_2 as a node of the first-order graph.
fn grad_norm(g: &Graph, f: NodeId, x: NodeId) -> (Graph, NodeId) {
    let (mut g, ids) = grad(g, f, &[x]).unwrap();
    let sq = g
        .push("gp.sq", Op::Unary(Unary::Square), vec![ids[0]])
        .unwrap();
    let s = sum_to_scalar(&mut g, sq).unwrap();
    let n = g.push("gp.norm", Op::Unary(Unary::Sqrt), vec![s]).unwrap();
    (g, n)
}

/// Second order: the gradient of || grad_x f || w.r.t. `wrt` against finite differences of the
/// first-order graph.
fn second_order(c: &Case, f: NodeId, x: NodeId, wrt: &[NodeId], pick: Option<usize>) {
    let (g1, norm) = grad_norm(&c.g, f, x);
    check(&g1, &c.feeds, norm, wrt, pick);
}

#[test]
fn conv_leaky_relu_second_order() {
    for (hw, k, s, p) in [(7, 4, 2, 2), (5, 3, 1, 1), (6, 4, 1, 2)] {
        let mut c = Case::new(500 + hw as u64);
        let x = c.x("x", &[1, 2, hw, hw]);
        let w = c.x("w", &[3, 2, k, k]);
        let b = c.input("b", &[3], -0.3, 0.3);
        let y = c.op(
            Op::Conv2d(Conv2d {
                stride: s,
                pad: p,
                bias: true,
                groups: 1,
            }),
            vec![x, w, b],
        );
        let a = c.un(Unary::LeakyRelu { slope: 0.2 }, y);
        let f = c.loss(a);
        second_order(&c, f, x, &[w, b, x], None);
    }
}

/// A gradient penalty through a depthwise conv (NAFNet's) and a grouped one.
#[test]
fn grouped_conv_second_order() {
    for (ci, co, groups) in [(2, 2, 2), (4, 2, 2)] {
        let mut c = Case::new(550 + ci as u64);
        let x = c.x("x", &[1, ci, 5, 5]);
        let w = c.x("w", &[co, ci / groups, 3, 3]);
        let y = c.op(
            Op::Conv2d(Conv2d {
                stride: 1,
                pad: 1,
                bias: false,
                groups,
            }),
            vec![x, w],
        );
        let a = c.un(Unary::LeakyRelu { slope: 0.2 }, y);
        let f = c.loss(a);
        second_order(&c, f, x, &[w, x], None);
    }
}

/// A gradient penalty through a layer norm with its affine (NAFNet's norm before each branch).
#[test]
fn layer_norm_second_order() {
    let mut c = Case::new(570);
    let x = c.x("x", &[1, 3, 3, 3]);
    let w = c.x("w", &[3]);
    let b = c.x("b", &[3]);
    let ln = LayerNorm {
        eps: 1e-3,
        affine: true,
    };
    let y = c.op(Op::LayerNorm(ln), vec![x, w, b]);
    let a = c.un(Unary::Tanh, y);
    let f = c.loss(a);
    second_order(&c, f, x, &[w, b, x], None);
}

#[test]
fn instance_norm_second_order() {
    let mut c = Case::new(600);
    let x = c.x("x", &[1, 2, 5, 5]);
    let w = c.x("w", &[3, 2, 3, 3]);
    let y = c.op(
        Op::Conv2d(Conv2d {
            stride: 2,
            pad: 1,
            bias: false,
            groups: 1,
        }),
        vec![x, w],
    );
    let n = c.op(Op::InstanceNorm(InstanceNorm { eps: 1e-5 }), vec![y]);
    let a = c.un(Unary::LeakyRelu { slope: 0.2 }, n);
    let f = c.loss(a);
    second_order(&c, f, x, &[w, x], None);
}

#[test]
fn elementwise_and_reductions_second_order() {
    // f = mean(sqrt(affine(square(x * w + b - x)))) + sum over channels of (x * w) * R
    let mut c = Case::new(700);
    let x = c.x("x", &[2, 3, 2, 3]);
    let w = c.x("w", &[1, 3, 1, 1]);
    let b = c.x("b", &[3, 1, 1]);
    let xw = c.bin(Binary::Mul, x, w);
    let t = c.bin(Binary::Add, xw, b);
    let t = c.bin(Binary::Sub, t, x);
    let t = c.un(Unary::Square, t);
    let t = c.un(
        Unary::Affine {
            scale: 2.0,
            shift: 0.5,
        },
        t,
    );
    let t = c.un(Unary::Sqrt, t);
    let m = c.op(
        Op::Reduce(Reduce {
            kind: ReduceKind::Mean,
            axes: vec![],
        }),
        vec![t],
    );
    let s = c.op(
        Op::Reduce(Reduce {
            kind: ReduceKind::Sum,
            axes: vec![1],
        }),
        vec![xw],
    );
    let s = c.loss(s);
    let m = c.op(Op::Reshape(Reshape { shape: vec![1] }), vec![m]);
    let f = c.bin(Binary::Add, m, s);
    second_order(&c, f, x, &[w, b, x], None);
}

/// The activations of restoration networks (NAFNet's GELU, channel gates' sigmoid, SiLU,
/// softplus, erf) under a gradient penalty: f = sum(act(x * w)), differentiated through
/// || d f / d x ||.
#[test]
fn activations_second_order() {
    let ops = [
        Unary::Sigmoid,
        Unary::Silu,
        Unary::Softplus,
        Unary::Erf,
        Unary::Gelu,
        Unary::GeluTanh,
    ];
    for (k, u) in ops.into_iter().enumerate() {
        let mut c = Case::new(900 + k as u64);
        let x = c.x("x", &[2, 3, 2, 2]);
        let w = c.x("w", &[1, 3, 1, 1]);
        let xw = c.bin(Binary::Mul, x, w);
        let a = c.un(u, xw);
        let f = c.loss(a);
        second_order(&c, f, x, &[w, x], None);
    }
}

/// The transposed forms' VJPs (themselves products) under a gradient penalty:
/// f = sum(tanh(x^T w^T) * R), batch axes broadcast from both sides.
#[test]
fn matmul_second_order() {
    let mut c = Case::new(951);
    let x = c.x("x", &[2, 1, 3, 2]);
    let w = c.x("w", &[1, 2, 4, 3]);
    let p = c.op(
        Op::MatMul(MatMul {
            trans_a: true,
            trans_b: true,
        }),
        vec![x, w],
    );
    let t = c.un(Unary::Tanh, p);
    let f = c.loss(t);
    second_order(&c, f, x, &[w, x], None);
}

/// Attention over channels (Restormer's) under a gradient penalty: softmax(q k^T * s) v with
/// q, k, v from x, differentiated through || d f / d x || w.r.t. x and the weights.
#[test]
fn attention_second_order() {
    let mut c = Case::new(950);
    let x = c.x("x", &[1, 2, 3, 4]);
    let wq = c.x("wq", &[1, 2, 3, 1]);
    let wk = c.x("wk", &[1, 1, 3, 1]);
    let q = c.bin(Binary::Mul, x, wq);
    let k = c.bin(Binary::Mul, x, wk);
    let scores = c.op(
        Op::MatMul(MatMul {
            trans_a: false,
            trans_b: true,
        }),
        vec![q, k],
    );
    let scores = c.un(
        Unary::Affine {
            scale: 0.5,
            shift: 0.0,
        },
        scores,
    );
    let attn = c.op(Op::Softmax(Softmax { axis: 3 }), vec![scores]);
    let out = c.op(
        Op::MatMul(MatMul {
            trans_a: false,
            trans_b: false,
        }),
        vec![attn, x],
    );
    let f = c.loss(out);
    second_order(&c, f, x, &[wq, wk, x], None);
}

/// The IRD-GAN critic at ndf = 4 on a 12x12 image: L = mean(D(x)) + (|| grad_x mean(D(x)) || - 1)^2,
/// differentiated w.r.t. a few weights of every layer.
#[test]
fn critic_with_gradient_penalty() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ird_gan.ron");
    let set = |k: &str, v: &str| (k.to_string(), v.to_string());
    let m = ir::front::load(&path, &[set("ndf", "4"), set("H", "12"), set("W", "12")]).unwrap();
    let g = m.build("critic", &[]).unwrap();
    let mut c = Case::new(800);
    c.g = g;
    let image = c.g.inputs().next().unwrap().0;
    let feeds: Vec<(String, Tensor<f64>)> =
        c.g.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.op, Op::Input { .. } | Op::Param { .. }))
            .map(|(i, n)| (key(&c.g, i), n.shape.clone()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(k, s)| (k, c.rng.tensor(&s, -0.3, 0.3)))
            .collect();
    c.feeds = feeds.into_iter().collect();
    let score = c.g.outputs[0].1;
    assert_eq!(c.g.nodes[score].shape, vec![1, 1, 5, 5]);
    let mean = c.op(
        Op::Reduce(Reduce {
            kind: ReduceKind::Mean,
            axes: vec![],
        }),
        vec![score],
    );
    let (mut g1, norm) = grad_norm(&c.g, mean, image);
    let d = g1
        .push(
            "gp.minus_one",
            Op::Unary(Unary::Affine {
                scale: 1.0,
                shift: -1.0,
            }),
            vec![norm],
        )
        .unwrap();
    let gp = g1.push("gp", Op::Unary(Unary::Square), vec![d]).unwrap();
    let l = g1
        .push("loss", Op::Binary(Binary::Add), vec![mean, gp])
        .unwrap();
    let l = g1
        .push(
            "loss.flat",
            Op::Reshape(Reshape { shape: vec![1] }),
            vec![l],
        )
        .unwrap();
    let wrt: Vec<NodeId> = [
        "conv1.weight",
        "conv1.bias",
        "layer2.conv.weight",
        "layer3.conv.bias",
        "layer4.conv.weight",
        "score.weight",
        "score.bias",
    ]
    .iter()
    .map(|n| g1.find(n).unwrap_or_else(|| panic!("no node {n}")))
    .collect();
    check(&g1, &c.feeds, l, &wrt, Some(5));
}

/// Pixel shuffles, resizes and average pooling under a gradient penalty: f = sum(tanh(L(x * w)))
/// through || d f / d x ||, whose second order runs each adjoint's own VJP (the op again).
#[test]
fn shuffle_resize_and_avg_pool_second_order() {
    let ops = [
        Op::PixelShuffle(PixelShuffle { factor: 2 }),
        Op::PixelUnshuffle(PixelUnshuffle { factor: 2 }),
        Op::Resize(Resize {
            factor: 2,
            mode: ResizeMode::Nearest,
        }),
        Op::Resize(Resize {
            factor: 2,
            mode: ResizeMode::Bilinear,
        }),
        Op::AvgPool(AvgPool {
            kernel: 3,
            stride: 2,
            pad: 1,
        }),
    ];
    for (k, op) in ops.into_iter().enumerate() {
        let mut c = Case::new(950 + k as u64);
        let x = c.x("x", &[1, 4, 4, 4]);
        let w = c.x("w", &[1, 4, 1, 1]);
        let xw = c.bin(Binary::Mul, x, w);
        let l = c.op(op, vec![xw]);
        let a = c.un(Unary::Tanh, l);
        let f = c.loss(a);
        second_order(&c, f, x, &[w, x], None);
    }
}
