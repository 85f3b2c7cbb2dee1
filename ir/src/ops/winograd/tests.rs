//! Winograd's compile-time ops against the direct convolution they stand for, on the CPU.

use super::*;
use crate::ops::{Conv2d, ConvTranspose2d};
use crate::Op;

fn wave(len: usize, k: f64) -> Vec<f64> {
    (0..len).map(|i| ((i as f64) * k).sin()).collect()
}

fn run(op: Op, ins: &[&Tensor<f64>]) -> Tensor<f64> {
    let shapes: Vec<&[usize]> = ins.iter().map(|t| t.shape.as_slice()).collect();
    let shape = op.infer_shape(&shapes).unwrap();
    op.cpu(ins, &shape)
}

/// The four ops in a row give the direct conv's result (the CPU references of both): `conv`
/// (with a bias) on x [n, c, h, w] into `o` channels, as `kind` with the input transform's
/// padding `pad`.
fn check_against_direct(conv: Op, kind: WinogradKind, pad: usize, x: [usize; 4], o: usize) {
    let [n, c, h, w] = x;
    let transposed = matches!(conv, Op::ConvTranspose2d(_));
    let x = Tensor::new(&[n, c, h, w], wave(n * c * h * w, 0.37));
    let w_shape = match transposed {
        true => [c, o, 3, 3],
        false => [o, c, 3, 3],
    };
    let wt = Tensor::new(&w_shape, wave(o * c * 9, 1.13));
    let b = Tensor::new(&[o], wave(o, 0.7));
    let direct = run(conv.clone(), &[&x, &wt, &b]);
    for tile in WinogradTransforms::TILES {
        let weight = WinogradWeight {
            tile,
            kind,
            transposed,
        };
        let u = run(Op::WinogradWeight(weight), &[&wt]);
        let v = run(Op::WinogradInput(WinogradInput { tile, kind, pad }), &[&x]);
        let m = run(Op::WinogradGemm(WinogradGemm), &[&u, &v]);
        let out = WinogradOutput {
            tile,
            kind,
            height: direct.shape[2],
            width: direct.shape[3],
            bias: true,
        };
        let y = run(Op::WinogradOutput(out), &[&m, &b]);
        assert_eq!(y.shape, direct.shape);
        for (k, (a, b)) in y.data.iter().zip(&direct.data).enumerate() {
            assert!(
                (a - b).abs() < 1e-9,
                "{conv:?} as {kind:?} {tile}: element {k}: {a} vs {b}"
            );
        }
    }
}

fn conv2d(stride: usize, pad: usize) -> Op {
    Op::Conv2d(Conv2d {
        stride,
        pad,
        bias: true,
        groups: 1,
    })
}

fn conv_t(stride: usize, pad: usize, out_pad: usize) -> Op {
    Op::ConvTranspose2d(ConvTranspose2d {
        stride,
        pad,
        out_pad,
        bias: true,
        groups: 1,
    })
}

#[test]
fn the_four_ops_compute_the_direct_conv() {
    use WinogradKind::*;
    // Padding 1, an output that the tiles divide and one they do not (7x5), a batch.
    check_against_direct(conv2d(1, 1), Stride1, 1, [2, 3, 8, 8], 4);
    check_against_direct(conv2d(1, 1), Stride1, 1, [1, 2, 7, 5], 3);
    // No padding: a 9x6 input gives a 7x4 output.
    check_against_direct(conv2d(1, 0), Stride1, 0, [1, 2, 9, 6], 2);
    // Stride 2: 16x16 -> 8x8, 9x7 -> 5x4, and without padding 9x12 -> 4x5.
    check_against_direct(conv2d(2, 1), Stride2, 1, [2, 3, 16, 16], 4);
    check_against_direct(conv2d(2, 1), Stride2, 1, [1, 2, 9, 7], 3);
    check_against_direct(conv2d(2, 0), Stride2, 0, [1, 2, 9, 12], 2);
}

