//! Shapes, hand-computed values and the adjoint identity of the convolutions.

use super::*;
use approx::assert_relative_eq;

fn conv(stride: usize, pad: usize, bias: bool) -> Conv2d {
    Conv2d {
        stride,
        pad,
        bias,
        groups: 1,
    }
}
fn convt(stride: usize, pad: usize, out_pad: usize, bias: bool) -> ConvTranspose2d {
    ConvTranspose2d {
        stride,
        pad,
        out_pad,
        bias,
        groups: 1,
    }
}
/// Deterministic, irregular test data without a random number generator.
fn data(shape: &[usize], seed: usize) -> Tensor<f64> {
    let n = crate::numel(shape);
    Tensor::new(
        shape,
        (0..n)
            .map(|i| (((i * 7 + seed * 13) % 11) as f64 - 5.0) / 4.0)
            .collect(),
    )
}

#[test]
fn conv_shapes() {
    assert_eq!(
        conv(1, 1, true).shape(&[&[2, 8, 16, 16], &[16, 8, 3, 3], &[16]]),
        Ok(vec![2, 16, 16, 16])
    );
    assert_eq!(
        conv(2, 2, false).shape(&[&[1, 3, 256, 256], &[64, 3, 4, 4]]),
        Ok(vec![1, 64, 129, 129])
    );
    assert_eq!(
        conv(2, 1, false).shape(&[&[1, 1, 3, 5], &[1, 1, 2, 3]]),
        Ok(vec![1, 1, 2, 3])
    );
    assert_eq!(
        conv(1, 1, false).shape(&[&[1, 8, 4, 4], &[16, 4, 3, 3]]).unwrap_err(),
        "conv2d: expected a weight with 8 input channels (the input has 8), found weight [16, 4, 3, 3]"
    );
    assert_eq!(
        conv(1, 0, false)
            .shape(&[&[1, 8, 2, 2], &[16, 8, 7, 7]])
            .unwrap_err(),
        "conv2d: output would be empty: input 2x2, kernel 7, pad 0"
    );
    assert_eq!(
        conv(1, 0, true)
            .shape(&[&[1, 8, 4, 4], &[16, 8, 3, 3]])
            .unwrap_err(),
        "conv2d: expected 3 inputs (x, weight, bias), found 2"
    );
    assert_eq!(
        conv(1, 0, true)
            .shape(&[&[1, 8, 4, 4], &[16, 8, 3, 3], &[8]])
            .unwrap_err(),
        "conv2d: expected a bias [16] (one per output channel), found [8]"
    );
    assert_eq!(
        conv(1, 0, false)
            .shape(&[&[8, 4, 4], &[16, 8, 3, 3]])
            .unwrap_err(),
        "conv2d: expected an input of rank 4 [N, C, H, W], found [8, 4, 4]"
    );
    assert_eq!(
        conv(1, 0, false)
            .shape(&[&[1, 8, 4, 4], &[16, 8]])
            .unwrap_err(),
        "conv2d: expected a weight of rank 4 [O, C, kh, kw], found [16, 8]"
    );
    assert_eq!(
        conv(0, 0, false)
            .shape(&[&[1, 8, 4, 4], &[16, 8, 3, 3]])
            .unwrap_err(),
        "conv2d: expected a stride >= 1, found 0"
    );
}

#[test]
fn conv_transpose_shapes() {
    // docs/spec.md's up-sampling: 3x3, stride 2, pad 1, out_pad 1 doubles H and W.
    assert_eq!(
        convt(2, 1, 1, true).shape(&[&[1, 256, 64, 64], &[256, 128, 3, 3], &[128]]),
        Ok(vec![1, 128, 128, 128])
    );
    assert_eq!(
        convt(2, 1, 1, false).shape(&[&[1, 8, 4, 4], &[4, 8, 3, 3]]).unwrap_err(),
        "conv_transpose2d: expected a weight with 8 input channels first (the input has 8), found weight [4, 8, 3, 3]"
    );
    assert_eq!(
        convt(1, 0, 1, false)
            .shape(&[&[1, 8, 4, 4], &[8, 4, 3, 3]])
            .unwrap_err(),
        "conv_transpose2d: expected out_pad < stride, found out_pad 1 with stride 1"
    );
    assert_eq!(
        convt(1, 3, 0, false)
            .shape(&[&[1, 8, 1, 1], &[8, 4, 3, 3]])
            .unwrap_err(),
        "conv_transpose2d: output would be empty: input 1x1, kernel 3, stride 1, pad 3"
    );
    assert_eq!(
        convt(2, 0, 0, true)
            .shape(&[&[1, 8, 4, 4], &[8, 4, 3, 3], &[8]])
            .unwrap_err(),
        "conv_transpose2d: expected a bias [4] (one per output channel), found [8]"
    );
}

