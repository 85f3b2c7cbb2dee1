//! The ops that backward passes add, compiled and run on the device (lavapipe without a GPU),
//! against the CPU reference in f64 on random inputs: odd sizes, strides 1 and 2, paddings,
//! kernel sizes 1/3/4, ties in max pooling, and a small binding limit that splits values across
//! arenas. Tolerance: |gpu - cpu| <= 1e-4 * max(1, |cpu|) everywhere, weight gradients included
//! (their sums of up to ~1000 terms stay well within it in f32).

mod gpu_support;

use gpu_support::{check, check_on, gpu, random_feeds, G};
use ir::ops::*;
use ir::{NodeId, Op, Tensor};
use std::collections::HashMap;

/// x and gy of a conv2d with `out` channels, and the weight gradient.
fn conv_wg(g: &mut G, x: [usize; 4], out: usize, k: usize, stride: usize, pad: usize) -> NodeId {
    let conv = Conv2d {
        stride,
        pad,
        bias: false,
        groups: 1,
    };
    let gy_shape = conv.shape(&[&x, &[out, x[1], k, k]]).unwrap();
    let xi = g.input("x", &x);
    let gy = g.input("gy", &gy_shape);
    let op = Conv2dWeightGrad {
        stride,
        pad,
        kh: k,
        kw: k,
        groups: 1,
    };
    g.op("gw", Op::Conv2dWeightGrad(op), &[xi, gy])
}

/// x and gy of a conv_transpose2d with `out` channels, and the weight gradient.
fn conv_transpose_wg(
    g: &mut G,
    x: [usize; 4],
    out: usize,
    k: usize,
    (stride, pad, out_pad): (usize, usize, usize),
) -> NodeId {
    let convt = ConvTranspose2d {
        stride,
        pad,
        out_pad,
        bias: false,
        groups: 1,
    };
    let gy_shape = convt.shape(&[&x, &[x[1], out, k, k]]).unwrap();
    let xi = g.input("x", &x);
    let gy = g.input("gy", &gy_shape);
    let op = ConvTranspose2dWeightGrad {
        stride,
        pad,
        kh: k,
        kw: k,
        groups: 1,
    };
    g.op("gw", Op::ConvTranspose2dWeightGrad(op), &[xi, gy])
}

#[test]
fn conv2d_weight_grad() {
    // (x, out channels, kernel, stride, pad); 17 and 9 channels leave partial 4x4 tiles.
    let cases = [
        ([2, 3, 7, 9], 5, 1, 1, 0),
        ([1, 4, 8, 8], 6, 1, 2, 0),
        ([2, 3, 7, 9], 5, 3, 1, 1),
        ([1, 5, 9, 6], 7, 3, 2, 1),
        ([1, 3, 11, 10], 4, 4, 2, 2),
        ([1, 4, 10, 9], 3, 4, 1, 2),
        ([2, 17, 6, 5], 9, 3, 1, 0),
    ];
    for (i, &(x, out, k, s, p)) in cases.iter().enumerate() {
        let mut g = G::new(&format!("conv_wg{i}_k{k}s{s}p{p}"));
        let gw = conv_wg(&mut g, x, out, k, s, p);
        g.output(gw);
        check(&g.0, &random_feeds(&g.0, 1000 + i as u64));
    }
}

#[test]
fn conv_transpose2d_weight_grad() {
    // (x, out channels, kernel, (stride, pad, out_pad))
    let cases = [
        ([1, 4, 5, 6], 3, 3, (2, 1, 1)),
        ([2, 3, 4, 5], 2, 4, (2, 1, 0)),
        ([1, 3, 5, 5], 4, 3, (1, 1, 0)),
        ([1, 2, 3, 4], 3, 1, (2, 0, 1)),
        ([1, 5, 4, 3], 6, 3, (2, 0, 0)),
    ];
    for (i, &(x, out, k, spo)) in cases.iter().enumerate() {
        let mut g = G::new(&format!("convt_wg{i}_k{k}"));
        let gw = conv_transpose_wg(&mut g, x, out, k, spo);
        g.output(gw);
        check(&g.0, &random_feeds(&g.0, 1100 + i as u64));
    }
}

#[test]
fn reflect_pad_grad() {
    // (unpadded x, pads top, bottom, left, right); [1, 1, 3, 3] padded by 2 makes the middle
    // pixel gather from both mirrors and itself.
    let cases = [
        ([1, 2, 7, 9], [3, 3, 3, 3]),
        ([2, 3, 5, 4], [1, 2, 0, 3]),
        ([1, 1, 3, 3], [2, 2, 2, 2]),
        ([1, 2, 6, 5], [0, 4, 1, 0]),
    ];
    for (i, (x, pads)) in cases.into_iter().enumerate() {
        let mut g = G::new(&format!("pad_grad{i}"));
        let gy_shape = ReflectPad { pads }.shape(&[&x]).unwrap();
        let gy = g.input("gy", &gy_shape);
        let gx = g.op("gx", Op::ReflectPadGrad(ReflectPadGrad { pads }), &[gy]);
        g.output(gx);
        check(&g.0, &random_feeds(&g.0, 1200 + i as u64));
    }
}