/// A stride-1 transposed conv is the conv2d of its flipped weight with padding 2 - pad; a
/// stride-2 one with padding 1 is `Upsample2` of it, with out_pad 1 (the output twice the
/// input) or 0 (one less).
#[test]
fn a_transposed_weight_gives_the_transposed_conv() {
    use WinogradKind::*;
    check_against_direct(conv_t(1, 1, 0), Stride1, 1, [1, 3, 6, 5], 2);
    check_against_direct(conv_t(1, 0, 0), Stride1, 2, [1, 3, 6, 5], 2);
    check_against_direct(conv_t(2, 1, 1), Upsample2, 0, [2, 3, 8, 8], 4);
    check_against_direct(conv_t(2, 1, 1), Upsample2, 0, [1, 2, 5, 7], 3);
    check_against_direct(conv_t(2, 1, 0), Upsample2, 0, [1, 2, 5, 6], 3);
}

#[test]
fn shape_rules_say_what_they_expected() {
    let op = Op::WinogradWeight(WinogradWeight {
        tile: 3,
        kind: WinogradKind::Stride1,
        transposed: false,
    });
    assert_eq!(
        op.infer_shape(&[&[4, 2, 3, 3]]).unwrap_err(),
        "winograd: expected an output tile of [2, 4], found 3"
    );
    let op = Op::WinogradWeight(WinogradWeight {
        tile: 4,
        kind: WinogradKind::Stride1,
        transposed: false,
    });
    assert_eq!(
        op.infer_shape(&[&[4, 2, 5, 5]]).unwrap_err(),
        "winograd_weight: expected a 3x3 weight [O, C, 3, 3], found [4, 2, 5, 5]"
    );
    let op = Op::WinogradGemm(WinogradGemm);
    assert_eq!(
        op.infer_shape(&[&[36, 8, 4, 1], &[36, 5, 1, 16]]).unwrap_err(),
        "winograd_gemm: expected inputs [36, 4, N, T] for weights [36, 8, 4, 1], found [36, 5, 1, 16] and [36, 8, 4, 1]"
    );
    let op = Op::WinogradOutput(WinogradOutput {
        tile: 4,
        kind: WinogradKind::Stride1,
        height: 8,
        width: 9,
        bias: false,
    });
    assert_eq!(op.infer_shape(&[&[36, 8, 1, 6]]).unwrap(), vec![1, 8, 8, 9]);
    assert_eq!(
        op.infer_shape(&[&[36, 8, 1, 4]]).unwrap_err(),
        "winograd_output: expected products [36, O, N, 6] for a 8x9 output in tiles of 4, found [36, 8, 1, 4]"
    );
    // An upsampling's tiles are 8x8 outputs from 5x5 patches, 81 products.
    let op = Op::WinogradOutput(WinogradOutput {
        tile: 4,
        kind: WinogradKind::Upsample2,
        height: 16,
        width: 17,
        bias: false,
    });
    assert_eq!(
        op.infer_shape(&[&[81, 8, 1, 6]]).unwrap(),
        vec![1, 8, 16, 17]
    );
    let op = Op::WinogradInput(WinogradInput {
        tile: 4,
        kind: WinogradKind::Upsample2,
        pad: 1,
    });
    assert_eq!(
        op.infer_shape(&[&[1, 8, 8, 8]]).unwrap_err(),
        "winograd_input: expected no padding for an upsampling (its patches start at the tile's first input), found 1"
    );
    let op = Op::WinogradInput(WinogradInput {
        tile: 4,
        kind: WinogradKind::Stride2,
        pad: 0,
    });
    assert_eq!(op.infer_shape(&[&[1, 8, 9, 9]]).unwrap(), vec![81, 8, 1, 1]);
    assert_eq!(
        op.infer_shape(&[&[1, 8, 2, 9]]).unwrap_err(),
        "winograd_input: expected a padded input of at least 3x3, found 2x9"
    );
}
