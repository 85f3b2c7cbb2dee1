//! The convolution GEMM kernels with every tile configuration the autotuner may pick, against the
//! CPU reference in f64: channel counts that are not multiples of any tile (and more than one
//! 64-channel tile), 1x1, 3x3, 4x4 and 7x7 kernels, stride 2, padding, tiny spatial sizes, and
//! values split across arenas (the accessors' piece chains); conv2d, conv_transpose2d and both
//! weight gradients. Tolerance as everywhere: 1e-4 * max(1, |cpu|).

mod gpu_support;

use compiler::{ConvTiles, Target};
use gpu_support::{check_on, gpu, random_feeds, std_dev, G};
use ir::ops::*;
use ir::Op;

/// Every candidate of the autotuner, plus a small one whose tiles are all partial here.
fn tiles() -> Vec<ConvTiles> {
    let mut t = runtime::autotune::candidates();
    t.push(ConvTiles {
        bm: 16,
        bn: 16,
        bk: 8,
        tm: 2,
        tn: 2,
    });
    t
}

fn target(tiles: ConvTiles) -> Target {
    Target {
        conv_tiles: tiles,
        ..gpu().limits_target()
    }
}

/// Run `g` with every tile configuration; the outputs must match the CPU and not be constant.
fn check_all_tiles(g: &G, seed: u64) {
    let feeds = random_feeds(&g.0, seed);
    for t in tiles() {
        t.check().unwrap();
        let (_, out) = check_on(&g.0, &target(t), &feeds);
        assert!(
            std_dev(&out[0].1) > 1e-3,
            "{} {t:?}: near constant",
            g.0.name
        );
    }
}

#[test]
fn conv2d_every_tile() {
    // (input, out channels, kernel, stride, pad, bias)
    let cases = [
        ([2, 5, 9, 7], 7, 1, 1, 0, true),
        ([1, 70, 6, 5], 67, 1, 1, 0, false),
        ([2, 6, 7, 9], 5, 3, 1, 1, true),
        ([1, 5, 9, 6], 9, 3, 2, 1, true),
        ([1, 3, 13, 12], 4, 7, 1, 3, true),
        ([1, 2, 9, 9], 3, 7, 2, 3, false),
        ([1, 3, 2, 3], 2, 3, 1, 1, true),
        ([1, 4, 1, 1], 65, 1, 1, 0, true),
        // Many rows, 16 columns: the default tiles fit it as 8 invocations of 2 columns.
        ([1, 16, 4, 4], 130, 3, 1, 1, true),
    ];
    for (i, &(x, out, k, stride, pad, bias)) in cases.iter().enumerate() {
        let mut g = G::new(&format!("conv{i}_k{k}s{stride}p{pad}"));
        let xi = g.input("x", &x);
        let w = g.param("w", &[out, x[1], k, k]);
        let mut ins = vec![xi, w];
        if bias {
            ins.push(g.param("b", &[out]));
        }
        let y = g.op(
            "y",
            Op::Conv2d(Conv2d {
                stride,
                pad,
                bias,
                groups: 1,
            }),
            &ins,
        );
        g.output(y);
        check_all_tiles(&g, i as u64);
    }
}

#[test]
fn conv_transpose2d_every_tile() {
    // (input, out channels, kernel, stride, pad, out_pad, bias)
    let cases = [
        ([1, 5, 5, 6], 3, 3, 2, 1, 1, true),
        ([2, 3, 4, 5], 7, 4, 2, 1, 0, true),
        ([1, 66, 3, 3], 5, 3, 1, 1, 0, false),
        ([1, 2, 3, 4], 3, 1, 2, 0, 1, true),
        ([1, 3, 2, 2], 70, 7, 1, 3, 0, true),
        // Stride 3 with a pad above it: phases start at different rows, some taps are empty.
        ([1, 3, 4, 5], 2, 5, 3, 4, 2, true),
    ];
    for (i, &(x, out, k, stride, pad, out_pad, bias)) in cases.iter().enumerate() {
        let mut g = G::new(&format!("convT{i}_k{k}s{stride}p{pad}o{out_pad}"));
        let xi = g.input("x", &x);
        let w = g.param("w", &[x[1], out, k, k]);
        let mut ins = vec![xi, w];
        if bias {
            ins.push(g.param("b", &[out]));
        }
        let op = ConvTranspose2d {
            stride,
            pad,
            out_pad,
            bias,
            groups: 1,
        };
        let y = g.op("y", Op::ConvTranspose2d(op), &ins);
        g.output(y);
        check_all_tiles(&g, 20 + i as u64);
    }
}

