//! Pixel shuffles, resizes and average pooling, and the adjoints their gradients use, compiled
//! and run on the device (lavapipe without a GPU) against the CPU reference in f64 on random
//! inputs: odd sizes, factors 2 to 4, strided and padded windows, alone and reading an
//! elementwise op that fusion computes in their loads, shuffles in a conv's loads, and the second
//! order of each.

mod gpu_support;

use compiler::autodiff::{grad, sum_to_scalar};
use gpu_support::{check, random_feeds, G};
use ir::ops::*;
use ir::Op;

fn graph(name: &str, x: [usize; 4], ops: &[Op]) -> G {
    let mut g = G::new(name);
    let mut v = g.input("x", &x);
    for (i, op) in ops.iter().enumerate() {
        v = g.op(&format!("op{i}"), op.clone(), &[v]);
    }
    g.output(v);
    g
}

fn resize(factor: usize, mode: ResizeMode) -> Op {
    Op::Resize(Resize { factor, mode })
}

fn resize_grad(factor: usize, mode: ResizeMode) -> Op {
    Op::ResizeGrad(ResizeGrad { factor, mode })
}

fn pool(kernel: usize, stride: usize, pad: usize) -> Op {
    Op::AvgPool(AvgPool {
        kernel,
        stride,
        pad,
    })
}

fn pool_grad(kernel: usize, stride: usize, pad: usize, size: [usize; 2]) -> Op {
    Op::AvgPoolGrad(AvgPoolGrad {
        kernel,
        stride,
        pad,
        size,
    })
}

#[test]
fn shuffles_resizes_and_pools() {
    let (nearest, bilinear) = (ResizeMode::Nearest, ResizeMode::Bilinear);
    let cases: Vec<(&str, [usize; 4], Op)> = vec![
        (
            "shuffle2",
            [2, 8, 3, 5],
            Op::PixelShuffle(PixelShuffle { factor: 2 }),
        ),
        (
            "shuffle3",
            [1, 9, 2, 3],
            Op::PixelShuffle(PixelShuffle { factor: 3 }),
        ),
        (
            "unshuffle2",
            [2, 3, 4, 6],
            Op::PixelUnshuffle(PixelUnshuffle { factor: 2 }),
        ),
        (
            "unshuffle3",
            [1, 2, 6, 3],
            Op::PixelUnshuffle(PixelUnshuffle { factor: 3 }),
        ),
        ("nearest2", [2, 3, 3, 5], resize(2, nearest)),
        ("nearest3", [1, 2, 4, 3], resize(3, nearest)),
        ("bilinear2", [2, 3, 3, 5], resize(2, bilinear)),
        ("bilinear3", [1, 2, 4, 3], resize(3, bilinear)),
        ("bilinear4_row", [1, 2, 1, 3], resize(4, bilinear)),
        ("nearest2_grad", [1, 2, 6, 4], resize_grad(2, nearest)),
        ("bilinear2_grad", [2, 3, 6, 10], resize_grad(2, bilinear)),
        ("bilinear3_grad", [1, 2, 12, 9], resize_grad(3, bilinear)),
        (
            "bilinear4_grad_row",
            [1, 1, 4, 12],
            resize_grad(4, bilinear),
        ),
        ("avg2", [2, 3, 8, 9], pool(2, 2, 0)),
        ("avg3s2p1", [1, 2, 7, 6], pool(3, 2, 1)),
        ("avg3s1p1", [1, 3, 5, 5], pool(3, 1, 1)),
        ("avg2_grad", [2, 3, 4, 4], pool_grad(2, 2, 0, [8, 9])),
        ("avg3s2p1_grad", [1, 2, 4, 3], pool_grad(3, 2, 1, [7, 6])),
        ("avg3s1p1_grad", [1, 3, 5, 5], pool_grad(3, 1, 1, [5, 5])),
    ];
    for (i, (name, x, op)) in cases.into_iter().enumerate() {
        let g = graph(name, x, &[op]);
        check(&g.0, &random_feeds(&g.0, 100 + i as u64));
    }
}

