//! Reverse-mode autodiff against central finite differences of the f64 CPU reference: the first
//! order for every op (the second order is in `autodiff_second_order.rs`).

mod autodiff_support;

use autodiff_support::*;
use compiler::autodiff::{grad, sum_to_scalar};
use compiler::CompileError;
use ir::ops::*;
use ir::{cpu, Op, Tensor};

#[test]
fn conv2d_first_order() {
    for (hw, k, s, p, bias) in [
        (5, 3, 1, 1, true),
        (7, 3, 2, 1, true),
        (7, 4, 2, 2, false),
        (6, 4, 2, 2, true),
        (5, 3, 3, 0, false),
    ] {
        let mut c = Case::new(hw as u64 * 31 + k as u64);
        let x = c.x("x", &[2, 3, hw, hw]);
        let w = c.x("w", &[2, 3, k, k]);
        let mut ins = vec![x, w];
        if bias {
            ins.push(c.x("b", &[2]));
        }
        first_order(
            c,
            Op::Conv2d(Conv2d {
                stride: s,
                pad: p,
                bias,
                groups: 1,
            }),
            ins,
        );
    }
}

#[test]
fn conv_transpose2d_first_order() {
    for (hw, k, s, p, op_, bias) in [
        (3, 3, 2, 1, 1, true),
        (3, 4, 2, 1, 0, false),
        (4, 3, 1, 1, 0, true),
        (3, 3, 3, 0, 2, false),
    ] {
        let mut c = Case::new(hw as u64 * 17 + k as u64);
        let x = c.x("x", &[2, 3, hw, hw]);
        let w = c.x("w", &[3, 2, k, k]);
        let mut ins = vec![x, w];
        if bias {
            ins.push(c.x("b", &[2]));
        }
        first_order(
            c,
            Op::ConvTranspose2d(ConvTranspose2d {
                stride: s,
                pad: p,
                out_pad: op_,
                bias,
                groups: 1,
            }),
            ins,
        );
    }
}

#[test]
fn weight_grad_ops_first_order() {
    // conv2d_weight_grad(x, gy) and its transposed twin are bilinear; their VJPs are convs.
    for (hw, k, s, p) in [(5, 3, 1, 1), (7, 3, 2, 1), (7, 4, 2, 2)] {
        let mut c = Case::new(5 + hw as u64);
        let x = c.x("x", &[2, 3, hw, hw]);
        let ho = (hw + 2 * p - k) / s + 1;
        let gy = c.x("gy", &[2, 2, ho, ho]);
        first_order(
            c,
            Op::Conv2dWeightGrad(Conv2dWeightGrad {
                stride: s,
                pad: p,
                kh: k,
                kw: k,
                groups: 1,
            }),
            vec![x, gy],
        );
    }
    for (hw, k, s, p, op_) in [(3, 3, 2, 1, 1), (3, 4, 2, 1, 0), (4, 3, 1, 1, 0)] {
        let mut c = Case::new(9 + hw as u64);
        let x = c.x("x", &[2, 3, hw, hw]);
        let ho = (hw - 1) * s + k + op_ - 2 * p;
        let gy = c.x("gy", &[2, 2, ho, ho]);
        let op = ConvTranspose2dWeightGrad {
            stride: s,
            pad: p,
            kh: k,
            kw: k,
            groups: 1,
        };
        first_order(c, Op::ConvTranspose2dWeightGrad(op), vec![x, gy]);
    }
}

