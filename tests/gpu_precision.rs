//! The f16 precision (`compiler::Precision`): the convolution GEMMs that stage their operands in
//! workgroup memory round them to f16 and keep their sums in f32, on cooperative matrices where
//! the device has them; on the device against the CPU reference in f64. Every GEMM kind: conv2d
//! (1x1, 3x3, stride 2, with a fused store), a transposed conv's phases, both weight gradients,
//! and Winograd's batched products.

mod gpu_support;

use compiler::{ConvTiles, Precision, Target};
use gpu_support::{check_within, gpu, random_feeds, G};
use ir::ops::*;
use ir::{Graph, Op};
use std::collections::HashMap;

/// f16 operands are rounded to 11 significant bits (relative error 2^-12 at most each): a sum
/// of K products of order-1 values then errs by about 1e-3 of its terms' scale times sqrt(K)
/// with random signs; 4e-3 of max(1, |cpu|) holds for these sizes with margin. Winograd's
/// transforms make the operands larger than the conv's own (up to 9x for F(4, 3)).
const F16_TOL: f64 = 4e-3;
const F16_WINOGRAD_TOL: f64 = 2e-2;

fn conv(g: &mut G, x: &[usize], out: usize, (k, stride, pad): (usize, usize, usize)) -> usize {
    let xi = g.input("x", x);
    let w = g.param("w", &[out, x[1], k, k]);
    let b = g.param("b", &[out]);
    let op = Op::Conv2d(Conv2d {
        stride,
        pad,
        bias: true,
        groups: 1,
    });
    g.op("y", op, &[xi, w, b])
}

/// One graph of each GEMM kind, and whether it is a Winograd one (`winograd_tile` 4).
fn cases() -> Vec<(G, bool)> {
    let mut out = Vec::new();

    let mut g = G::new("conv3x3_relu");
    let y = conv(&mut g, &[2, 6, 7, 9], 5, (3, 1, 1));
    let r = g.op("r", Op::Unary(Unary::Relu), &[y]);
    g.output(r);
    out.push((g, false));

    let mut g = G::new("conv1x1");
    let y = conv(&mut g, &[1, 70, 6, 5], 67, (1, 1, 0));
    g.output(y);
    out.push((g, false));

    let mut g = G::new("conv3x3_stride2");
    let y = conv(&mut g, &[1, 5, 9, 6], 9, (3, 2, 1));
    g.output(y);
    out.push((g, false));

    let mut g = G::new("conv_transpose_stride2");
    let x = g.input("x", &[1, 6, 5, 4]);
    let w = g.param("w", &[6, 7, 3, 3]);
    let op = Op::ConvTranspose2d(ConvTranspose2d {
        stride: 2,
        pad: 1,
        out_pad: 1,
        bias: false,
        groups: 1,
    });
    let y = g.op("y", op, &[x, w]);
    g.output(y);
    out.push((g, false));

    let (x, k) = ([2, 5, 9, 7], 3);
    let conv_op = Conv2d {
        stride: 1,
        pad: 1,
        bias: false,
        groups: 1,
    };
    let gy_shape = conv_op.shape(&[&x, &[7, x[1], k, k]]).unwrap();
    let mut g = G::new("conv_weight_grad");
    let (xi, gy) = (g.input("x", &x), g.input("gy", &gy_shape));
    let op = Op::Conv2dWeightGrad(Conv2dWeightGrad {
        stride: 1,
        pad: 1,
        kh: k,
        kw: k,
        groups: 1,
    });
    let gw = g.op("gw", op, &[xi, gy]);
    g.output(gw);
    out.push((g, false));

    let mut g = G::new("conv_transpose_weight_grad");
    let (xi, gy) = (g.input("x", &[1, 4, 5, 6]), g.input("gy", &[1, 3, 10, 12]));
    let op = Op::ConvTranspose2dWeightGrad(ConvTranspose2dWeightGrad {
        stride: 2,
        pad: 1,
        kh: 3,
        kw: 3,
        groups: 1,
    });
    let gw = g.op("gw", op, &[xi, gy]);
    g.output(gw);
    out.push((g, false));

    let mut g = G::new("winograd_conv3x3");
    let y = conv(&mut g, &[1, 16, 12, 12], 16, (3, 1, 1));
    g.output(y);
    out.push((g, true));
    out
}

/// Workgroup-memory tiles (what GPUs run): a full block and one with partial tiles here.
fn workgroup_tiles() -> [ConvTiles; 2] {
    let t = |bm, bn, bk, tm, tn| ConvTiles { bm, bn, bk, tm, tn };
    [t(64, 64, 16, 4, 4), t(16, 16, 8, 2, 2)]
}

fn target(precision: Precision, tiles: ConvTiles, coop_matrix: u32, winograd: bool) -> Target {
    {
        let mut t = gpu().limits_target();
        t.precision = precision;
        t.conv_tiles = tiles;
        t.limits.coop_matrix = coop_matrix;
        t.policy.winograd_tile = if winograd { 4 } else { 0 };
        t
    }
}

