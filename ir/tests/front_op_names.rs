//! What a model file may name: every op of the language builds ops that are not internal, and no
//! internal op (`Properties::internal`: made by autodiff, lowering or Winograd) can be named.

use ir::front::{self, OP_NAMES};
use ir::Op;

/// One call per name in `OP_NAMES`, on `x` of shape [1, 4, 8, 8].
const CALLS: &[&str] = &[
    "Conv(in: x, out: 4, kernel: 3)",
    "ConvT(in: x, out: 4, kernel: 4, stride: 2, pad: 1, out_pad: 0)",
    "ReflectPad(in: x, pad: 1)",
    "InstanceNorm(in: x)",
    "Relu(in: x)",
    "LeakyRelu(in: x, slope: 0.2)",
    "Tanh(in: x)",
    "Clamp(in: x, min: -1, max: 1)",
    "Abs(in: x)",
    "Neg(in: x)",
    "Sqrt(in: x)",
    "Square(in: x)",
    "Exp(in: x)",
    "Log(in: x)",
    "Sigmoid(in: x)",
    "Silu(in: x)",
    "Softplus(in: x)",
    "Erf(in: x)",
    "Gelu(in: x)",
    "Affine(in: x, scale: 2, shift: 1)",
    "Add(a: x, b: x)",
    "Sub(a: x, b: x)",
    "Mul(a: x, b: x)",
    "Div(a: x, b: x)",
    "Max(a: x, b: x)",
    "Min(a: x, b: x)",
    "ChannelAffine(in: x, scale: [1, 2, 3, 4], shift: [0, 0, 0, 0])",
    "Concat(in: [x, x])",
    "Slice(in: x, to: 2)",
    "MaxPool(in: x, kernel: 2)",
    "Dropout(in: x, p: 0.5)",
    "Sum(in: x)",
    "Mean(in: x)",
    "Const(shape: [1], values: [1])",
    "Param(shape: [4])",
    "PixelShuffle(in: x, factor: 2)",
    "PixelUnshuffle(in: x, factor: 2)",
    "Resize(in: x, factor: 2)",
    "AvgPool(in: x, kernel: 2)",
    "Reshape(in: x, shape: [4, 64])",
    "MatMul(a: x, b: x)",
    "Softmax(in: x)",
    "LayerNorm(in: x)",
];

fn model(call: &str) -> String {
    format!(
        "Model(graphs: {{ g: Graph(inputs: {{ x: [1, 4, 8, 8] }}, nodes: {{ y: {call} }}, \
         outputs: {{ y: y }}) }})"
    )
}

#[test]
fn no_op_a_model_names_is_internal() {
    let names: Vec<&str> = CALLS.iter().map(|c| &c[..c.find('(').unwrap()]).collect();
    assert_eq!(names, OP_NAMES, "one call per op name, in OP_NAMES' order");
    for call in CALLS {
        let m = front::parse(&model(call), "ops.ron", &[]).unwrap();
        let g = m.build("g", &[]).unwrap_or_else(|e| panic!("{call}: {e}"));
        for node in &g.nodes {
            let kind = node.op.kind_name();
            assert!(!node.op.properties().internal, "{call} builds {kind}");
        }
    }
}

#[test]
fn a_model_cannot_name_an_internal_op() {
    let internal: Vec<&str> = (Op::VARIANTS.iter())
        .filter(|(_, p)| p.internal)
        .map(|&(name, _)| name)
        .collect();
    assert!(internal.contains(&"WinogradInput"), "{internal:?}");
    for name in internal {
        let e = front::parse(&model(&format!("{name}(in: x)")), "ops.ron", &[])
            .and_then(|m| m.build("g", &[]))
            .expect_err(name);
        assert_eq!(
            e.to_string(),
            format!(
                "ops.ron:1:67: error: in g.y: unknown op `{name}`; expected one of {}, Repeat, \
                 Seq or a block (none in this model)",
                OP_NAMES.join(", ")
            )
        );
    }
}
