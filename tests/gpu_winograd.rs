//! 3x3 convs planned as Winograd products (`compiler/src/winograd.rs`): stride-1 ones as
//! F(m x m, 3 x 3), stride-2 convs and stride-2 transposed convs in their polyphase forms, on
//! the device against the CPU reference of the direct conv (f64), with what fuses into their
//! transforms: an input's norm and activation in the input transform's loads, an activation
//! and a residual add in the output transform's stores.

mod gpu_support;

use compiler::Target;
use gpu_support::{check_on, gpu, random_feeds, G};
use ir::ops::*;
use ir::Op;

/// The device's target with Winograd tile `tile`, each kernel dispatched alone (these tests
/// name the kernels a conv becomes; merged, independent ones would share a dispatch).
fn winograd_target(tile: usize) -> Target {
    let mut t = gpu().target();
    t.policy.winograd_tile = tile;
    t.policy.merge_kernels = false;
    t
}

fn conv(g: &mut G, name: &str, x: usize, shape: [usize; 2], pad: usize, bias: bool) -> usize {
    strided_conv(g, name, x, shape, (1, pad), bias)
}

fn strided_conv(
    g: &mut G,
    name: &str,
    x: usize,
    [out, cin]: [usize; 2],
    (stride, pad): (usize, usize),
    bias: bool,
) -> usize {
    let w = g.param(&format!("{name}.w"), &[out, cin, 3, 3]);
    let mut ins = vec![x, w];
    if bias {
        ins.push(g.param(&format!("{name}.b"), &[out]));
    }
    let op = Op::Conv2d(Conv2d {
        stride,
        pad,
        bias,
        groups: 1,
    });
    g.op(name, op, &ins)
}

/// A transposed conv `name` of x into `out` channels, (stride, pad, out_pad).
fn transposed_conv(
    g: &mut G,
    name: &str,
    x: usize,
    out: usize,
    (stride, pad, out_pad): (usize, usize, usize),
    bias: bool,
) -> usize {
    let cin = g.0.nodes[x].shape[1];
    let w = g.param(&format!("{name}.w"), &[cin, out, 3, 3]);
    let mut ins = vec![x, w];
    if bias {
        ins.push(g.param(&format!("{name}.b"), &[out]));
    }
    let op = Op::ConvTranspose2d(ConvTranspose2d {
        stride,
        pad,
        out_pad,
        bias,
        groups: 1,
    });
    g.op(name, op, &ins)
}

/// The names of the plan's kernels.
fn kernels(plan: &compiler::Plan) -> Vec<String> {
    plan.kernels.iter().map(|k| k.name.clone()).collect()
}

/// `g`, whose one conv `y` is its output, planned with Winograd tile `tile` and run against
/// the CPU reference: the conv is the four Winograd kernels.
fn check_as_winograd(g: &G, tile: usize, seed: u64) {
    let (plan, _) = check_on(&g.0, &winograd_target(tile), &random_feeds(&g.0, seed));
    assert_eq!(
        kernels(&plan),
        [
            "winograd_weight:y.winograd.u",
            "winograd_input:y.winograd.v",
            "winograd_gemm:y.winograd.m",
            "winograd_output:y"
        ],
        "{}",
        g.0.name
    );
}

#[test]
fn convs_as_winograd_products_match_the_direct_conv() {
    // (input, out channels, pad, bias): outputs the tiles divide and ones they do not, no
    // padding, a batch, 64 channels summed in the products.
    let cases = [
        ([1, 16, 8, 8], 16, 1, true),
        ([2, 24, 7, 9], 17, 1, false),
        ([1, 16, 10, 7], 20, 0, true),
        ([1, 64, 13, 11], 32, 1, true),
    ];
    for tile in WinogradTransforms::TILES {
        for (i, &(x, out, pad, bias)) in cases.iter().enumerate() {
            let mut g = G::new(&format!("winograd{tile}_{i}"));
            let xi = g.input("x", &x);
            let y = conv(&mut g, "y", xi, [out, x[1]], pad, bias);
            g.output(y);
            check_as_winograd(&g, tile, i as u64);
        }
    }
}

#[test]
fn narrow_strided_or_other_kernels_stay_direct() {
    // 8 input channels (below compiler::winograd::MIN_CHANNELS), stride 3, and a 5x5 kernel.
    let mut g = G::new("direct");
    let xi = g.input("x", &[1, 8, 9, 9]);
    let narrow = conv(&mut g, "narrow", xi, [16, 8], 1, true);
    let strided = strided_conv(&mut g, "strided", narrow, [16, 16], (3, 1), false);
    let w5 = g.param("five.w", &[16, 16, 5, 5]);
    let five = Op::Conv2d(Conv2d {
        stride: 1,
        pad: 2,
        bias: false,
        groups: 1,
    });
    let five = g.op("five", five, &[strided, w5]);
    g.output(five);
    let (plan, _) = check_on(&g.0, &winograd_target(4), &random_feeds(&g.0, 5));
    assert_eq!(
        kernels(&plan),
        ["conv2d:narrow", "conv2d:strided", "conv2d:five"]
    );
}