#[test]
fn weight_grads_every_tile() {
    // (x, out channels, kernel, stride, pad); the long sum of the first is 2 x 9 x 7 pixels.
    let cases = [
        ([2, 5, 9, 7], 7, 3, 1, 1),
        ([1, 67, 4, 3], 3, 1, 1, 0),
        ([1, 3, 11, 10], 4, 7, 2, 3),
        ([1, 4, 9, 8], 66, 3, 2, 1),
    ];
    for (i, &(x, out, k, stride, pad)) in cases.iter().enumerate() {
        let conv = Conv2d {
            stride,
            pad,
            bias: false,
            groups: 1,
        };
        let mut g = G::new(&format!("conv_wg{i}_k{k}s{stride}p{pad}"));
        let gy_shape = conv.shape(&[&x, &[out, x[1], k, k]]).unwrap();
        let (xi, gy) = (g.input("x", &x), g.input("gy", &gy_shape));
        let op = Conv2dWeightGrad {
            stride,
            pad,
            kh: k,
            kw: k,
            groups: 1,
        };
        let gw = g.op("gw", Op::Conv2dWeightGrad(op), &[xi, gy]);
        g.output(gw);
        check_all_tiles(&g, 40 + i as u64);

        // The transposed conv whose input is `gy`-shaped and output `x`-shaped.
        let mut g = G::new(&format!("convT_wg{i}_k{k}s{stride}p{pad}"));
        let convt = ConvTranspose2d {
            stride,
            pad,
            out_pad: 0,
            bias: false,
            groups: 1,
        };
        let t_in = [gy_shape[0], gy_shape[1], gy_shape[2], gy_shape[3]];
        let t_out = convt.shape(&[&t_in, &[out, 5, k, k]]).unwrap();
        let (xi, gy) = (g.input("x", &t_in), g.input("gy", &t_out));
        let op = ConvTranspose2dWeightGrad {
            stride,
            pad,
            kh: k,
            kw: k,
            groups: 1,
        };
        let gw = g.op("gw", Op::ConvTranspose2dWeightGrad(op), &[xi, gy]);
        g.output(gw);
        check_all_tiles(&g, 60 + i as u64);
    }
}

/// Direct GEMMs (a weight gradient, and a conv2d) load A one row per subgroup lane and broadcast it, where the adapter has
/// fixed-size subgroups (lavapipe: 8 lanes); with the broadcast off as the control. 21 rows: a
/// full block of 16 and a partial one, whose lanes past the last row load it again.
#[test]
fn direct_gemms_broadcast_a_across_subgroup_lanes() {
    let conv = Conv2d {
        stride: 1,
        pad: 1,
        bias: false,
        groups: 1,
    };
    let x = [2, 6, 7, 5];
    let gy_shape = conv.shape(&[&x, &[21, 6, 3, 3]]).unwrap();
    let mut wg = G::new("wg_broadcast");
    let (xi, gy) = (wg.input("x", &x), wg.input("gy", &gy_shape));
    let op = Conv2dWeightGrad {
        stride: 1,
        pad: 1,
        kh: 3,
        kw: 3,
        groups: 1,
    };
    let gw = wg.op("gw", Op::Conv2dWeightGrad(op), &[xi, gy]);
    wg.output(gw);
    let mut fwd = G::new("conv_broadcast");
    let (xi, w) = (fwd.input("x", &x), fwd.param("w", &[21, 6, 3, 3]));
    let y = fwd.op("y", Op::Conv2d(conv), &[xi, w]);
    fwd.output(y);
    let lanes = gpu().limits_target().subgroup_size();
    for (i, (g, template)) in [(&wg, "weight_grad"), (&fwd, "conv2d")].iter().enumerate() {
        let feeds = random_feeds(&g.0, 80 + i as u64);
        for subgroup_size in [lanes, 0] {
            let t = {
                let mut t = target(ConvTiles::default());
                t.limits.subgroup_size = subgroup_size;
                t
            };
            let (plan, out) = check_on(&g.0, &t, &feeds);
            let k = (plan.kernels.iter())
                .find(|k| k.template == *template)
                .expect("a GEMM kernel");
            assert_eq!(
                k.wgsl
                    .contains("let a_0 = subgroupBroadcast(a_lane_0, 0u);"),
                subgroup_size > 0,
                "{template}, subgroups of {subgroup_size}"
            );
            assert!(std_dev(&out[0].1) > 1e-3, "{template}: near constant");
        }
    }
}