#[test]
fn conv_hand_computed() {
    // Input 1..9 zero-padded by 1, 2x2 kernel [[1, 2], [3, 4]], stride 2: the windows start at
    // padded (0,0), (0,2), (2,0), (2,2).
    let x = Tensor::new(&[1, 1, 3, 3], (1..=9).map(f64::from).collect());
    let w = Tensor::new(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let b = Tensor::new(&[1], vec![0.5]);
    let op = conv(2, 1, true);
    let shape = op.shape(&[&x.shape, &w.shape, &b.shape]).unwrap();
    let y = op.cpu(&[&x, &w, &b], &shape);
    assert_eq!(y.shape, vec![1, 1, 2, 2]);
    assert_eq!(y.data, vec![4.5, 18.5, 36.5, 77.5]);
}

#[test]
fn conv_transpose_hand_computed() {
    // Stride 2 with a 2x2 kernel of ones: each input pixel becomes a 2x2 block of itself.
    let x = Tensor::new(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let w = Tensor::new(&[1, 1, 2, 2], vec![1.0; 4]);
    let op = convt(2, 0, 0, false);
    let y = op.cpu(&[&x, &w], &op.shape(&[&x.shape, &w.shape]).unwrap());
    #[rustfmt::skip]
    let want = vec![1.0, 1.0, 2.0, 2.0,  1.0, 1.0, 2.0, 2.0,  3.0, 3.0, 4.0, 4.0,  3.0, 3.0, 4.0, 4.0];
    assert_eq!(y.data, want);
}

/// ConvTranspose2d is the adjoint of Conv2d with the same weights, stride and padding:
/// <conv(x), y> == <x, convT(y)>, with out_pad choosing convT's output size as x's.
#[test]
fn conv_transpose_is_adjoint_of_conv() {
    for (hw, k, s, p, out_pad) in [
        (7, 3, 2, 1, 0),
        (8, 3, 2, 1, 1),
        (6, 4, 2, 2, 0),
        (5, 3, 1, 1, 0),
        (9, 1, 3, 0, 2),
    ] {
        let (c, o) = (3, 2);
        let x = data(&[2, c, hw, hw], 1);
        let w = data(&[o, c, k, k], 2);
        let fwd = conv(s, p, false);
        let ys = fwd.shape(&[&x.shape, &w.shape]).unwrap();
        let y = data(&ys, 3);
        let bwd = convt(s, p, out_pad, false);
        let xs = bwd.shape(&[&ys, &w.shape]).unwrap();
        assert_eq!(xs, x.shape, "hw {hw} k {k} s {s} p {p}");
        let dot = |a: &Tensor<f64>, b: &Tensor<f64>| {
            a.data.iter().zip(&b.data).map(|(u, v)| u * v).sum::<f64>()
        };
        let lhs = dot(&fwd.cpu(&[&x, &w], &ys), &y);
        let rhs = dot(&x, &bwd.cpu(&[&y, &w], &xs));
        assert_relative_eq!(lhs, rhs, max_relative = 1e-12);
    }
}

#[test]
fn biases_are_per_output_channel() {
    let x = Tensor::<f32>::zeros(&[1, 1, 2, 2]);
    let w = Tensor::new(&[1, 2, 1, 1], vec![1.0, 1.0]);
    let b = Tensor::new(&[2], vec![1.0, -2.0]);
    let op = convt(1, 0, 0, true);
    let y = op.cpu(
        &[&x, &w, &b],
        &op.shape(&[&x.shape, &w.shape, &b.shape]).unwrap(),
    );
    assert_eq!(y.data, vec![1.0, 1.0, 1.0, 1.0, -2.0, -2.0, -2.0, -2.0]);
    let w = Tensor::new(&[2, 1, 1, 1], vec![1.0, 1.0]);
    let op = conv(1, 0, true);
    let y = op.cpu(
        &[&x, &w, &b],
        &op.shape(&[&x.shape, &w.shape, &b.shape]).unwrap(),
    );
    assert_eq!(y.data, vec![1.0, 1.0, 1.0, 1.0, -2.0, -2.0, -2.0, -2.0]);
}

/// A grouped conv is one conv per group on its slice of channels, side by side; a depthwise one
/// (groups = channels) filters each channel alone. Checked against slices run as plain convs.
#[test]
fn grouped_conv_is_convs_of_channel_slices() {
    for (c, o, groups) in [(4, 6, 2), (3, 3, 3), (6, 3, 3)] {
        let x = data(&[2, c, 5, 5], 1);
        let w = data(&[o, c / groups, 3, 3], 2);
        let b = data(&[o], 3);
        let op = Conv2d {
            stride: 2,
            pad: 1,
            bias: true,
            groups,
        };
        let ys = op.shape(&[&x.shape, &w.shape, &b.shape]).unwrap();
        let y = op.cpu(&[&x, &w, &b], &ys);
        let (cg, og) = (c / groups, o / groups);
        let plane = 25;
        let out_plane = ys[2] * ys[3];
        for g in 0..groups {
            let slice = |t: &Tensor<f64>, ch: usize, from: usize, per: usize, len: usize| {
                let n = t.shape[0];
                let data = (0..n)
                    .flat_map(|i| {
                        let start = (i * ch + from) * per;
                        t.data[start..start + len * per].to_vec()
                    })
                    .collect();
                Tensor::new(&[n, len, t.shape[2], t.shape[3]], data)
            };
            let xg = slice(&x, c, g * cg, plane, cg);
            let wg = Tensor::new(
                &[og, cg, 3, 3],
                w.data[g * og * cg * 9..(g + 1) * og * cg * 9].to_vec(),
            );
            let bg = Tensor::new(&[og], b.data[g * og..(g + 1) * og].to_vec());
            let plain = conv(2, 1, true);
            let want_shape = plain.shape(&[&xg.shape, &wg.shape, &bg.shape]).unwrap();
            let want = plain.cpu(&[&xg, &wg, &bg], &want_shape);
            assert_eq!(
                slice(&y, o, g * og, out_plane, og).data,
                want.data,
                "groups {groups}"
            );
        }
    }
}

/// The grouped transposed conv is the adjoint of the grouped conv with the same weights.
#[test]
fn grouped_conv_transpose_is_adjoint_of_grouped_conv() {
    for (c, o, groups) in [(4, 6, 2), (3, 3, 3)] {
        let x = data(&[2, c, 7, 7], 1);
        let w = data(&[o, c / groups, 3, 3], 2);
        let fwd = Conv2d {
            stride: 2,
            pad: 1,
            bias: false,
            groups,
        };
        let ys = fwd.shape(&[&x.shape, &w.shape]).unwrap();
        let y = data(&ys, 3);
        let bwd = ConvTranspose2d {
            stride: 2,
            pad: 1,
            out_pad: 0,
            bias: false,
            groups,
        };
        let xs = bwd.shape(&[&ys, &w.shape]).unwrap();
        assert_eq!(xs, x.shape);
        let dot = |a: &Tensor<f64>, b: &Tensor<f64>| {
            a.data.iter().zip(&b.data).map(|(u, v)| u * v).sum::<f64>()
        };
        let lhs = dot(&fwd.cpu(&[&x, &w], &ys), &y);
        let rhs = dot(&x, &bwd.cpu(&[&y, &w], &xs));
        assert_relative_eq!(lhs, rhs, max_relative = 1e-12);
    }
}

#[test]
fn grouped_shapes() {
    let grouped = |groups| Conv2d {
        stride: 1,
        pad: 1,
        bias: false,
        groups,
    };
    assert_eq!(
        grouped(4).shape(&[&[1, 8, 4, 4], &[8, 2, 3, 3]]),
        Ok(vec![1, 8, 4, 4])
    );
    assert_eq!(
        grouped(3)
            .shape(&[&[1, 8, 4, 4], &[6, 2, 3, 3]])
            .unwrap_err(),
        "conv2d: expected input channels (8) and output channels (6) divisible by groups (3)"
    );
    assert_eq!(
        grouped(4).shape(&[&[1, 8, 4, 4], &[8, 4, 3, 3]]).unwrap_err(),
        "conv2d: expected a weight with 2 input channels (the input has 8, in 4 groups), found weight [8, 4, 3, 3]"
    );
    assert_eq!(
        grouped(0)
            .shape(&[&[1, 8, 4, 4], &[8, 4, 3, 3]])
            .unwrap_err(),
        "conv2d: expected a groups >= 1, found 0"
    );
    let t = ConvTranspose2d {
        stride: 2,
        pad: 1,
        out_pad: 1,
        bias: false,
        groups: 2,
    };
    assert_eq!(
        t.shape(&[&[1, 4, 4, 4], &[4, 3, 3, 3]]),
        Ok(vec![1, 6, 8, 8])
    );
    assert_eq!(
        t.shape(&[&[1, 5, 4, 4], &[5, 3, 3, 3]]).unwrap_err(),
        "conv_transpose2d: expected input channels (5) and output channels (6) divisible by groups (2)"
    );
}
