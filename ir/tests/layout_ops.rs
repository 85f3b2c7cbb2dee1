//! Pixel shuffles, resizes and average pooling: shape rules with their exact messages, CPU
//! references against values worked out by hand from PyTorch's definitions, and each adjoint
//! against its forward (<A x, y> == <x, A^T y>).

use ir::ops::*;
use ir::Tensor;

fn run(op: &ir::Op, x: &Tensor<f64>) -> Tensor<f64> {
    let shape = op.infer_shape(&[&x.shape]).unwrap();
    op.cpu(&[x], &shape)
}

fn err(op: ir::Op, x: &[usize]) -> String {
    op.infer_shape(&[x]).unwrap_err()
}

fn iota(shape: &[usize]) -> Tensor<f64> {
    Tensor::new(shape, (1..=ir::numel(shape)).map(|v| v as f64).collect())
}

/// Deterministic values in [-1.25, 1.25], different per seed.
fn data(shape: &[usize], seed: usize) -> Tensor<f64> {
    let n = ir::numel(shape);
    let v = (0..n).map(|i| (((i * 7 + seed * 13) % 11) as f64 - 5.0) / 4.0);
    Tensor::new(shape, v.collect())
}

fn dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    a.data.iter().zip(&b.data).map(|(u, v)| u * v).sum()
}

/// <forward(x), y> == <x, adjoint(y)> on random-ish data.
fn adjoint(forward: ir::Op, adjoint: ir::Op, x_shape: &[usize]) {
    let x = data(x_shape, 1);
    let y_shape = forward.infer_shape(&[x_shape]).unwrap();
    let y = data(&y_shape, 2);
    assert_eq!(adjoint.infer_shape(&[&y_shape]), Ok(x_shape.to_vec()));
    let lhs = dot(&run(&forward, &x), &y);
    let rhs = dot(&x, &run(&adjoint, &y));
    assert!(
        (lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0),
        "{lhs} vs {rhs}"
    );
}

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= 1e-12, "element {i}: {a} vs {b}");
    }
}

#[test]
fn pixel_shuffle_is_pytorchs() {
    // Channel k, column j holds 10 k + j; y[h*2 + i, w*2 + j] = x[i*2 + j, h, w].
    let x = Tensor::new(&[1, 4, 1, 2], vec![0., 1., 10., 11., 20., 21., 30., 31.]);
    let shuffle = ir::Op::PixelShuffle(PixelShuffle { factor: 2 });
    let y = run(&shuffle, &x);
    assert_eq!(y.shape, vec![1, 1, 2, 4]);
    assert_eq!(y.data, vec![0., 10., 1., 11., 20., 30., 21., 31.]);
    let unshuffle = ir::Op::PixelUnshuffle(PixelUnshuffle { factor: 2 });
    assert_eq!(run(&unshuffle, &y), x);
    // Two output channels and a batch of two, factor 3, round trip both ways.
    let x = iota(&[2, 18, 2, 3]);
    let shuffle = ir::Op::PixelShuffle(PixelShuffle { factor: 3 });
    let unshuffle = ir::Op::PixelUnshuffle(PixelUnshuffle { factor: 3 });
    let y = run(&shuffle, &x);
    assert_eq!(y.shape, vec![2, 2, 6, 9]);
    assert_eq!(run(&unshuffle, &y), x);
    let z = iota(&[1, 2, 6, 3]);
    assert_eq!(run(&shuffle, &run(&unshuffle, &z)), z);
    adjoint(shuffle, unshuffle, &[2, 18, 2, 3]);
}

#[test]
fn pixel_shuffle_shapes() {
    let shuffle = |factor| ir::Op::PixelShuffle(PixelShuffle { factor });
    let unshuffle = |factor| ir::Op::PixelUnshuffle(PixelUnshuffle { factor });
    assert_eq!(
        err(shuffle(2), &[1, 6, 2, 2]),
        "pixel_shuffle: expected channels divisible by factor^2 = 4, found 6 (input [1, 6, 2, 2])"
    );
    assert_eq!(
        err(shuffle(0), &[1, 4, 2, 2]),
        "pixel_shuffle: expected a factor >= 1, found 0"
    );
    assert_eq!(
        err(shuffle(2), &[4, 2, 2]),
        "pixel_shuffle: expected an input of rank 4 [N, C, H, W], found [4, 2, 2]"
    );
    assert_eq!(
        err(unshuffle(2), &[1, 1, 3, 4]),
        "pixel_unshuffle: expected a height and width divisible by the factor 2, found 3x4 (input [1, 1, 3, 4])"
    );
    assert_eq!(
        err(unshuffle(0), &[1, 1, 4, 4]),
        "pixel_unshuffle: expected a factor >= 1, found 0"
    );
    assert_eq!(
        unshuffle(2).infer_shape(&[&[2, 3, 4, 6]]),
        Ok(vec![2, 12, 2, 3])
    );
}

