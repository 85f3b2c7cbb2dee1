//! `Call` and `Grad`, the constructs the losses of models/ird_gan.ron are written with: a called
//! graph is inlined under the calling node with its parameters shared between calls and named
//! `<graph>.<param path>`; `Grad` asks the differentiator it is given (the compiler's in irdc, a
//! stand-in here: the real pass is tested in compiler/tests and tests/gpu_grads.rs).

use ir::front::{self, Differentiator};
use ir::ops::Binary;
use ir::{cpu, Graph, NodeId, Op, Tensor};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

fn ird_gan(set: &[(&str, &str)]) -> front::Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ird_gan.ron");
    let set: Vec<(String, String)> = set
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    front::load(&path, &set).unwrap_or_else(|e| panic!("{e}"))
}

fn small() -> front::Model {
    ird_gan(&[("N", "4"), ("ndf", "4"), ("H", "16"), ("W", "16")])
}

/// Records what it was asked and returns `wrt * of` (a node of `wrt`'s shape; not a gradient).
#[derive(Default)]
struct StandIn {
    asked: RefCell<Vec<(String, Vec<usize>, String)>>,
}

impl Differentiator for StandIn {
    fn grad(&self, g: &mut Graph, of: NodeId, wrt: NodeId) -> Result<NodeId, String> {
        let (o, w) = (&g.nodes[of], &g.nodes[wrt]);
        self.asked
            .borrow_mut()
            .push((o.name.clone(), o.shape.clone(), w.name.clone()));
        g.push("stand_in", Op::Binary(Binary::Mul), vec![wrt, of])
    }
}

fn params(g: &Graph) -> Vec<(String, Vec<usize>)> {
    g.params()
        .map(|(_, n)| (n.name.clone(), n.shape.clone()))
        .collect()
}

#[test]
fn calls_of_a_graph_share_its_parameters_named_after_it() {
    let m = small();
    let critic = m.build("critic", &[]).unwrap();
    let loss = m
        .build_with("critic_loss", &[], &StandIn::default())
        .unwrap();
    // Three calls of the critic, one set of weights: its own, with `critic.` in front.
    let want: Vec<(String, Vec<usize>)> = params(&critic)
        .into_iter()
        .map(|(n, s)| (format!("critic.{n}"), s))
        .collect();
    assert_eq!(params(&loss), want);
    assert_eq!(want[0].0, "critic.conv1.weight");
    // Computed nodes are named under the calling node.
    for name in [
        "d_fake.conv1",
        "d_sharp.layer2.conv",
        "d_mixed.score",
        "slope",
    ] {
        assert!(loss.find(name).is_some(), "no node `{name}`");
    }
    let conv = loss.find("d_sharp.layer2.conv").unwrap();
    let w = loss.find("critic.layer2.conv.weight").unwrap();
    assert!(loss.nodes[conv].inputs.contains(&w));
    let names: Vec<&str> = loss.inputs().map(|(_, n)| n.name.as_str()).collect();
    assert_eq!(names, ["fake", "sharp", "alpha"]);
    assert_eq!(loss.outputs.len(), 1);
    assert_eq!(loss.outputs[0].0, "loss");
    assert_eq!(loss.nodes[loss.outputs[0].1].shape, [1, 1, 1, 1]);
}