/// x and gy of a max pool, and the input gradient.
fn pool_grad(g: &mut G, x: [usize; 4], kernel: usize, stride: usize, pad: usize) -> NodeId {
    let pool = MaxPool2d {
        kernel,
        stride,
        pad,
    };
    let gy_shape = pool.shape(&[&x]).unwrap();
    let xi = g.input("x", &x);
    let gy = g.input("gy", &gy_shape);
    let op = MaxPool2dGrad {
        kernel,
        stride,
        pad,
    };
    g.op("gx", Op::MaxPool2dGrad(op), &[xi, gy])
}

#[test]
fn max_pool2d_grad_with_ties() {
    // (x, kernel, stride, pad)
    let cases = [
        ([2, 3, 8, 9], 2, 2, 0),
        ([1, 3, 7, 9], 3, 2, 1),
        ([1, 2, 5, 6], 3, 1, 1),
        ([1, 2, 9, 7], 4, 2, 2),
        ([1, 2, 6, 6], 1, 1, 0),
        // Too large a window for the unrolled gather (codegen/window.rs): the loop.
        ([1, 2, 8, 7], 5, 1, 2),
        // Windows that do not overlap write their cells (the first case and the 1x1 one too):
        // a stride past the window leaves rows and columns no window holds, and so does a
        // size the stride does not divide.
        ([1, 2, 8, 11], 2, 3, 0),
        ([2, 1, 10, 9], 3, 3, 0),
    ];
    for (i, &(x, k, s, p)) in cases.iter().enumerate() {
        let mut g = G::new(&format!("pool_grad{i}_k{k}s{s}p{p}"));
        let gx = pool_grad(&mut g, x, k, s, p);
        g.output(gx);
        let mut feeds = random_feeds(&g.0, 1300 + i as u64);
        check(&g.0, &feeds);
        // x on a grid of 5 values: many windows hold equal maxima, and only the first may win.
        let xs = feeds.get_mut("x").unwrap();
        xs.data
            .iter_mut()
            .for_each(|v| *v = (*v * 2.0).round() / 2.0);
        assert!(
            k == 1 || tied_windows(xs, k, s, p) > 0,
            "case {i} has no ties"
        );
        check(&g.0, &feeds);
    }
}

/// How many pooling windows hold their maximum more than once.
fn tied_windows(x: &Tensor<f32>, k: usize, s: usize, p: usize) -> usize {
    let [n, c, h, w] = ir::shape4(&x.shape);
    let out = |size: usize| (size + 2 * p - k) / s + 1;
    let mut tied = 0;
    for (b, ch, i, j) in grid4(n, c, out(h), out(w)) {
        let mut vals = Vec::new();
        for (ki, kj) in (0..k).flat_map(|a| (0..k).map(move |b| (a, b))) {
            let (hi, wj) = ((i * s + ki).checked_sub(p), (j * s + kj).checked_sub(p));
            if let (Some(hi), Some(wj)) = (hi, wj) {
                if hi < h && wj < w {
                    vals.push(x.at4(b, ch, hi, wj));
                }
            }
        }
        let m = vals.iter().cloned().fold(f32::MIN, f32::max);
        tied += usize::from(vals.iter().filter(|&&v| v == m).count() > 1);
    }
    tied
}

/// Every (a, b, c, d) below the given bounds, in row-major order.
fn grid4(
    a: usize,
    b: usize,
    c: usize,
    d: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    (0..a).flat_map(move |i| {
        (0..b).flat_map(move |j| (0..c).flat_map(move |k| (0..d).map(move |l| (i, j, k, l))))
    })
}

#[test]
fn expand_channel_slice_reshape() {
    let mut cases: Vec<(&str, Vec<usize>, Op)> = vec![
        (
            "expand_c",
            vec![6, 1, 1],
            Op::Expand(Expand {
                shape: vec![2, 6, 9, 11],
            }),
        ),
        (
            "expand_row",
            vec![11],
            Op::Expand(Expand { shape: vec![3, 11] }),
        ),
        (
            "expand_col",
            vec![2, 1],
            Op::Expand(Expand { shape: vec![2, 3] }),
        ),
        (
            "expand_nhw",
            vec![1, 3, 1, 1],
            Op::Expand(Expand {
                shape: vec![2, 3, 4, 5],
            }),
        ),
    ];
    for (name, c0, c1) in [
        ("slice_mid", 1, 4),
        ("slice_all", 0, 6),
        ("slice_last", 5, 6),
    ] {
        let op = Op::ChannelSlice(ChannelSlice { c0, c1 });
        cases.push((name, vec![2, 6, 5, 7], op));
    }
    for (name, from, to) in [
        ("reshape_2d", vec![2, 6, 5, 7], vec![12, 35]),
        ("reshape_flat", vec![3, 4], vec![12]),
        ("reshape_up", vec![12], vec![2, 2, 3]),
        ("reshape_4d", vec![2, 6, 5, 7], vec![3, 5, 4, 7]),
    ] {
        cases.push((name, from, Op::Reshape(Reshape { shape: to })));
    }
    for (i, (name, shape, op)) in cases.into_iter().enumerate() {
        let mut g = G::new(name);
        let x = g.input("x", &shape);
        let y = g.op("y", op, &[x]);
        g.output(y);
        check(&g.0, &random_feeds(&g.0, 1400 + i as u64));
    }
}

