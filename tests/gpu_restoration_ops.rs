//! The ops of modern restoration networks (NAFNet's) on the device against the CPU reference:
//! grouped and depthwise convolutions (forward, transposed, both weight gradients), layer
//! normalisation over channels, and a depthwise conv feeding a gate.

mod gpu_support;

use gpu_support::{check, random_feeds, G};
use ir::ops::*;
use ir::Op;

#[test]
fn grouped_and_depthwise_conv2d() {
    // (input, out channels, groups, kernel, stride, pad, bias)
    let cases = [
        ([2, 4, 7, 9], 6, 2, 3, 1, 1, true),
        ([1, 6, 8, 8], 6, 6, 3, 1, 1, true),
        ([1, 6, 9, 7], 6, 6, 3, 2, 1, false),
        ([1, 8, 6, 6], 4, 4, 1, 1, 0, true),
        ([1, 3, 7, 7], 6, 3, 5, 1, 2, true),
    ];
    for (i, &(x, out, groups, k, stride, pad, bias)) in cases.iter().enumerate() {
        let mut g = G::new(&format!("gconv{k}g{groups}s{stride}"));
        let xi = g.input("x", &x);
        let w = g.param("w", &[out, x[1] / groups, k, k]);
        let mut ins = vec![xi, w];
        if bias {
            ins.push(g.param("b", &[out]));
        }
        let op = Conv2d {
            stride,
            pad,
            bias,
            groups,
        };
        let y = g.op("y", Op::Conv2d(op), &ins);
        g.output(y);
        check(&g.0, &random_feeds(&g.0, 300 + i as u64));
    }
}

#[test]
fn grouped_conv_transpose2d() {
    // (input, out channels, groups, kernel, stride, pad, out_pad, bias)
    let cases = [
        ([1, 4, 5, 6], 6, 2, 3, 2, 1, 1, true),
        ([2, 3, 4, 4], 3, 3, 4, 2, 1, 0, false),
        ([1, 4, 5, 5], 4, 4, 3, 1, 1, 0, true),
    ];
    for (i, &(x, out, groups, k, stride, pad, out_pad, bias)) in cases.iter().enumerate() {
        let mut g = G::new(&format!("gconvT{k}g{groups}s{stride}"));
        let xi = g.input("x", &x);
        let w = g.param("w", &[x[1], out / groups, k, k]);
        let mut ins = vec![xi, w];
        if bias {
            ins.push(g.param("b", &[out]));
        }
        let op = ConvTranspose2d {
            stride,
            pad,
            out_pad,
            bias,
            groups,
        };
        let y = g.op("y", Op::ConvTranspose2d(op), &ins);
        g.output(y);
        check(&g.0, &random_feeds(&g.0, 320 + i as u64));
    }
}

#[test]
fn grouped_weight_grads() {
    // conv2d's: x [2, 4, 7, 7], gy [2, 6, 4, 4] (stride 2) in 2 groups -> [6, 2, 3, 3].
    let mut g = G::new("gconv_wgrad");
    let x = g.input("x", &[2, 4, 7, 7]);
    let gy = g.input("gy", &[2, 6, 4, 4]);
    let op = Conv2dWeightGrad {
        stride: 2,
        pad: 1,
        kh: 3,
        kw: 3,
        groups: 2,
    };
    let y = g.op("gw", Op::Conv2dWeightGrad(op), &[x, gy]);
    g.output(y);
    check(&g.0, &random_feeds(&g.0, 340));
    // conv_transpose2d's, depthwise: x [1, 4, 4, 4], gy [1, 4, 8, 8] -> [4, 1, 3, 3].
    let mut g = G::new("gconvT_wgrad");
    let x = g.input("x", &[1, 4, 4, 4]);
    let gy = g.input("gy", &[1, 4, 8, 8]);
    let op = ConvTranspose2dWeightGrad {
        stride: 2,
        pad: 1,
        kh: 3,
        kw: 3,
        groups: 4,
    };
    let y = g.op("gw", Op::ConvTranspose2dWeightGrad(op), &[x, gy]);
    g.output(y);
    check(&g.0, &random_feeds(&g.0, 341));
}