#[test]
fn a_call_computes_what_the_called_graph_does() {
    let m = small();
    let critic = m.build("critic", &[]).unwrap();
    let loss = m
        .build_with("critic_loss", &[], &StandIn::default())
        .unwrap();
    let mut feeds: HashMap<String, Tensor<f64>> = HashMap::new();
    for (i, (name, t)) in ir::init::init_params(&critic, 7).into_iter().enumerate() {
        // Larger than N(0, 0.02) so the score map is not nearly constant.
        let t = Tensor::new(
            &t.shape,
            t.data
                .iter()
                .map(|&v| v as f64 * (5.0 + i as f64))
                .collect(),
        );
        feeds.insert(format!("critic.{name}"), t.clone());
        feeds.insert(name, t);
    }
    let image = Tensor::new(
        &[1, 3, 16, 16],
        (0..768)
            .map(|i| ((i * 37 % 101) as f64 / 50.0) - 1.0)
            .collect(),
    );
    feeds.insert("image".into(), image.clone());
    feeds.insert("sharp".into(), image);
    feeds.insert("fake".into(), Tensor::zeros(&[1, 3, 16, 16]));
    feeds.insert("alpha".into(), Tensor::new(&[1, 1, 1, 1], vec![0.5]));
    let direct = cpu::evaluate(&critic, &feeds).unwrap();
    let called = cpu::evaluate(&loss, &feeds).unwrap();
    let score = &direct[critic.outputs[0].1];
    let via_call = &called[loss.find("d_sharp.score").unwrap()];
    assert_eq!(score.shape, [1, 1, 5, 5]);
    assert_eq!(score.data, via_call.data);
    assert!(score.data.iter().any(|&v| (v - score.data[0]).abs() > 1e-6));
}

#[test]
fn grad_asks_the_differentiator_for_the_sum_of_its_value() {
    let diff = StandIn::default();
    let loss = small().build_with("critic_loss", &[], &diff).unwrap();
    // d_mixed is a 5x5 score map: Grad sums it first, then asks for d sum / d mixed.
    assert_eq!(
        *diff.asked.borrow(),
        [(
            "slope.sum".to_string(),
            vec![1, 1, 1, 1],
            "mixed".to_string()
        )]
    );
    let slope = loss.find("slope").unwrap();
    assert_eq!(loss.nodes[slope].shape, [1, 3, 16, 16]);
}

#[test]
fn grad_without_a_differentiator_is_an_error_at_the_node() {
    let src = r#"Model(
    graphs: {
        g: Graph(inputs: { x: [1, 1, 2, 2] }, nodes: {
            y: Square(in: x),
            dx: Grad(of: y, wrt: x),
        }, outputs: { dx: dx }),
    },
)"#;
    let m = front::parse(src, "g.ron", &[]).unwrap();
    let e = m.build("g", &[]).unwrap_err().to_string();
    assert_eq!(e, "g.ron:5:17: error: in g.dx: Grad needs a differentiator; build the graph with `Model::build_with(.., &compiler::differentiate::Autodiff)` (irdc's commands do)");
    let e = small().build("critic_loss", &[]).unwrap_err().to_string();
    assert!(
        e.contains("in critic_loss.slope: Grad needs a differentiator"),
        "{e}"
    );
    // The same graph builds with one.
    m.build_with("g", &[], &StandIn::default()).unwrap();
}

#[test]
fn generator_loss_builds_from_three_graphs() {
    let m = small();
    let loss = m
        .build_with("generator_loss", &[], &StandIn::default())
        .unwrap();
    let mut want = Vec::new();
    for graph in ["generator", "critic", "vgg19"] {
        let g = m.build(graph, &[]).unwrap();
        want.extend(
            params(&g)
                .into_iter()
                .map(|(n, s)| (format!("{graph}.{n}"), s)),
        );
    }
    let mut have = params(&loss);
    have.sort();
    want.sort();
    assert_eq!(have, want);
    assert!(loss.find("vgg19.features.14.weight").is_some());
    assert!(loss.find("f_sharp.features.14").is_some());
    assert_eq!(loss.nodes[loss.outputs[0].1].shape, [1, 1, 1, 1]);
    // The loss weights are parameters of the model: --set per_weight=0 reaches the graph.
    let zero = ird_gan(&[
        ("N", "4"),
        ("ndf", "4"),
        ("H", "16"),
        ("W", "16"),
        ("per_weight", "0"),
    ]);
    let g = zero.build("generator_loss", &[]).unwrap();
    let node = &g.nodes[g.find("perceptual_w").unwrap()].op;
    assert_eq!(
        *node,
        Op::Unary(ir::ops::Unary::Affine {
            scale: 0.0,
            shift: 0.0
        })
    );
    // Other input sizes replace the declared ones, through the calls.
    let big = m
        .build(
            "generator_loss",
            &[
                ("blurred".into(), vec![2, 3, 32, 32]),
                ("sharp".into(), vec![2, 3, 32, 32]),
            ],
        )
        .unwrap();
    assert_eq!(
        big.nodes[big.find("out.sharp").unwrap()].shape,
        [2, 3, 32, 32]
    );
}