/// An elementwise op before each gather is computed in its loads (the kernel count shows it), and
/// the results still match the reference.
#[test]
fn elementwise_ops_fuse_into_their_loads() {
    let ops = [
        Op::PixelShuffle(PixelShuffle { factor: 2 }),
        Op::PixelUnshuffle(PixelUnshuffle { factor: 2 }),
        resize(2, ResizeMode::Bilinear),
        pool(3, 2, 1),
    ];
    for (i, op) in ops.into_iter().enumerate() {
        let g = graph(
            &format!("fused{i}"),
            [1, 4, 6, 6],
            &[Op::Unary(Unary::Tanh), op],
        );
        let (plan, _) = check(&g.0, &random_feeds(&g.0, 200 + i as u64));
        assert_eq!(plan.kernels.len(), 1, "{:?}", plan.kernels);
        assert_eq!(
            plan.kernels[0].nodes.len(),
            2,
            "{:?}",
            plan.kernels[0].nodes
        );
    }
}

/// A pixel shuffle or unshuffle read by a conv is computed in the conv's loads (a reindexing,
/// inlined as elementwise ops are): no kernel of its own.
#[test]
fn shuffles_are_computed_in_conv_loads() {
    let cases = [
        ([1, 8, 4, 5], Op::PixelShuffle(PixelShuffle { factor: 2 })),
        (
            [1, 2, 6, 4],
            Op::PixelUnshuffle(PixelUnshuffle { factor: 2 }),
        ),
    ];
    for (i, (x, op)) in cases.into_iter().enumerate() {
        let mut g = G::new(&format!("shuffle_conv{i}"));
        let xi = g.input("x", &x);
        let s = g.op("s", op, &[xi]);
        let channels = g.0.nodes[s].shape[1];
        let w = g.param("w", &[3, channels, 3, 3]);
        let conv = Conv2d {
            stride: 1,
            pad: 1,
            bias: false,
            groups: 1,
        };
        let y = g.op("y", Op::Conv2d(conv), &[s, w]);
        g.output(y);
        let (plan, _) = check(&g.0, &random_feeds(&g.0, 300 + i as u64));
        assert_eq!(plan.kernels.len(), 1, "{:?}", plan.kernels);
        assert_eq!(plan.kernels[0].nodes, vec!["y", "s"]);
    }
}

/// The second order on the device: p = || d f / d x ||^2 of f = sum(tanh(L(x * w))), and d p / d w,
/// which runs each op's VJP and the VJP of that (the op again), against the CPU reference.
#[test]
fn second_order_on_the_device() {
    let ops = [
        Op::PixelShuffle(PixelShuffle { factor: 2 }),
        resize(2, ResizeMode::Nearest),
        resize(2, ResizeMode::Bilinear),
        pool(3, 2, 1),
    ];
    for (i, op) in ops.into_iter().enumerate() {
        let mut g = G::new(&format!("second_order{i}"));
        let x = g.input("x", &[1, 4, 4, 4]);
        let w = g.param("w", &[1, 4, 1, 1]);
        let xw = g.op("xw", Op::Binary(Binary::Mul), &[x, w]);
        let l = g.op("l", op, &[xw]);
        let t = g.op("t", Op::Unary(Unary::Tanh), &[l]);
        let f = sum_to_scalar(&mut g.0, t).unwrap();
        let (mut g1, dx) = grad(&g.0, f, &[x]).unwrap();
        let sq = g1.push("p.sq", Op::Unary(Unary::Square), vec![dx[0]]);
        let p = sum_to_scalar(&mut g1, sq.unwrap()).unwrap();
        let (mut g2, dw) = grad(&g1, p, &[w]).unwrap();
        g2.outputs = vec![("p".into(), p), ("dw".into(), dw[0])];
        check(&g2, &random_feeds(&g2, 400 + i as u64));
    }
}
