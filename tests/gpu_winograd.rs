//! Stride-1 3x3 convs planned as Winograd F(m x m, 3 x 3) (`compiler/src/winograd.rs`), on the
//! device against the CPU reference of the direct conv (f64), with what fuses into their
//! transforms: an input's norm and activation in the input transform's loads, an activation
//! and a residual add in the output transform's stores.

mod gpu_support;

use compiler::Target;
use gpu_support::{check_on, gpu, random_feeds, G};
use ir::ops::*;
use ir::Op;

fn winograd_target(tile: usize) -> Target {
    Target {
        winograd_tile: tile,
        ..gpu().target()
    }
}

fn conv(g: &mut G, name: &str, x: usize, shape: [usize; 2], pad: usize, bias: bool) -> usize {
    let [out, cin] = shape;
    let w = g.param(&format!("{name}.w"), &[out, cin, 3, 3]);
    let mut ins = vec![x, w];
    if bias {
        ins.push(g.param(&format!("{name}.b"), &[out]));
    }
    let op = Op::Conv2d(Conv2d {
        stride: 1,
        pad,
        bias,
    });
    g.op(name, op, &ins)
}

/// The names of the plan's kernels.
fn kernels(plan: &compiler::Plan) -> Vec<String> {
    plan.kernels.iter().map(|k| k.name.clone()).collect()
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
            let (plan, _) = check_on(&g.0, &winograd_target(tile), &random_feeds(&g.0, i as u64));
            assert_eq!(
                kernels(&plan),
                [
                    "winograd_weight:y.winograd.u",
                    "winograd_input:y.winograd.v",
                    "winograd_gemm:y.winograd.m",
                    "winograd_output:y"
                ],
                "tile {tile}, case {i}"
            );
        }
    }
}

#[test]
fn narrow_strided_or_other_kernels_stay_direct() {
    // 8 input channels (below compiler::winograd::MIN_CHANNELS), stride 2, and a 5x5 kernel.
    let mut g = G::new("direct");
    let xi = g.input("x", &[1, 8, 9, 9]);
    let narrow = conv(&mut g, "narrow", xi, [16, 8], 1, true);
    let w = g.param("strided.w", &[16, 16, 3, 3]);
    let strided = Op::Conv2d(Conv2d {
        stride: 2,
        pad: 1,
        bias: false,
    });
    let strided = g.op("strided", strided, &[narrow, w]);
    let w5 = g.param("five.w", &[16, 16, 5, 5]);
    let five = Op::Conv2d(Conv2d {
        stride: 1,
        pad: 2,
        bias: false,
    });
    let five = g.op("five", five, &[strided, w5]);
    g.output(five);
    let (plan, _) = check_on(&g.0, &winograd_target(4), &random_feeds(&g.0, 5));
    assert_eq!(
        kernels(&plan),
        ["conv2d:narrow", "conv2d:strided", "conv2d:five"]
    );
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

/// With a 64 KiB binding limit the transformed inputs and products (36 x 24 x 64 tiles, 216 KiB
/// each) are split across arenas by their second dimension, which every accessor follows.
#[test]
fn transformed_values_split_across_arenas() {
    let small = Target {
        max_binding_bytes: 64 * 1024,
        ..winograd_target(4)
    };
    let mut g = G::new("winograd_split");
    let xi = g.input("x", &[1, 24, 32, 32]);
    let y = conv(&mut g, "y", xi, [24, 24], 1, true);
    g.output(y);
    let (plan, _) = check_on(&g.0, &small, &random_feeds(&g.0, 13));
    let pieces = |name: &str| {
        let v = plan.values.iter().find(|v| v.name == name).unwrap();
        v.pieces.len()
    };
    assert!(pieces("y.winograd.v") > 1 && pieces("y.winograd.m") > 1);
}

/// A stride-1 transposed conv (a conv2d's input gradient) is the conv2d of its flipped weight
/// with padding 2 - pad: every padding it can have, with and without bias.
#[test]
fn stride1_transposed_convs_as_winograd_products_match_the_direct_conv() {
    for (i, (pad, bias)) in [(0, true), (1, false), (2, true)].into_iter().enumerate() {
        let mut g = G::new(&format!("winograd_t{i}"));
        let xi = g.input("x", &[1, 16, 9, 7]);
        let w = g.param("w", &[16, 20, 3, 3]);
        let mut ins = vec![xi, w];
        if bias {
            ins.push(g.param("b", &[20]));
        }
        let op = Op::ConvTranspose2d(ConvTranspose2d {
            stride: 1,
            pad,
            out_pad: 0,
            bias,
        });
        let y = g.op("y", op, &ins);
        g.output(y);
        let (plan, _) = check_on(
            &g.0,
            &winograd_target(4),
            &random_feeds(&g.0, 20 + i as u64),
        );
        assert_eq!(plan.kernels.len(), 4, "pad {pad}: {:?}", kernels(&plan));
        assert_eq!(plan.kernels[3].name, "winograd_output:y");
    }
}
