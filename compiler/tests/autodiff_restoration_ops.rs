//! Reverse-mode autodiff against central finite differences of the f64 CPU reference, first
//! order, for the ops of modern restoration networks: grouped convs, layer norms, attention's
//! matmul and softmax, pixel shuffles, resizes and average pooling (the second order is in
//! `autodiff_second_order.rs`).

mod autodiff_support;

use autodiff_support::*;
use ir::ops::*;
use ir::Op;

/// Grouped and depthwise convs, transposed too, and their weight gradients (whose VJPs are
/// grouped convs again).
#[test]
fn grouped_convs_first_order() {
    // (input channels, output channels, groups, stride)
    for (ci, co, groups, s) in [(4, 6, 2, 1), (3, 3, 3, 2)] {
        let mut c = Case::new(40 + groups as u64);
        let x = c.x("x", &[2, ci, 5, 5]);
        let w = c.x("w", &[co, ci / groups, 3, 3]);
        let b = c.x("b", &[co]);
        let op = Conv2d {
            stride: s,
            pad: 1,
            bias: true,
            groups,
        };
        first_order(c, Op::Conv2d(op), vec![x, w, b]);

        let mut c = Case::new(50 + groups as u64);
        let x = c.x("x", &[2, ci, 3, 3]);
        let w = c.x("w", &[ci, co / groups, 3, 3]);
        let op = ConvTranspose2d {
            stride: 2,
            pad: 1,
            out_pad: 1,
            bias: false,
            groups,
        };
        first_order(c, Op::ConvTranspose2d(op), vec![x, w]);

        let mut c = Case::new(60 + groups as u64);
        let x = c.x("x", &[2, ci, 5, 5]);
        let ho = (5 + 2 - 3) / s + 1;
        let gy = c.x("gy", &[2, co, ho, ho]);
        let op = Conv2dWeightGrad {
            stride: s,
            pad: 1,
            kh: 3,
            kw: 3,
            groups,
        };
        first_order(c, Op::Conv2dWeightGrad(op), vec![x, gy]);

        let mut c = Case::new(70 + groups as u64);
        let x = c.x("x", &[2, ci, 3, 3]);
        let gy = c.x("gy", &[2, co, 6, 6]);
        let op = ConvTranspose2dWeightGrad {
            stride: 2,
            pad: 1,
            kh: 3,
            kw: 3,
            groups,
        };
        first_order(c, Op::ConvTranspose2dWeightGrad(op), vec![x, gy]);
    }
}

#[test]
fn layer_norm_first_order() {
    for affine in [true, false] {
        let mut c = Case::new(80 + affine as u64);
        let x = c.x("x", &[2, 5, 2, 3]);
        let mut ins = vec![x];
        if affine {
            ins.push(c.x("w", &[5]));
            ins.push(c.x("b", &[5]));
        }
        let op = LayerNorm { eps: 1e-3, affine };
        first_order(c, Op::LayerNorm(op), ins);
    }
}

/// Every combination of transposes, and batch axes broadcast from either side (their gradients
/// summed back to size 1).
#[test]
fn matmul_first_order() {
    for (k, (trans_a, trans_b)) in [(false, false), (true, false), (false, true), (true, true)]
        .into_iter()
        .enumerate()
    {
        let mut c = Case::new(250 + k as u64);
        let (m, kk, n) = (3, 4, 2);
        let a = match trans_a {
            true => c.x("a", &[2, 1, kk, m]),
            false => c.x("a", &[2, 1, m, kk]),
        };
        let b = match trans_b {
            true => c.x("b", &[1, 3, n, kk]),
            false => c.x("b", &[1, 3, kk, n]),
        };
        first_order(c, Op::MatMul(MatMul { trans_a, trans_b }), vec![a, b]);
    }
}

#[test]
fn softmax_first_order() {
    for (k, (shape, axis)) in [(vec![2, 3, 2, 4], 3), (vec![2, 3, 2, 4], 1), (vec![5], 0)]
        .into_iter()
        .enumerate()
    {
        let mut c = Case::new(260 + k as u64);
        let x = c.input("x", &shape, -2.0, 2.0);
        first_order(c, Op::Softmax(Softmax { axis }), vec![x]);
    }
}

/// Pixel shuffles, resizes, average pooling and the adjoints their VJPs use.
#[test]
fn shuffle_resize_and_avg_pool_first_order() {
    let (nearest, bilinear) = (ResizeMode::Nearest, ResizeMode::Bilinear);
    let pool = |kernel, stride, pad| AvgPool {
        kernel,
        stride,
        pad,
    };
    let cases: Vec<(Op, [usize; 4])> = vec![
        (Op::PixelShuffle(PixelShuffle { factor: 2 }), [2, 8, 2, 3]),
        (
            Op::PixelUnshuffle(PixelUnshuffle { factor: 2 }),
            [1, 2, 4, 6],
        ),
        (
            Op::Resize(Resize {
                factor: 2,
                mode: nearest,
            }),
            [2, 2, 3, 2],
        ),
        (
            Op::Resize(Resize {
                factor: 2,
                mode: bilinear,
            }),
            [2, 2, 3, 2],
        ),
        (
            Op::Resize(Resize {
                factor: 3,
                mode: bilinear,
            }),
            [1, 2, 2, 3],
        ),
        (
            Op::ResizeGrad(ResizeGrad {
                factor: 3,
                mode: nearest,
            }),
            [1, 2, 6, 3],
        ),
        (
            Op::ResizeGrad(ResizeGrad {
                factor: 2,
                mode: bilinear,
            }),
            [1, 2, 6, 4],
        ),
        (Op::AvgPool(pool(2, 2, 0)), [2, 2, 4, 5]),
        (Op::AvgPool(pool(3, 2, 1)), [1, 2, 5, 5]),
        (Op::AvgPool(pool(3, 1, 1)), [1, 2, 4, 3]),
        (
            Op::AvgPoolGrad(AvgPoolGrad {
                kernel: 3,
                stride: 2,
                pad: 1,
                size: [5, 6],
            }),
            [1, 2, 3, 3],
        ),
    ];
    for (k, (op, shape)) in cases.into_iter().enumerate() {
        let mut c = Case::new(40 + k as u64);
        let x = c.x("x", &shape);
        first_order(c, op, vec![x]);
    }
}
