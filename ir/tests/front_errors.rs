//! Every kind of mistake in a model file is reported with its file, line and column, the node
//! path, and what was expected and found. The messages are asserted exactly.

use ir::front;

/// The first error of reading `src` and building all of its graphs.
fn error(src: &str) -> String {
    error_with(src, &[])
}

fn error_with(src: &str, set: &[(&str, &str)]) -> String {
    let set: Vec<(String, String)> = set
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    match front::parse(src, "bad.ron", &set) {
        Err(e) => e.to_string(),
        Ok(m) => m
            .check()
            .expect_err("the model should not build")
            .to_string(),
    }
}

/// A one-graph model around `nodes` (which start on line 6), with a CBR block.
fn graph(nodes: &str) -> String {
    format!(
        r#"Model(
    params: {{ N: 8 }},
    blocks: {{ CBR: Block(args: [k, c], inputs: [x], nodes: {{ conv: Conv(in: x, out: c, kernel: k), relu: Relu(in: conv) }}, output: relu) }},
    graphs: {{
        g: Graph(inputs: {{ img: [1, 3, 16, 16] }}, nodes: {{
{nodes}
        }}, outputs: {{ out: out }}),
    }},
)"#
    )
}

#[test]
fn syntax_error() {
    assert_eq!(
        error("Model(params: { N: 8 } graphs: {})"),
        "bad.ron:1:24: error: expected `,` or `)`, found `graphs`"
    );
}

#[test]
fn unknown_op() {
    assert_eq!(error(&graph("            out: Conv3(in: img),")), "bad.ron:6:18: error: in g.out: unknown op `Conv3`; expected one of Conv, ConvT, ReflectPad, InstanceNorm, Relu, LeakyRelu, Tanh, Clamp, Abs, Neg, Sqrt, Square, Exp, Log, Sigmoid, Silu, Softplus, Erf, Gelu, Affine, Add, Sub, Mul, Div, Max, Min, ChannelAffine, Concat, Slice, MaxPool, Dropout, Sum, Mean, Const, Param, PixelShuffle, PixelUnshuffle, Resize, AvgPool, Reshape, MatMul, Softmax, LayerNorm, Repeat, Seq or a block (CBR)");
}

#[test]
fn unknown_block_in_repeat() {
    assert_eq!(
        error(&graph(
            "            out: Repeat(block: Nope, times: 2, x: img),"
        )),
        "bad.ron:6:32: error: in g.out: unknown block `Nope`; expected one of CBR"
    );
}

#[test]
fn missing_argument() {
    assert_eq!(
        error(&graph("            out: CBR(x: img, k: 3),")),
        "bad.ron:6:18: error: in g.out: missing argument `c` of block CBR"
    );
}

#[test]
fn extra_argument() {
    assert_eq!(error(&graph("            out: CBR(x: img, k: 3, c: N, s: 2),")), "bad.ron:6:42: error: in g.out: block CBR has no input or argument `s`; expected one of x, k, c");
}

#[test]
fn unknown_field_of_an_op() {
    assert_eq!(error(&graph("            out: Conv(in: img, out: N, kernel: 3, strid: 2),")), "bad.ron:6:51: error: in g.out: Conv has no field `strid`; expected one of in, out, kernel, stride, pad, bias, groups");
    // A misspelt required field is named as such, not reported missing.
    assert_eq!(
        error(&graph("            out: Conv(in: img, out: N, kernal: 3),")),
        "bad.ron:6:40: error: in g.out: Conv has no field `kernal`; did you mean `kernel`?"
    );
}

#[test]
fn missing_field_of_an_op() {
    assert_eq!(
        error(&graph("            out: Conv(in: img, kernel: 3),")),
        "bad.ron:6:18: error: in g.out: missing field `out` of Conv"
    );
}

#[test]
fn unknown_value() {
    assert_eq!(
        error(&graph(
            "            a: Relu(in: img),\n            out: Relu(in: b),"
        )),
        "bad.ron:7:27: error: in g.out: unknown value `b`; expected a node or input of graph g"
    );
}