/// A model of three graphs for the messages and the nested naming.
fn nested(extra: &str) -> String {
    format!(
        r#"Model(
    params: {{ C: 2 }},
    graphs: {{
        inner: Graph(inputs: {{ x: [1, C, 4, 4] }}, nodes: {{
            conv: Conv(in: x, out: C, kernel: 3),
        }}, outputs: {{ y: conv, same: x }}),
        middle: Graph(inputs: {{ x: [1, C, 4, 4] }}, nodes: {{
            a: Call(graph: inner, x: x, output: y),
            b: Call(graph: inner, x: a, output: y),
        }}, outputs: {{ y: b }}),
        top: Graph(inputs: {{ img: [1, C, 4, 4] }}, nodes: {{
{extra}
        }}, outputs: {{ out: out }}),
    }},
)"#
    )
}

fn error(src: &str) -> String {
    let m = front::parse(src, "m.ron", &[]).unwrap();
    m.build("top", &[]).unwrap_err().to_string()
}

#[test]
fn a_called_graph_names_its_own_calls_under_its_name() {
    let src = nested("            m: Call(graph: middle, x: img),\n            out: Call(graph: inner, x: m, output: y),");
    let g = front::parse(&src, "m.ron", &[])
        .unwrap()
        .build("top", &[])
        .unwrap();
    let names: Vec<String> = params(&g).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "middle.inner.conv.weight",
            "middle.inner.conv.bias",
            "inner.conv.weight",
            "inner.conv.bias"
        ]
    );
    assert!(g.find("m.b.conv").is_some());
    assert!(g.find("out.conv").is_some());
}

#[test]
fn call_mistakes_are_reported_at_the_call() {
    assert_eq!(
        error(&nested("            out: Call(graph: nope, x: img),")),
        "m.ron:12:30: error: in top.out: unknown graph `nope`; expected one of inner, middle, top"
    );
    assert_eq!(
        error(&nested("            out: Call(graph: top, img: img),")),
        "m.ron:12:30: error: in top.out: graph top calls itself (top -> top)"
    );
    assert_eq!(
        error(&nested("            out: Call(graph: inner, x: img),")),
        "m.ron:12:18: error: in top.out: graph inner has several outputs (y, same); say which with `output: ..`"
    );
    assert_eq!(
        error(&nested(
            "            out: Call(graph: inner, x: img, output: z),"
        )),
        "m.ron:12:53: error: in top.out: graph inner has no output `z`; its outputs: y, same"
    );
    assert_eq!(
        error(&nested(
            "            out: Call(graph: inner, img: img, output: y),"
        )),
        "m.ron:12:18: error: in top.out: missing input `x` of Call of graph inner"
    );
    assert_eq!(
        error(&nested("            p: Concat(in: [img, img]),\n            out: Call(graph: inner, x: p, output: y),")),
        "m.ron:13:40: error: in top.out: input `x` of graph inner has shape [1, 4, 4, 4]; the graph declares [1, 2, 4, 4] (batch and spatial sizes may differ, rank and channels may not)"
    );
    assert_eq!(
        error(&nested("            out: Call(graph: inner, x: img, output: y, z: img),")),
        "m.ron:12:56: error: in top.out: Call of graph inner has no input `z`; expected one of graph, output, x"
    );
}
