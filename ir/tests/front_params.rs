//! `Param`: learnable tensors a model file declares itself and any op may read, named by their
//! node path like a conv's weights, initialised as written.

use ir::front;
use ir::ops::Init;
use ir::{cpu, Op, Tensor};
use std::collections::HashMap;

/// A gated scale block, y = x * gamma + beta, called twice.
const SRC: &str = r#"Model(
    init_std: 0.5,
    blocks: {
        Scale: Block(args: [c], inputs: [x], nodes: {
            gamma: Param(shape: [1, c, 1, 1], init: 1),
            beta: Param(shape: [1, c, 1, 1]),
            noise: Param(shape: [c], init: Normal),
            wide: Param(shape: [2, c], init: Normal(std: 0.1)),
            scaled: Mul(a: x, b: gamma),
            y: Add(a: scaled, b: beta),
        }, output: y),
    },
    graphs: {
        g: Graph(inputs: { x: [1, 2, 1, 2] }, nodes: {
            s: Repeat(block: Scale, times: 2, x: x, c: 2),
        }, outputs: { y: s }),
    },
)"#;

#[test]
fn params_are_named_by_path_and_initialised_as_written() {
    let g = front::parse(SRC, "t.ron", &[])
        .unwrap()
        .build("g", &[])
        .unwrap();
    let mut params: Vec<(&str, &[usize], Init)> = g
        .params()
        .map(|(_, n)| {
            let Op::Param { init } = &n.op else {
                unreachable!()
            };
            (n.name.as_str(), n.shape.as_slice(), init.clone())
        })
        .collect();
    params.sort_by_key(|p| p.0);
    let fill = Init::Fill { value: 1.0 };
    let expected: Vec<(&str, &[usize], Init)> = vec![
        ("s.0.beta", &[1, 2, 1, 1], Init::Zeros),
        ("s.0.gamma", &[1, 2, 1, 1], fill.clone()),
        ("s.0.noise", &[2], Init::Normal { std: 0.5 }),
        ("s.0.wide", &[2, 2], Init::Normal { std: 0.1 }),
        ("s.1.beta", &[1, 2, 1, 1], Init::Zeros),
        ("s.1.gamma", &[1, 2, 1, 1], fill),
        ("s.1.noise", &[2], Init::Normal { std: 0.5 }),
        ("s.1.wide", &[2, 2], Init::Normal { std: 0.1 }),
    ];
    assert_eq!(params, expected);

    // Initialised as written, gamma 1 and beta 0 leave x as it is; then with other values the
    // block computes x * gamma + beta per channel, twice.
    let mut feeds: HashMap<String, Tensor<f32>> =
        ir::init::init_params(&g, 3).into_iter().collect();
    assert_eq!(feeds["s.1.gamma"].data, [1.0, 1.0]);
    let x = Tensor::new(&[1, 2, 1, 2], vec![1.0f32, 2.0, 3.0, 4.0]);
    feeds.insert("x".into(), x.clone());
    let y = &cpu::evaluate(&g, &feeds).unwrap()[g.outputs[0].1];
    assert_eq!(y.data, x.data);
    feeds.insert(
        "s.0.gamma".into(),
        Tensor::new(&[1, 2, 1, 1], vec![2.0, -1.0]),
    );
    feeds.insert(
        "s.1.beta".into(),
        Tensor::new(&[1, 2, 1, 1], vec![0.5, 1.0]),
    );
    let y = &cpu::evaluate(&g, &feeds).unwrap()[g.outputs[0].1];
    assert_eq!(y.data, [2.5, 4.5, -2.0, -3.0]);
}

/// The first error of building graph `g` whose nodes are `nodes`.
fn error(nodes: &str) -> String {
    let src = format!(
        "Model(graphs: {{ g: Graph(inputs: {{ x: [1, 2, 1, 1] }}, nodes: {{ {nodes} }}, outputs: {{ y: y }}) }})"
    );
    match front::parse(&src, "bad.ron", &[]) {
        Err(e) => e.to_string(),
        Ok(m) => m.check().expect_err("should not build").to_string(),
    }
}

#[test]
fn param_mistakes_are_worded() {
    assert_eq!(
        error("y: Param(shape: [1, 1, 1, 1, 2])"),
        "bad.ron:1:67: error: in g.y: Param: expected a shape of rank 1 to 4, found [1, 1, 1, 1, 2]"
    );
    assert_eq!(
        error("y: Param(shape: [2], init: Uniform)"),
        "bad.ron:1:91: error: in g.y: expected a number or `Normal(std: ..)`, found `Uniform`"
    );
    assert_eq!(
        error("y: Param(shape: [2], init: Normal(mean: 1))"),
        "bad.ron:1:98: error: in g.y: Normal has no field `mean`; expected one of std"
    );
    assert_eq!(
        error("y: Seq(in: x, layers: [Relu, Param(shape: [2])])"),
        "bad.ron:1:93: error: in g.y.1: Param reads no input, so it cannot be a layer of a Seq"
    );
}

/// `init: PyTorch`: a conv's weight and bias uniform on +-1 / sqrt(fan_in), fan_in the weight's
/// second dimension times the kernel's area (grouped and transposed convs alike), as PyTorch.
#[test]
fn convs_can_start_as_pytorchs() {
    let src = r#"Model(
        init: PyTorch,
        graphs: { g: Graph(inputs: { x: [1, 8, 4, 4] }, nodes: {
            c: Conv(in: x, out: 4, kernel: 3),
            d: Conv(in: c, out: 4, kernel: 3, groups: 4),
            t: ConvT(in: d, out: 6, kernel: 2, stride: 2, pad: 0, out_pad: 0),
        }, outputs: { y: t }) },
    )"#;
    let g = front::parse(src, "t.ron", &[])
        .unwrap()
        .build("g", &[])
        .unwrap();
    let init = |name: &str| {
        let Op::Param { init } = &g.nodes[g.find(name).unwrap()].op else {
            unreachable!()
        };
        init.clone()
    };
    let uniform = |fan_in: f64| Init::Uniform {
        bound: 1.0 / fan_in.sqrt(),
    };
    assert_eq!(init("c.weight"), uniform(72.0));
    assert_eq!(init("c.bias"), uniform(72.0));
    assert_eq!(init("d.weight"), uniform(9.0));
    assert_eq!(init("t.weight"), uniform(24.0));
    let values = ir::init::init_params(&g, 1);
    let (_, w) = values.iter().find(|(n, _)| n == "c.weight").unwrap();
    let bound = 1.0 / 72f32.sqrt();
    assert!(w.data.iter().all(|v| v.abs() <= bound));
    assert!(w.data.iter().any(|v| v.abs() > bound / 2.0));
}