/// The largest |gpu - cpu| / max(1, |cpu|) of `g`'s first output.
fn worst_error(g: &Graph, feeds: &HashMap<String, ir::Tensor<f32>>, out: &[f32]) -> f64 {
    let f64_feeds = feeds.iter().map(|(k, v)| (k.clone(), v.cast())).collect();
    let cpu = ir::cpu::evaluate::<f64>(g, &f64_feeds).unwrap();
    let want = &cpu[g.outputs[0].1].data;
    (out.iter().zip(want))
        .map(|(&o, &c)| (o as f64 - c).abs() / c.abs().max(1.0))
        .fold(0.0, f64::max)
}

/// The kernels of a plan that are GEMMs (the templates `conv::gemm` fills).
fn gemm_wgsl(plan: &compiler::Plan) -> Vec<&str> {
    let gemms = ["conv2d", "conv_transpose2d", "weight_grad", "winograd_gemm"];
    (plan.kernels.iter())
        .filter(|k| gemms.contains(&k.template.as_str()))
        .map(|k| k.wgsl.as_str())
        .collect()
}

/// With workgroup tiles and no cooperative matrices, f16 stages f16 operands: within f16's
/// tolerance of the CPU, and measurably less exact than the same tiles at f32 (so the f16
/// kernels really ran).
#[test]
fn f16_workgroup_tiles_round_the_operands_and_sum_in_f32() {
    for (i, (g, winograd)) in cases().into_iter().enumerate() {
        let feeds = random_feeds(&g.0, 100 + i as u64);
        let tol = if winograd { F16_WINOGRAD_TOL } else { F16_TOL };
        for tiles in workgroup_tiles() {
            let what = format!("{} {tiles:?}", g.0.name);
            let f32_target = target(Precision::F32, tiles, 0, winograd);
            let (_, exact) = check_within(&g.0, &f32_target, &feeds, 1e-4);
            let f16_target = target(Precision::F16, tiles, 0, winograd);
            let (plan, rounded) = check_within(&g.0, &f16_target, &feeds, tol);
            let gemms = gemm_wgsl(&plan);
            assert!(!gemms.is_empty(), "{what}: no GEMM kernel");
            for wgsl in gemms {
                assert!(wgsl.starts_with("enable f16;"), "{what}:\n{wgsl}");
                assert!(wgsl.contains("alias staged = f16;"), "{what}");
            }
            let e32 = worst_error(&g.0, &feeds, &exact[0].1.data);
            let e16 = worst_error(&g.0, &feeds, &rounded[0].1.data);
            assert!(
                e16 > 4.0 * e32 && e16 > 1e-5,
                "{what}: f16 error {e16:.2e}, f32 {e32:.2e}"
            );
        }
    }
}

/// Direct tiles (CPU adapters) read their operands from the arenas and stay f32 at f16.
#[test]
fn direct_tiles_stay_f32_at_f16() {
    let (g, _) = cases().remove(0);
    let feeds = random_feeds(&g.0, 7);
    let t = target(Precision::F16, ConvTiles::default(), 0, false);
    let (plan, _) = check_within(&g.0, &t, &feeds, 1e-4);
    for wgsl in gemm_wgsl(&plan) {
        assert!(!wgsl.contains("enable f16;"), "{wgsl}");
    }
}

/// At f16, every GEMM runs on cooperative matrices exactly where the device offers them
/// (`Target::coop_matrix`, from the adapter: lavapipe of Mesa 26 has 8x8 ones, Mesa 25 none;
/// NVIDIA 16x16), within f16's tolerance of the CPU either way; f32 never uses them.
#[test]
fn f16_gemms_run_on_cooperative_matrices_where_the_device_has_them() {
    let device = gpu().limits_target();
    let offered = device.coop_matrix() > 0 && device.subgroup_size() > 0;
    eprintln!(
        "cooperative matrices: side {} on {}",
        device.coop_matrix(),
        gpu().describe()
    );
    // `.ci/coop-lavapipe` runs this where they must be offered (lavapipe of Mesa 26).
    if std::env::var("IRDC_EXPECT_COOP_MATRIX").is_ok_and(|v| v == "1") {
        assert!(
            offered,
            "IRDC_EXPECT_COOP_MATRIX=1, but the adapter has none"
        );
    }
    for (i, (g, winograd)) in cases().into_iter().enumerate() {
        let feeds = random_feeds(&g.0, 200 + i as u64);
        let tol = if winograd { F16_WINOGRAD_TOL } else { F16_TOL };
        let [tiles, _] = workgroup_tiles();
        let mut errors = vec![];
        for precision in [Precision::F16, Precision::F32] {
            let t = target(precision, tiles, device.coop_matrix(), winograd);
            let (plan, out) = check_within(&g.0, &t, &feeds, tol);
            let coop = precision == Precision::F16 && offered;
            for wgsl in gemm_wgsl(&plan) {
                assert_eq!(
                    wgsl.contains("coopMultiplyAdd"),
                    coop,
                    "{} at {precision}:\n{wgsl}",
                    g.0.name
                );
            }
            errors.push(worst_error(&g.0, &feeds, &out[0].1.data));
        }
        let [e16, e32] = errors[..] else {
            unreachable!()
        };
        assert!(
            e16 > 4.0 * e32,
            "{}: f16 error {e16:.2e}, f32 {e32:.2e}",
            g.0.name
        );
    }
}