/// NAFNet's middle: a 1x1 conv, a depthwise 3x3, and a gate (two halves multiplied), planned
/// with fusion (the gate's slices and product read through the depthwise conv's output) and
/// checked against the CPU like every plan.
#[test]
fn depthwise_conv_with_gate() {
    let mut g = G::new("dw_gate");
    let x = g.input("x", &[1, 4, 6, 6]);
    let w1 = g.param("w1", &[8, 4, 1, 1]);
    let pw = Conv2d {
        stride: 1,
        pad: 0,
        bias: false,
        groups: 1,
    };
    let y1 = g.op("pw", Op::Conv2d(pw), &[x, w1]);
    let w2 = g.param("w2", &[8, 1, 3, 3]);
    let b2 = g.param("b2", &[8]);
    let dw = Conv2d {
        stride: 1,
        pad: 1,
        bias: true,
        groups: 8,
    };
    let y2 = g.op("dw", Op::Conv2d(dw), &[y1, w2, b2]);
    let a = g.op("a", Op::ChannelSlice(ChannelSlice { c0: 0, c1: 4 }), &[y2]);
    let b = g.op("b", Op::ChannelSlice(ChannelSlice { c0: 4, c1: 8 }), &[y2]);
    let gate = g.op("gate", Op::Binary(Binary::Mul), &[a, b]);
    g.output(gate);
    check(&g.0, &random_feeds(&g.0, 350));
}

#[test]
fn layer_norm_over_channels() {
    // (input, eps, affine): odd channel counts, a single channel (normalises to 0), no affine.
    let cases = [
        ([2, 5, 3, 7], 1e-6, true),
        ([1, 1, 4, 4], 1e-5, true),
        ([1, 16, 5, 3], 1e-5, false),
    ];
    for (i, &(x, eps, affine)) in cases.iter().enumerate() {
        let mut g = G::new(&format!("layer_norm{i}"));
        let xi = g.input("x", &x);
        let mut ins = vec![xi];
        if affine {
            ins.push(g.param("w", &[x[1]]));
            ins.push(g.param("b", &[x[1]]));
        }
        let y = g.op("y", Op::LayerNorm(LayerNorm { eps, affine }), &ins);
        // Its input through an elementwise op (computed in its loads) and its output into one.
        g.output(y);
        check(&g.0, &random_feeds(&g.0, 360 + i as u64));
    }
    let mut g = G::new("layer_norm_fused");
    let x = g.input("x", &[1, 6, 4, 4]);
    let r = g.input("r", &[1, 6, 4, 4]);
    let s = g.op("s", Op::Binary(Binary::Add), &[x, r]);
    let w = g.param("w", &[6]);
    let b = g.param("b", &[6]);
    let ln = LayerNorm {
        eps: 1e-6,
        affine: true,
    };
    let y = g.op("y", Op::LayerNorm(ln), &[s, w, b]);
    let t = g.op("t", Op::Unary(Unary::Tanh), &[y]);
    g.output(t);
    check(&g.0, &random_feeds(&g.0, 370));
}

/// `file`'s generator with `set`, on the device against the CPU with random parameters.
fn model_generator(file: &str, set: &[(&str, &str)], seed: u64) {
    let set: Vec<(String, String)> = set
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let model = ir::front::load(std::path::Path::new(file), &set).unwrap_or_else(|e| panic!("{e}"));
    let g = model.build("generator", &[]).unwrap();
    check(&g, &random_feeds(&g, seed));
}

/// models/nafnet.ron's generator at a small width, every level and the PixelShuffle ups, with
/// random betas and gammas (NAFNet starts them at 0, which would hide the branches).
#[test]
fn nafnet_generator() {
    let set = [("width", "4"), ("enc4", "2"), ("H", "32"), ("W", "32")];
    model_generator("models/nafnet.ron", &set, 380);
}

/// models/unet.ron's generator at a small width: bilinear ups, skip concatenations.
#[test]
fn unet_generator() {
    let set = [("width", "4"), ("H", "24"), ("W", "40")];
    model_generator("models/unet.ron", &set, 390);
}