#[test]
fn cycle() {
    assert_eq!(
        error(&graph("            a: Relu(in: out),\n            b: Relu(in: a),\n            out: Add(a: img, b: b),")),
        "bad.ron:6:13: error: in g: nodes `a` -> `b` -> `out` -> `a` form a cycle"
    );
}

#[test]
fn channel_mismatch_between_layers() {
    assert_eq!(
        error(&graph("            a: Conv(in: img, out: 16, kernel: 1),\n            b: Conv(in: img, out: 32, kernel: 1),\n            out: Add(a: a, b: b),")),
        "bad.ron:8:18: error: in g.out: add: shapes [1, 16, 16, 16] and [1, 32, 16, 16] do not broadcast"
    );
}

#[test]
fn channel_mismatch_at_a_block_input() {
    let src = r#"Model(
    params: { N: 8 },
    blocks: { B: Block(args: [k], inputs: { x: "(4 + k) * N" }, nodes: { y: Relu(in: x) }, output: y) },
    graphs: { g: Graph(inputs: { img: [1, 32, 4, 4] }, nodes: {
        out: Repeat(block: B, times: 2, index: i, x: img, k: i),
    }, outputs: { out: out }) },
)"#;
    assert_eq!(error(src), "bad.ron:5:14: error: in g.out.1: input `x` of block B has 32 channels, but the block declares (4 + k) * N = 40");
}

#[test]
fn non_positive_size() {
    assert_eq!(error(&graph("            out: Conv(in: img, out: 4, kernel: \"N - 8\"),")), "bad.ron:6:48: error: in g.out: `kernel` must be a whole number >= 1, found 0 (from \"N - 8\")");
    assert_eq!(
        error(&graph("            out: Conv(in: img, out: 0, kernel: 1),")),
        "bad.ron:6:37: error: in g.out: `out` must be a whole number >= 1, found 0"
    );
    assert_eq!(
        error(&graph(
            "            out: Repeat(block: CBR, times: 0, x: img, k: 1, c: 2),"
        )),
        "bad.ron:6:44: error: in g.out: `times` must be a whole number >= 1, found 0"
    );
}

#[test]
fn output_never_produced() {
    let src = graph("            outt: Relu(in: img),");
    assert_eq!(
        error(&src),
        "bad.ron:7:28: error: output `out` names `out`, which is not a node of graph g"
    );
}

#[test]
fn duplicate_node() {
    assert_eq!(
        error(&graph(
            "            out: Relu(in: img),\n            out: Tanh(in: img),"
        )),
        "bad.ron:7:13: error: duplicate key `out`; the first is at 6:13"
    );
}

#[test]
fn node_named_like_an_input() {
    assert_eq!(
        error(&graph(
            "            img: Relu(in: img),\n            out: Tanh(in: img),"
        )),
        "bad.ron:6:13: error: in g.img: node `img` has the name of an input of graph g"
    );
}

#[test]
fn shape_rule_error_names_the_node_in_a_block() {
    let src = r#"Model(
    blocks: {
        Res: Block(args: [c], inputs: [x], nodes: {
            y: Conv(in: x, out: c, kernel: 3),
            sum: Add(a: x, b: y),
        }, output: sum),
    },
    graphs: { g: Graph(inputs: { img: [1, 3, 4, 4] }, nodes: { out: Res(x: img, c: 4) }, outputs: { out: out }) },
)"#;
    assert_eq!(error(src), "bad.ron:5:18: error: in g.out.sum: add: shapes [1, 3, 4, 4] and [1, 4, 4, 4] do not broadcast");
}

#[test]
fn block_that_calls_itself() {
    let src = r#"Model(
    blocks: { B: Block(inputs: [x], nodes: { y: B(x: x) }, output: y) },
    graphs: { g: Graph(inputs: { img: [1, 3, 4, 4] }, nodes: { out: B(x: img) }, outputs: { out: out }) },
)"#;
    assert_eq!(
        error(src),
        "bad.ron:2:49: error: in g.out.y: block B calls itself (B -> B)"
    );
}