#[test]
fn padding_pooling_and_layout_first_order() {
    let mut c = Case::new(1);
    let x = c.x("x", &[1, 2, 4, 5]);
    first_order(
        c,
        Op::ReflectPad(ReflectPad { pads: [2, 1, 0, 3] }),
        vec![x],
    );
    let mut c = Case::new(2);
    let x = c.x("x", &[1, 2, 7, 8]);
    first_order(
        c,
        Op::ReflectPadGrad(ReflectPadGrad { pads: [2, 1, 0, 3] }),
        vec![x],
    );
    for (k, s, p) in [(3, 1, 1), (3, 2, 1), (2, 2, 0)] {
        let mut c = Case::new(3 + k as u64 * 7 + s as u64);
        let x = c.x("x", &[2, 2, 5, 5]);
        first_order(
            c,
            Op::MaxPool2d(MaxPool2d {
                kernel: k,
                stride: s,
                pad: p,
            }),
            vec![x],
        );
    }
    let mut c = Case::new(4);
    let x = c.x("x", &[2, 1, 3, 1]);
    first_order(
        c,
        Op::Expand(Expand {
            shape: vec![2, 3, 3, 5],
        }),
        vec![x],
    );
    let mut c = Case::new(5);
    let x = c.x("x", &[3]);
    first_order(c, Op::Expand(Expand { shape: vec![2, 3] }), vec![x]);
    let mut c = Case::new(6);
    let x = c.x("x", &[1, 3, 1, 1]);
    first_order(c, Op::Reshape(Reshape { shape: vec![3] }), vec![x]);
    let mut c = Case::new(7);
    let x = c.x("x", &[2, 5, 2, 3]);
    first_order(c, Op::ChannelSlice(ChannelSlice { c0: 1, c1: 3 }), vec![x]);
    let mut c = Case::new(8);
    let (a, b, d) = (
        c.x("a", &[2, 1, 3, 3]),
        c.x("b", &[2, 3, 3, 3]),
        c.x("d", &[2, 2, 3, 3]),
    );
    first_order(c, Op::Concat(Concat {}), vec![a, b, d]);
    let mut c = Case::new(9);
    let x = c.x("x", &[2, 3, 3]);
    first_order(c, Op::Dropout(Dropout { p: 0.2, salt: 0 }), vec![x]);
    let mut c = Case::new(10);
    let x = c.x("x", &[2, 3, 3, 5]);
    first_order(c, Op::InstanceNorm(InstanceNorm { eps: 1e-5 }), vec![x]);
    let mut c = Case::new(11);
    let x = c.x("x", &[2, 3, 3, 5]);
    first_order(
        c,
        Op::ChannelAffine(ChannelAffine {
            scale: vec![2.0, -0.5, 3.0],
            shift: vec![0.1],
        }),
        vec![x],
    );
    for (kind, axes) in [
        (ReduceKind::Sum, vec![]),
        (ReduceKind::Mean, vec![]),
        (ReduceKind::Sum, vec![0, 2, 3]),
        (ReduceKind::Mean, vec![2, 3]),
        (ReduceKind::Mean, vec![1]),
    ] {
        let mut c = Case::new(12 + axes.len() as u64);
        let x = c.x("x", &[2, 3, 3, 5]);
        first_order(c, Op::Reduce(Reduce { kind, axes }), vec![x]);
    }
}

#[test]
fn unary_first_order() {
    let ops = [
        Unary::Relu,
        Unary::LeakyRelu { slope: 0.2 },
        Unary::Tanh,
        Unary::Clamp {
            min: -0.5,
            max: 0.5,
        },
        Unary::Abs,
        Unary::Neg,
        Unary::Sqrt,
        Unary::Square,
        Unary::Exp,
        Unary::Log,
        Unary::Affine {
            scale: -1.5,
            shift: 0.25,
        },
        Unary::Step,
        Unary::LeakyStep { slope: 0.2 },
        Unary::Sign,
        Unary::InRange {
            min: -0.5,
            max: 0.5,
        },
        Unary::Recip,
        Unary::Sigmoid,
        Unary::Silu,
        Unary::Softplus,
        Unary::Erf,
        Unary::Gelu,
        Unary::GeluTanh,
    ];
    for (k, u) in ops.into_iter().enumerate() {
        let mut c = Case::new(100 + k as u64);
        // sqrt, log and recip on positive values away from 0.
        let positive = matches!(u, Unary::Sqrt | Unary::Log | Unary::Recip);
        let x = if positive {
            c.input("x", &[2, 3, 5], 0.5, 1.5)
        } else {
            c.x("x", &[2, 3, 5])
        };
        first_order(c, Op::Unary(u), vec![x]);
    }
}