#[test]
fn derivative_unaries() {
    let ops = [
        Unary::Step,
        Unary::LeakyStep { slope: 0.2 },
        Unary::Sign,
        Unary::InRange {
            min: -0.5,
            max: 0.25,
        },
        Unary::Recip,
    ];
    for (i, u) in ops.into_iter().enumerate() {
        let recip = u == Unary::Recip;
        let mut g = G::new(u.name());
        let x = g.input("x", &[2, 3, 5, 7]);
        let y = g.op("y", Op::Unary(u), &[x]);
        g.output(y);
        let mut feeds = random_feeds(&g.0, 1500 + i as u64);
        let x = feeds.get_mut("x").unwrap();
        if recip {
            // Keep away from zero.
            x.data
                .iter_mut()
                .for_each(|v| *v = v.signum() * (v.abs() + 0.5));
        } else {
            // Hit the boundaries exactly: 0 for the steps and sign, min and max for in_range.
            x.data[..4].copy_from_slice(&[0.0, -0.5, 0.25, -0.0]);
        }
        check(&g.0, &feeds);
    }
}

/// D = concat(a, y), C = concat(D, a): a sits in place in D (so at channel 0 of the region C),
/// and C's second copy of a must be copied, not rejected.
#[test]
fn nested_concat_reusing_an_input() {
    let mut g = G::new("nested_concat");
    let x = g.input("x", &[2, 3, 4, 5]);
    let a = g.op("a", Op::Unary(Unary::Relu), &[x]);
    let y = g.op("y", Op::Unary(Unary::Neg), &[x]);
    let d = g.op("d", Op::Concat(Concat {}), &[a, y]);
    let c = g.op("c", Op::Concat(Concat {}), &[d, a]);
    g.output(c);
    let (plan, _) = check(&g.0, &random_feeds(&g.0, 1600));
    assert!(!plan.memory.regions.is_empty());
}

/// With a 64 KiB binding limit, the 96 KiB values are split across arenas by channels, and every
/// op reads and writes them through pieces.
#[test]
fn values_split_across_arenas() {
    let small = {
        let mut t = gpu().target();
        t.limits.max_binding_bytes = 64 * 1024;
        t
    };
    let x = [1, 24, 32, 32];
    let mut graphs = Vec::new();
    let mut g = G::new("split_conv_wg");
    let gw = conv_wg(&mut g, x, 20, 3, 1, 1);
    g.output(gw);
    graphs.push(g);
    let mut g = G::new("split_convt_wg");
    let gw = conv_transpose_wg(&mut g, [1, 20, 16, 16], 24, 4, (2, 1, 0));
    g.output(gw);
    graphs.push(g);
    let mut g = G::new("split_pool_grad");
    let gx = pool_grad(&mut g, x, 3, 2, 1);
    g.output(gx);
    graphs.push(g);
    let mut g = G::new("split_layout");
    let xi = g.input("x", &x);
    let gy = g.input("gy", &[1, 24, 34, 34]);
    let pads = [1, 1, 1, 1];
    let pg = g.op(
        "pad_grad",
        Op::ReflectPadGrad(ReflectPadGrad { pads }),
        &[gy],
    );
    let pc = g.input("pc", &[24, 1, 1]);
    let e = g.op("expand", Op::Expand(Expand { shape: x.to_vec() }), &[pc]);
    let s = g.op(
        "slice",
        Op::ChannelSlice(ChannelSlice { c0: 5, c1: 21 }),
        &[xi],
    );
    let r1 = g.op(
        "r1",
        Op::Reshape(Reshape {
            shape: vec![4, 6, 32, 32],
        }),
        &[xi],
    );
    let r2 = g.op(
        "r2",
        Op::Reshape(Reshape {
            shape: vec![8, 3, 1024],
        }),
        &[pg],
    );
    for v in [pg, e, s, r1, r2] {
        g.output(v);
    }
    graphs.push(g);
    for (i, g) in graphs.iter().enumerate() {
        let feeds: HashMap<String, Tensor<f32>> = random_feeds(&g.0, 1700 + i as u64);
        let (plan, _) = check_on(&g.0, &small, &feeds);
        let split = (plan.values.iter())
            .filter(|v| v.pieces.iter().any(|p| p.arena != v.pieces[0].arena))
            .count();
        assert!(split > 0, "{}: no value split across arenas", g.0.name);
    }
}