#[test]
fn nearest_resize_repeats_pixels() {
    let x = Tensor::new(&[1, 1, 2, 2], vec![1., 2., 3., 4.]);
    let op = ir::Op::Resize(Resize {
        factor: 2,
        mode: ResizeMode::Nearest,
    });
    #[rustfmt::skip]
    let want = [
        1., 1., 2., 2.,
        1., 1., 2., 2.,
        3., 3., 4., 4.,
        3., 3., 4., 4.,
    ];
    assert_eq!(run(&op, &x).data, want);
    // Its adjoint sums each 2x2 block.
    let grad = ir::Op::ResizeGrad(ResizeGrad {
        factor: 2,
        mode: ResizeMode::Nearest,
    });
    assert_eq!(run(&grad, &iota(&[1, 1, 2, 4])).data, vec![14., 22.]);
    adjoint(op, grad, &[2, 3, 3, 4]);
}

#[test]
fn bilinear_resize_is_pytorchs() {
    // F.interpolate([[1, 2], [3, 4]], scale_factor=2, mode="bilinear", align_corners=False):
    // along an axis of two, outputs read the sources -0.25 (clamped to 0), 0.25, 0.75, 1.25
    // (the last one at the edge), so a row [a, b] becomes [a, .75a + .25b, .25a + .75b, b].
    let x = Tensor::new(&[1, 1, 2, 2], vec![1., 2., 3., 4.]);
    let op = ir::Op::Resize(Resize {
        factor: 2,
        mode: ResizeMode::Bilinear,
    });
    #[rustfmt::skip]
    let want = [
        1.0, 1.25, 1.75, 2.0,
        1.5, 1.75, 2.25, 2.5,
        2.5, 2.75, 3.25, 3.5,
        3.0, 3.25, 3.75, 4.0,
    ];
    close(&run(&op, &x).data, &want);
    // Factor 3 of a row [0, 3]: sources -1/3 (0), 0, 1/3, 2/3, 1, 4/3 (the edge); every row of
    // a height-1 input is the same.
    let op = ir::Op::Resize(Resize {
        factor: 3,
        mode: ResizeMode::Bilinear,
    });
    let y = run(&op, &Tensor::new(&[1, 1, 1, 2], vec![0., 3.]));
    assert_eq!(y.shape, vec![1, 1, 3, 6]);
    close(&y.data, &[[0., 0., 1., 2., 3., 3.]; 3].concat());
    for (s, shape) in [(2, [2, 2, 3, 4]), (3, [1, 2, 4, 3])] {
        let mode = ResizeMode::Bilinear;
        let grad = ir::Op::ResizeGrad(ResizeGrad { factor: s, mode });
        adjoint(ir::Op::Resize(Resize { factor: s, mode }), grad, &shape);
    }
}

#[test]
fn resize_shapes() {
    let resize = |factor| {
        ir::Op::Resize(Resize {
            factor,
            mode: ResizeMode::Bilinear,
        })
    };
    assert_eq!(
        resize(3).infer_shape(&[&[2, 3, 4, 5]]),
        Ok(vec![2, 3, 12, 15])
    );
    assert_eq!(
        err(resize(0), &[1, 1, 4, 4]),
        "resize: expected a factor >= 1, found 0"
    );
    assert_eq!(
        err(resize(2), &[4, 4]),
        "resize: expected an input of rank 4 [N, C, H, W], found [4, 4]"
    );
    let grad = ir::Op::ResizeGrad(ResizeGrad {
        factor: 2,
        mode: ResizeMode::Nearest,
    });
    assert_eq!(
        err(grad, &[1, 1, 4, 5]),
        "resize_grad: expected a height and width divisible by the factor 2, found 4x5 (gradient [1, 1, 4, 5])"
    );
}