/// A conv whose input and output are split across arenas by channels (a small binding limit):
/// the accessors pick the piece per channel, inside the GEMM's tile loads and stores.
#[test]
fn split_values_every_tile() {
    let mut g = G::new("split_conv");
    let x = g.input("x", &[1, 24, 32, 32]);
    let w = g.param("w", &[24, 24, 3, 3]);
    let b = g.param("b", &[24]);
    let conv = Conv2d {
        stride: 1,
        pad: 1,
        bias: true,
        groups: 1,
    };
    let y = g.op("y", Op::Conv2d(conv), &[x, w, b]);
    g.output(y);
    let feeds = random_feeds(&g.0, 80);
    for t in tiles() {
        let small = {
            let mut t = target(t);
            t.limits.max_binding_bytes = 64 * 1024;
            t
        };
        let (plan, _) = check_on(&g.0, &small, &feeds);
        assert!(
            plan.memory.arenas.len() > 2,
            "{:?}",
            plan.memory.arenas.len()
        );
    }
}

#[test]
fn tiles_the_template_cannot_use_are_an_error() {
    let bad = ConvTiles {
        bm: 64,
        bn: 64,
        bk: 16,
        tm: 3,
        tn: 4,
    };
    assert_eq!(
        bad.check().unwrap_err(),
        "conv tiles ConvTiles { bm: 64, bn: 64, bk: 16, tm: 3, tn: 4 } do not fit the GEMM template"
    );
    let mut g = G::new("bad_tiles");
    let x = g.input("x", &[1, 3, 4, 4]);
    let w = g.param("w", &[3, 3, 1, 1]);
    let conv = Conv2d {
        stride: 1,
        pad: 0,
        bias: false,
        groups: 1,
    };
    let y = g.op("y", Op::Conv2d(conv), &[x, w]);
    g.output(y);
    let err = compiler::compile(&g.0, &target(bad))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "code generation for `y`: conv tiles ConvTiles { bm: 64, bn: 64, bk: 16, tm: 3, tn: 4 } do not fit the GEMM template"
    );
}

/// Stride-1 convs with few output channels walk each kernel row as a window of adjacent pixels
/// (codegen's `RowTaps`): 1 to 8 channels, 3x3 to 7x7, padding at every edge, a batch of two,
/// the input's instance norm and ReLU fused into the window's loads and tanh plus a residual
/// add into the store. A width that does not split into whole runs of pixels, and 9 channels
/// (a 16-row tile), take the plain loop, the control.
#[test]
fn few_channel_convs_walk_a_window_of_each_row() {
    // (input, out channels, kernel, pad, window)
    let cases = [
        ([2, 5, 12, 16], 3, 7, 3, true),
        ([1, 6, 9, 8], 1, 3, 1, true),
        ([2, 4, 7, 24], 8, 5, 0, true),
        ([1, 3, 8, 14], 4, 3, 2, true),
        ([1, 5, 9, 9], 3, 3, 1, false),
        ([1, 4, 8, 16], 9, 3, 1, false),
    ];
    for (i, (x, co, k, pad, window)) in cases.into_iter().enumerate() {
        let conv = Conv2d {
            stride: 1,
            pad,
            bias: true,
            groups: 1,
        };
        let wshape = [co, x[1], k, k];
        let y_shape = conv.shape(&[&x, &wshape, &[co]]).unwrap();
        let mut g = G::new(&format!("window_{i}"));
        let xi = g.input("x", &x);
        let skip = g.input("skip", &y_shape);
        let (w, b) = (g.param("w", &wshape), g.param("b", &[co]));
        let norm = Op::InstanceNorm(InstanceNorm { eps: 1e-5 });
        let n = g.op("norm", norm, &[xi]);
        let r = g.op("relu", Op::Unary(Unary::Relu), &[n]);
        let y = g.op("conv", Op::Conv2d(conv), &[r, w, b]);
        let t = g.op("tanh", Op::Unary(Unary::Tanh), &[y]);
        let out = g.op("out", Op::Binary(Binary::Add), &[t, skip]);
        g.output(out);
        let feeds = random_feeds(&g.0, 90 + i as u64);
        let (plan, out) = check_on(&g.0, &target(ConvTiles::default()), &feeds);
        let k = (plan.kernels.iter())
            .find(|k| k.template == "conv2d")
            .expect("a conv kernel");
        assert_eq!(k.wgsl.contains("b_window(col0"), window, "case {i}");
        assert!(k.nodes.len() > 1, "case {i}: the store is fused");
        assert!(std_dev(&out[0].1) > 1e-3, "case {i}: near constant");
    }
}