/// Stride-2 convs (the generator's down convs) in their polyphase form: outputs the 4x4 tiles
/// divide and ones they do not, odd inputs, no padding, a batch.
#[test]
fn stride2_convs_as_winograd_products_match_the_direct_conv() {
    let cases = [
        ([1, 16, 16, 16], 24, 1, true),
        ([2, 20, 13, 9], 16, 1, false),
        ([1, 32, 11, 12], 16, 0, true),
    ];
    for tile in WinogradTransforms::TILES {
        for (i, &(x, out, pad, bias)) in cases.iter().enumerate() {
            let mut g = G::new(&format!("winograd_s2_{tile}_{i}"));
            let xi = g.input("x", &x);
            let y = strided_conv(&mut g, "y", xi, [out, x[1]], (2, pad), bias);
            g.output(y);
            check_as_winograd(&g, tile, 40 + i as u64);
        }
    }
}

/// Stride-2 transposed convs with padding 1 (the generator's up convs, and a stride-2 conv's
/// input gradient): out_pad 1 (twice the input) and 0, with and without bias.
#[test]
fn stride2_transposed_convs_as_winograd_products_match_the_direct_conv() {
    let cases = [
        ([1, 16, 8, 8], 1, true),
        ([2, 24, 5, 7], 0, false),
        ([1, 16, 9, 6], 1, false),
    ];
    for tile in WinogradTransforms::TILES {
        for (i, &(x, out_pad, bias)) in cases.iter().enumerate() {
            let mut g = G::new(&format!("winograd_up_{tile}_{i}"));
            let xi = g.input("x", &x);
            let y = transposed_conv(&mut g, "y", xi, 20, (2, 1, out_pad), bias);
            g.output(y);
            check_as_winograd(&g, tile, 60 + i as u64);
        }
    }
}

/// relu(norm(x)) -> conv -> tanh -> + skip: the norm's statistics are a kernel, the rest is
/// the four Winograd kernels, with the normalisation and the ReLU in the input transform and
/// tanh and the add in the output transform.
#[test]
fn norms_fuse_into_the_input_transform_and_activations_into_the_output_transform() {
    let mut g = G::new("winograd_fused");
    let xi = g.input("x", &[1, 16, 12, 12]);
    let skip = g.input("skip", &[1, 16, 12, 12]);
    let norm = g.op("norm", Op::InstanceNorm(InstanceNorm { eps: 1e-5 }), &[xi]);
    let relu = g.op("relu", Op::Unary(Unary::Relu), &[norm]);
    let y = conv(&mut g, "conv", relu, [16, 16], 1, true);
    let t = g.op("tanh", Op::Unary(Unary::Tanh), &[y]);
    let sum = g.op("sum", Op::Binary(Binary::Add), &[t, skip]);
    g.output(sum);
    let (plan, _) = check_on(&g.0, &winograd_target(4), &random_feeds(&g.0, 9));
    let nodes = |kernel: &str| {
        let k = (plan.kernels.iter()).find(|k| k.name == kernel);
        k.unwrap_or_else(|| panic!("no kernel {kernel} in {:?}", kernels(&plan)))
            .nodes
            .clone()
    };
    assert_eq!(plan.kernels.len(), 5, "{:?}", kernels(&plan));
    assert_eq!(
        nodes("winograd_input:conv.winograd.v"),
        ["conv.winograd.v", "norm", "relu"]
    );
    assert_eq!(nodes("winograd_output:conv"), ["conv", "tanh", "sum"]);
}

/// With a 64 KiB binding limit the transformed inputs and products (36 x 24 x 36 tiles, 124 KiB
/// each) are split across arenas by their second dimension, which every accessor follows; a
/// conv whose transformed values would take more than `MAX_TRANSFORMED_BINDINGS` bindings
/// (36 x 24 x 64 tiles, 216 KiB) stays direct.
#[test]
fn transformed_values_split_across_arenas_up_to_a_limit() {
    let small = {
        let mut t = winograd_target(4);
        t.limits.max_binding_bytes = 64 * 1024;
        t
    };
    assert_eq!(compiler::winograd::MAX_TRANSFORMED_BINDINGS, 3);
    let mut g = G::new("winograd_split");
    let xi = g.input("x", &[1, 24, 24, 24]);
    let y = conv(&mut g, "y", xi, [24, 24], 1, true);
    let big = g.input("big", &[1, 24, 32, 32]);
    let direct = conv(&mut g, "direct", big, [24, 24], 1, true);
    g.output(y);
    g.output(direct);
    let (plan, _) = check_on(&g.0, &small, &random_feeds(&g.0, 13));
    let pieces = |name: &str| {
        let v = plan.values.iter().find(|v| v.name == name).unwrap();
        v.pieces.len()
    };
    assert!(pieces("y.winograd.v") > 1 && pieces("y.winograd.m") > 1);
    assert!(kernels(&plan).contains(&"conv2d:direct".to_string()));
}

/// A stride-1 transposed conv (a conv2d's input gradient) is the conv2d of its flipped weight
/// with padding 2 - pad: every padding it can have, with and without bias.
#[test]
fn stride1_transposed_convs_as_winograd_products_match_the_direct_conv() {
    for (i, (pad, bias)) in [(0, true), (1, false), (2, true)].into_iter().enumerate() {
        let mut g = G::new(&format!("winograd_t{i}"));
        let xi = g.input("x", &[1, 16, 9, 7]);
        let y = transposed_conv(&mut g, "y", xi, 20, (1, pad, 0), bias);
        g.output(y);
        check_as_winograd(&g, 4, 20 + i as u64);
    }
}