#[test]
fn binary_first_order_with_broadcasting() {
    let all = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Max,
        Binary::Min,
    ];
    for (k, b) in all.into_iter().enumerate() {
        for (sa, sb) in [
            (vec![2, 3, 1, 5], vec![3, 4, 1]),
            (vec![2, 3], vec![2, 3]),
            (vec![1], vec![3, 1, 5]),
        ] {
            let mut c = Case::new(200 + k as u64);
            let x = c.x("a", &sa);
            // Div by values away from 0.
            let y = if b == Binary::Div {
                c.input("b", &sb, 0.5, 1.5)
            } else {
                c.x("b", &sb)
            };
            first_order(c, Op::Binary(b), vec![x, y]);
        }
    }
}

/// A value read by several consumers gets the sum of their gradients; an input the loss does
/// not depend on gets zeros; only the asked gradients are computed.
#[test]
fn accumulates_and_prunes() {
    let mut c = Case::new(300);
    let x = c.x("x", &[2, 3]);
    let unused = c.x("unused", &[4]);
    let sq = c.un(Unary::Square, x);
    let t = c.un(Unary::Tanh, x);
    let s = c.bin(Binary::Mul, sq, t);
    let s = c.bin(Binary::Add, s, x);
    let f = c.loss(s);
    check(&c.g, &c.feeds, f, &[x], None);
    let (gg, ids) = grad(&c.g, f, &[x, unused]).unwrap();
    let v = cpu::evaluate::<f64>(&gg, &c.feeds).unwrap();
    assert_eq!(v[ids[1]], Tensor::zeros(&[4]));
    assert_eq!(gg.nodes[..c.g.nodes.len()], c.g.nodes[..]);
    assert!(gg.outputs.contains(&("grad.x".to_string(), ids[0])));

    // A conv whose weight gradient is not asked for adds no conv2d_weight_grad node.
    let mut c = Case::new(301);
    let x = c.x("x", &[1, 2, 5, 5]);
    let w = c.x("w", &[2, 2, 3, 3]);
    let y = c.op(
        Op::Conv2d(Conv2d {
            stride: 1,
            pad: 1,
            bias: false,
            groups: 1,
        }),
        vec![x, w],
    );
    let f = c.loss(y);
    let (gg, _) = grad(&c.g, f, &[x]).unwrap();
    assert!(!gg
        .nodes
        .iter()
        .any(|n| matches!(n.op, Op::Conv2dWeightGrad(_))));
    let (gg, _) = grad(&c.g, f, &[w]).unwrap();
    assert!(!gg
        .nodes
        .iter()
        .any(|n| matches!(n.op, Op::ConvTranspose2d(_))));
}

#[test]
fn errors() {
    let mut c = Case::new(400);
    let x = c.x("x", &[2, 3]);
    let y = c.un(Unary::Square, x);
    let e = grad(&c.g, y, &[x]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "autodiff at `n1`: expected a value with one element to differentiate, found shape [2, 3] (sum it first: sum_to_scalar)"
    );
    assert!(matches!(
        grad(&c.g, 9, &[x]),
        Err(CompileError::Autodiff { .. })
    ));

    // Max pool: the first order works, the second reports that it is not defined.
    let mut c = Case::new(401);
    let x = c.x("x", &[1, 1, 4, 4]);
    let p = c.op(
        Op::MaxPool2d(MaxPool2d {
            kernel: 2,
            stride: 2,
            pad: 0,
        }),
        vec![x],
    );
    let f = c.loss(p);
    let (g1, ids) = grad(&c.g, f, &[x]).unwrap();
    let mut g1 = g1;
    let s = sum_to_scalar(&mut g1, ids[0]).unwrap();
    let e = grad(&g1, s, &[x]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "autodiff at `grad.n1`: max_pool2d_grad: the second derivative is not defined in irdc; `grad.n1` is the gradient of a max pool, and a gradient of it was asked for (differentiate a graph with max pools only once)"
    );
}