#[test]
fn bad_set() {
    assert_eq!(
        front::parse_set("N").unwrap_err().to_string(),
        "--set `N`: expected NAME=NUMBER, e.g. --set N=8"
    );
    assert_eq!(
        front::parse_set("N=eight").unwrap_err().to_string(),
        "--set `N=eight`: `eight` is not a number; write e.g. --set N=8"
    );
    assert_eq!(
        error_with(&graph("            out: Relu(in: img),"), &[("Q", "8")]),
        "--set Q=8: the model has no parameter `Q`; its parameters: N"
    );
}

#[test]
fn missing_file() {
    let e = front::load(std::path::Path::new("models/nope.ron"), &[])
        .unwrap_err()
        .to_string();
    assert_eq!(e, "cannot read the model file `models/nope.ron`: No such file or directory (os error 2); give the path of a .ron model, e.g. models/ird_gan.ron");
}

#[test]
fn unknown_graph_and_input() {
    let m = front::parse(&graph("            out: Relu(in: img),"), "bad.ron", &[]).unwrap();
    assert_eq!(
        m.build("gen", &[]).unwrap_err().to_string(),
        "bad.ron: no graph named `gen`; the model has: g"
    );
    assert_eq!(
        m.build("g", &[("image".into(), vec![1, 3, 8, 8])])
            .unwrap_err()
            .to_string(),
        "graph g has no input `image`; its inputs: img"
    );
}

#[test]
fn a_slice_past_the_channels_is_an_error_at_the_node() {
    let src = graph("            out: Slice(in: img, from: 2, to: 9),");
    assert_eq!(
        error(&src),
        "bad.ron:6:18: error: in g.out: channel_slice: expected channels c0 < c1 <= 3, found 2..9 (input [1, 3, 16, 16])"
    );
}

#[test]
fn groups_that_do_not_divide_the_channels() {
    assert_eq!(
        error(&graph("            out: Conv(in: img, out: 4, kernel: 3, groups: 2),")),
        "bad.ron:6:18: error: in g.out: Conv: expected input channels (3) and `out` (4) divisible by `groups` (2)"
    );
}

#[test]
fn layout_ops_say_what_they_expected() {
    let src = graph(r#"            out: Resize(in: img, factor: 2, mode: "bicubic"),"#);
    assert_eq!(
        error(&src),
        r#"bad.ron:6:51: error: in g.out: expected one of "nearest", "bilinear", found the string "bicubic""#
    );
    let src = graph("            out: PixelShuffle(in: img, factor: 2),");
    assert_eq!(
        error(&src),
        "bad.ron:6:18: error: in g.out: pixel_shuffle: expected channels divisible by factor^2 = 4, found 3 (input [1, 3, 16, 16])"
    );
    let src = graph("            out: AvgPool(in: img, kernel: 3, pad: 2),");
    assert_eq!(
        error(&src),
        "bad.ron:6:18: error: in g.out: avg_pool: expected pad <= kernel / 2, found pad 2 with kernel 3"
    );
}

#[test]
fn attention_ops_check_their_shapes_at_the_node() {
    let src = graph(
        "            r: Reshape(in: img, shape: [1, 3, 256]),\n            out: MatMul(a: r, b: r),",
    );
    assert_eq!(
        error(&src),
        "bad.ron:7:18: error: in g.out: matmul: expected a of rank 4 [B1, B2, M, K], found [1, 3, 256]"
    );
    let src = graph(
        "            r: Reshape(in: img, shape: [1, 3, 16, 16]),\n            out: MatMul(a: r, b: r, trans_a: true, trans_b: true),",
    );
    assert!(front::parse(&src, "ok.ron", &[]).unwrap().check().is_ok());
    let src = graph("            out: Reshape(in: img, shape: [1, 3, 16, 17]),");
    assert_eq!(
        error(&src),
        "bad.ron:6:18: error: in g.out: reshape: expected an input of 816 elements (shape [1, 3, 16, 17]), found [1, 3, 16, 16]"
    );
    let src = graph("            out: Softmax(in: img, axis: 4),");
    assert_eq!(
        error(&src),
        "bad.ron:6:18: error: in g.out: softmax: expected an axis below the input's rank 4, found axis 4 (input [1, 3, 16, 16])"
    );
}