#[test]
fn avg_pool_is_pytorchs() {
    let x = iota(&[1, 1, 4, 4]);
    let pool = |kernel, stride, pad| {
        ir::Op::AvgPool(AvgPool {
            kernel,
            stride,
            pad,
        })
    };
    assert_eq!(run(&pool(2, 2, 0), &x).data, vec![3.5, 5.5, 11.5, 13.5]);
    // nn.AvgPool2d(3, 2, 1) (count_include_pad): the padding counts in the divisor 9.
    let want = [14. / 9., 30. / 9., 57. / 9., 11.];
    close(&run(&pool(3, 2, 1), &x).data, &want);
    for (k, s, p, shape) in [
        (2, 2, 0, [2, 3, 4, 5]),
        (3, 2, 1, [1, 2, 5, 6]),
        (3, 1, 1, [1, 1, 4, 4]),
    ] {
        let grad = ir::Op::AvgPoolGrad(AvgPoolGrad {
            kernel: k,
            stride: s,
            pad: p,
            size: [shape[2], shape[3]],
        });
        adjoint(pool(k, s, p), grad, &shape);
    }
}

#[test]
fn avg_pool_shapes() {
    let pool = |kernel, stride, pad| {
        ir::Op::AvgPool(AvgPool {
            kernel,
            stride,
            pad,
        })
    };
    assert_eq!(
        pool(2, 2, 0).infer_shape(&[&[1, 2, 7, 6]]),
        Ok(vec![1, 2, 3, 3])
    );
    assert_eq!(
        err(pool(3, 1, 2), &[1, 1, 4, 4]),
        "avg_pool: expected pad <= kernel / 2, found pad 2 with kernel 3"
    );
    assert_eq!(
        err(pool(5, 1, 0), &[1, 1, 2, 9]),
        "avg_pool: output would be empty: input 2x9, kernel 5, pad 0"
    );
    assert_eq!(
        err(pool(3, 0, 0), &[1, 1, 4, 4]),
        "avg_pool: expected a stride >= 1, found 0"
    );
    assert_eq!(
        err(pool(0, 1, 0), &[1, 1, 4, 4]),
        "avg_pool: expected a kernel >= 1, found 0"
    );
    assert_eq!(
        err(pool(2, 2, 0), &[1, 4, 4]),
        "avg_pool: expected an input of rank 4 [N, C, H, W], found [1, 4, 4]"
    );
    let grad = ir::Op::AvgPoolGrad(AvgPoolGrad {
        kernel: 2,
        stride: 2,
        pad: 0,
        size: [4, 4],
    });
    assert_eq!(
        err(grad, &[1, 1, 3, 3]),
        "avg_pool_grad: expected gy [1, 1, 2, 2] (avg_pool's output for x [1, 1, 4, 4]), found [1, 1, 3, 3]"
    );
}

/// The four names in a model file, with their defaults (AvgPool's stride is its kernel,
/// Resize's mode nearest).
#[test]
fn model_language() {
    let src = r#"Model(
    graphs: {
        g: Graph(
            inputs: { x: [1, 8, 6, 6] },
            nodes: {
                down: PixelUnshuffle(in: x, factor: 2),
                up: PixelShuffle(in: down, factor: 2),
                near: Resize(in: up, factor: 2),
                smooth: Resize(in: near, factor: 3, mode: "bilinear"),
                pool: AvgPool(in: smooth, kernel: 4),
            },
            outputs: { y: pool },
        ),
    },
)"#;
    let m = ir::front::parse(src, "layout.ron", &[]).unwrap_or_else(|e| panic!("{e}"));
    let g = m.build("g", &[]).unwrap_or_else(|e| panic!("{e}"));
    let op = |name: &str| g.nodes[g.find(name).unwrap()].op.clone();
    let shape = |name: &str| g.nodes[g.find(name).unwrap()].shape.clone();
    assert_eq!(shape("down"), vec![1, 32, 3, 3]);
    assert_eq!(shape("up"), vec![1, 8, 6, 6]);
    let nearest = ResizeMode::Nearest;
    assert_eq!(
        op("near"),
        ir::Op::Resize(Resize {
            factor: 2,
            mode: nearest
        })
    );
    let bilinear = ResizeMode::Bilinear;
    assert_eq!(
        op("smooth"),
        ir::Op::Resize(Resize {
            factor: 3,
            mode: bilinear
        })
    );
    assert_eq!(shape("smooth"), vec![1, 8, 36, 36]);
    let pool = AvgPool {
        kernel: 4,
        stride: 4,
        pad: 0,
    };
    assert_eq!(op("pool"), ir::Op::AvgPool(pool));
    assert_eq!(shape("pool"), vec![1, 8, 9, 9]);
}
