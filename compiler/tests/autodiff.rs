//! Reverse-mode autodiff against central finite differences of the f64 CPU reference: the first
//! order for every op, the second order (the gradient of a gradient norm, WGAN-GP's shape) for
//! every op the critic uses, and the whole IRD-GAN critic with a gradient penalty.

use compiler::autodiff::{grad, sum_to_scalar};
use compiler::CompileError;
use ir::ops::*;
use ir::{cpu, Graph, Node, NodeId, Op, Tensor};
use std::collections::HashMap;

/// A small deterministic generator (the compiler crate has no rand dependency).
struct Rng(u64);
impl Rng {
    /// Uniform in [lo, hi).
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (hi - lo) * ((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }
    fn tensor(&mut self, shape: &[usize], lo: f64, hi: f64) -> Tensor<f64> {
        let n = ir::numel(shape);
        Tensor::new(shape, (0..n).map(|_| self.uniform(lo, hi)).collect())
    }
}

/// A graph under construction with its random feeds.
struct Case {
    g: Graph,
    feeds: HashMap<String, Tensor<f64>>,
    rng: Rng,
}

impl Case {
    fn new(seed: u64) -> Case {
        Case {
            g: Graph {
                name: "t".into(),
                ..Graph::default()
            },
            feeds: HashMap::new(),
            rng: Rng(seed),
        }
    }
    /// An input fed with uniform values in [lo, hi).
    fn input(&mut self, name: &str, shape: &[usize], lo: f64, hi: f64) -> NodeId {
        self.g.nodes.push(Node {
            name: name.into(),
            op: Op::Input { name: name.into() },
            inputs: vec![],
            shape: shape.to_vec(),
        });
        let t = self.rng.tensor(shape, lo, hi);
        self.feeds.insert(name.into(), t);
        self.g.nodes.len() - 1
    }
    fn x(&mut self, name: &str, shape: &[usize]) -> NodeId {
        self.input(name, shape, -1.0, 1.0)
    }
    fn op(&mut self, op: Op, inputs: Vec<NodeId>) -> NodeId {
        let name = format!("n{}", self.g.nodes.len());
        self.g.push(name, op, inputs).unwrap()
    }
    fn un(&mut self, u: Unary, x: NodeId) -> NodeId {
        self.op(Op::Unary(u), vec![x])
    }
    fn bin(&mut self, b: Binary, x: NodeId, y: NodeId) -> NodeId {
        self.op(Op::Binary(b), vec![x, y])
    }
    /// sum(out * R) with a fixed random R, a scalar that weighs every output element differently.
    fn loss(&mut self, out: NodeId) -> NodeId {
        let shape = self.g.nodes[out].shape.clone();
        let r = self.rng.tensor(&shape, -1.0, 1.0);
        let r = self.op(
            Op::Const(Const {
                shape,
                values: r.data,
            }),
            vec![],
        );
        let m = self.bin(Binary::Mul, out, r);
        sum_to_scalar(&mut self.g, m).unwrap()
    }
}

/// The feed key of a source: the input's name or the parameter's node path.
fn key(g: &Graph, id: NodeId) -> String {
    match &g.nodes[id].op {
        Op::Input { name } => name.clone(),
        _ => g.nodes[id].name.clone(),
    }
}

fn eval(g: &Graph, feeds: &HashMap<String, Tensor<f64>>, id: NodeId) -> Tensor<f64> {
    cpu::evaluate::<f64>(g, feeds).unwrap().swap_remove(id)
}

/// d f / d wrt by autodiff against central differences of `f` in `g`, on the elements `pick`
/// chooses (all when None).
fn check(
    g: &Graph,
    feeds: &HashMap<String, Tensor<f64>>,
    f: NodeId,
    wrt: &[NodeId],
    pick: Option<usize>,
) {
    let (gg, ids) = grad(g, f, wrt).unwrap_or_else(|e| panic!("{e}"));
    let values = cpu::evaluate::<f64>(&gg, feeds).unwrap();
    for (&w, &id) in wrt.iter().zip(&ids) {
        let got = &values[id];
        assert_eq!(got.shape, g.nodes[w].shape);
        let k = key(g, w);
        let n = got.data.len();
        let step = pick.map_or(1, |p| (n / p).max(1));
        for e in (0..n).step_by(step) {
            let h = 1e-6;
            let at = |d: f64| {
                let mut fs = feeds.clone();
                fs.get_mut(&k).unwrap().data[e] += d;
                eval(g, &fs, f).data[0]
            };
            let want = (at(h) - at(-h)) / (2.0 * h);
            let have = got.data[e];
            let tol = 1e-5 * (1.0 + want.abs());
            assert!(
                (have - want).abs() <= tol,
                "d/d {k}[{e}]: autodiff {have}, finite differences {want}\n{:?}",
                g.nodes.last().map(|n| &n.op)
            );
        }
    }
}

/// One op applied to the given inputs, checked through sum(out * R) w.r.t. every input.
fn first_order(case: Case, op: Op, inputs: Vec<NodeId>) {
    let mut case = case;
    let out = case.op(op, inputs.clone());
    let f = case.loss(out);
    check(&case.g, &case.feeds, f, &inputs, None);
}

#[test]
fn conv2d_first_order() {
    for (hw, k, s, p, bias) in [
        (5, 3, 1, 1, true),
        (7, 3, 2, 1, true),
        (7, 4, 2, 2, false),
        (6, 4, 2, 2, true),
        (5, 3, 3, 0, false),
    ] {
        let mut c = Case::new(hw as u64 * 31 + k as u64);
        let x = c.x("x", &[2, 3, hw, hw]);
        let w = c.x("w", &[2, 3, k, k]);
        let mut ins = vec![x, w];
        if bias {
            ins.push(c.x("b", &[2]));
        }
        first_order(
            c,
            Op::Conv2d(Conv2d {
                stride: s,
                pad: p,
                bias,
            }),
            ins,
        );
    }
}

#[test]
fn conv_transpose2d_first_order() {
    for (hw, k, s, p, op_, bias) in [
        (3, 3, 2, 1, 1, true),
        (3, 4, 2, 1, 0, false),
        (4, 3, 1, 1, 0, true),
        (3, 3, 3, 0, 2, false),
    ] {
        let mut c = Case::new(hw as u64 * 17 + k as u64);
        let x = c.x("x", &[2, 3, hw, hw]);
        let w = c.x("w", &[3, 2, k, k]);
        let mut ins = vec![x, w];
        if bias {
            ins.push(c.x("b", &[2]));
        }
        first_order(
            c,
            Op::ConvTranspose2d(ConvTranspose2d {
                stride: s,
                pad: p,
                out_pad: op_,
                bias,
            }),
            ins,
        );
    }
}

#[test]
fn weight_grad_ops_first_order() {
    // conv2d_weight_grad(x, gy) and its transposed twin are bilinear; their VJPs are convs.
    for (hw, k, s, p) in [(5, 3, 1, 1), (7, 3, 2, 1), (7, 4, 2, 2)] {
        let mut c = Case::new(5 + hw as u64);
        let x = c.x("x", &[2, 3, hw, hw]);
        let ho = (hw + 2 * p - k) / s + 1;
        let gy = c.x("gy", &[2, 2, ho, ho]);
        first_order(
            c,
            Op::Conv2dWeightGrad(Conv2dWeightGrad {
                stride: s,
                pad: p,
                kh: k,
                kw: k,
            }),
            vec![x, gy],
        );
    }
    for (hw, k, s, p, op_) in [(3, 3, 2, 1, 1), (3, 4, 2, 1, 0), (4, 3, 1, 1, 0)] {
        let mut c = Case::new(9 + hw as u64);
        let x = c.x("x", &[2, 3, hw, hw]);
        let ho = (hw - 1) * s + k + op_ - 2 * p;
        let gy = c.x("gy", &[2, 2, ho, ho]);
        let op = ConvTranspose2dWeightGrad {
            stride: s,
            pad: p,
            kh: k,
            kw: k,
        };
        first_order(c, Op::ConvTranspose2dWeightGrad(op), vec![x, gy]);
    }
}

#[test]
fn padding_pooling_and_layout_first_order() {
    let mut c = Case::new(1);
    let x = c.x("x", &[1, 2, 4, 5]);
    first_order(
        c,
        Op::ReflectPad(ReflectPad { pads: [2, 1, 0, 3] }),
        vec![x],
    );
    let mut c = Case::new(2);
    let x = c.x("x", &[1, 2, 7, 8]);
    first_order(
        c,
        Op::ReflectPadGrad(ReflectPadGrad { pads: [2, 1, 0, 3] }),
        vec![x],
    );
    for (k, s, p) in [(3, 1, 1), (3, 2, 1), (2, 2, 0)] {
        let mut c = Case::new(3 + k as u64 * 7 + s as u64);
        let x = c.x("x", &[2, 2, 5, 5]);
        first_order(
            c,
            Op::MaxPool2d(MaxPool2d {
                kernel: k,
                stride: s,
                pad: p,
            }),
            vec![x],
        );
    }
    let mut c = Case::new(4);
    let x = c.x("x", &[2, 1, 3, 1]);
    first_order(
        c,
        Op::Expand(Expand {
            shape: vec![2, 3, 3, 5],
        }),
        vec![x],
    );
    let mut c = Case::new(5);
    let x = c.x("x", &[3]);
    first_order(c, Op::Expand(Expand { shape: vec![2, 3] }), vec![x]);
    let mut c = Case::new(6);
    let x = c.x("x", &[1, 3, 1, 1]);
    first_order(c, Op::Reshape(Reshape { shape: vec![3] }), vec![x]);
    let mut c = Case::new(7);
    let x = c.x("x", &[2, 5, 2, 3]);
    first_order(c, Op::ChannelSlice(ChannelSlice { c0: 1, c1: 3 }), vec![x]);
    let mut c = Case::new(8);
    let (a, b, d) = (
        c.x("a", &[2, 1, 3, 3]),
        c.x("b", &[2, 3, 3, 3]),
        c.x("d", &[2, 2, 3, 3]),
    );
    first_order(c, Op::Concat(Concat {}), vec![a, b, d]);
    let mut c = Case::new(9);
    let x = c.x("x", &[2, 3, 3]);
    first_order(c, Op::Dropout(Dropout { p: 0.2, salt: 0 }), vec![x]);
    let mut c = Case::new(10);
    let x = c.x("x", &[2, 3, 3, 5]);
    first_order(c, Op::InstanceNorm(InstanceNorm { eps: 1e-5 }), vec![x]);
    let mut c = Case::new(11);
    let x = c.x("x", &[2, 3, 3, 5]);
    first_order(
        c,
        Op::ChannelAffine(ChannelAffine {
            scale: vec![2.0, -0.5, 3.0],
            shift: vec![0.1],
        }),
        vec![x],
    );
    for (kind, axes) in [
        (ReduceKind::Sum, vec![]),
        (ReduceKind::Mean, vec![]),
        (ReduceKind::Sum, vec![0, 2, 3]),
        (ReduceKind::Mean, vec![2, 3]),
        (ReduceKind::Mean, vec![1]),
    ] {
        let mut c = Case::new(12 + axes.len() as u64);
        let x = c.x("x", &[2, 3, 3, 5]);
        first_order(c, Op::Reduce(Reduce { kind, axes }), vec![x]);
    }
}

#[test]
fn unary_first_order() {
    let ops = [
        Unary::Relu,
        Unary::LeakyRelu { slope: 0.2 },
        Unary::Tanh,
        Unary::Clamp {
            min: -0.5,
            max: 0.5,
        },
        Unary::Abs,
        Unary::Neg,
        Unary::Sqrt,
        Unary::Square,
        Unary::Exp,
        Unary::Log,
        Unary::Affine {
            scale: -1.5,
            shift: 0.25,
        },
        Unary::Step,
        Unary::LeakyStep { slope: 0.2 },
        Unary::Sign,
        Unary::InRange {
            min: -0.5,
            max: 0.5,
        },
        Unary::Recip,
    ];
    for (k, u) in ops.into_iter().enumerate() {
        let mut c = Case::new(100 + k as u64);
        // sqrt, log and recip on positive values away from 0.
        let positive = matches!(u, Unary::Sqrt | Unary::Log | Unary::Recip);
        let x = if positive {
            c.input("x", &[2, 3, 5], 0.5, 1.5)
        } else {
            c.x("x", &[2, 3, 5])
        };
        first_order(c, Op::Unary(u), vec![x]);
    }
}

#[test]
fn binary_first_order_with_broadcasting() {
    let all = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Max,
        Binary::Min,
    ];
    for (k, b) in all.into_iter().enumerate() {
        for (sa, sb) in [
            (vec![2, 3, 1, 5], vec![3, 4, 1]),
            (vec![2, 3], vec![2, 3]),
            (vec![1], vec![3, 1, 5]),
        ] {
            let mut c = Case::new(200 + k as u64);
            let x = c.x("a", &sa);
            // Div by values away from 0.
            let y = if b == Binary::Div {
                c.input("b", &sb, 0.5, 1.5)
            } else {
                c.x("b", &sb)
            };
            first_order(c, Op::Binary(b), vec![x, y]);
        }
    }
}

/// A value read by several consumers gets the sum of their gradients; an input the loss does
/// not depend on gets zeros; only the asked gradients are computed.
#[test]
fn accumulates_and_prunes() {
    let mut c = Case::new(300);
    let x = c.x("x", &[2, 3]);
    let unused = c.x("unused", &[4]);
    let sq = c.un(Unary::Square, x);
    let t = c.un(Unary::Tanh, x);
    let s = c.bin(Binary::Mul, sq, t);
    let s = c.bin(Binary::Add, s, x);
    let f = c.loss(s);
    check(&c.g, &c.feeds, f, &[x], None);
    let (gg, ids) = grad(&c.g, f, &[x, unused]).unwrap();
    let v = cpu::evaluate::<f64>(&gg, &c.feeds).unwrap();
    assert_eq!(v[ids[1]], Tensor::zeros(&[4]));
    assert_eq!(gg.nodes[..c.g.nodes.len()], c.g.nodes[..]);
    assert!(gg.outputs.contains(&("grad.x".to_string(), ids[0])));

    // A conv whose weight gradient is not asked for adds no conv2d_weight_grad node.
    let mut c = Case::new(301);
    let x = c.x("x", &[1, 2, 5, 5]);
    let w = c.x("w", &[2, 2, 3, 3]);
    let y = c.op(
        Op::Conv2d(Conv2d {
            stride: 1,
            pad: 1,
            bias: false,
        }),
        vec![x, w],
    );
    let f = c.loss(y);
    let (gg, _) = grad(&c.g, f, &[x]).unwrap();
    assert!(!gg
        .nodes
        .iter()
        .any(|n| matches!(n.op, Op::Conv2dWeightGrad(_))));
    let (gg, _) = grad(&c.g, f, &[w]).unwrap();
    assert!(!gg
        .nodes
        .iter()
        .any(|n| matches!(n.op, Op::ConvTranspose2d(_))));
}

#[test]
fn errors() {
    let mut c = Case::new(400);
    let x = c.x("x", &[2, 3]);
    let y = c.un(Unary::Square, x);
    let e = grad(&c.g, y, &[x]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "autodiff at `n1`: expected a value with one element to differentiate, found shape [2, 3] (sum it first: sum_to_scalar)"
    );
    assert!(matches!(
        grad(&c.g, 9, &[x]),
        Err(CompileError::Autodiff { .. })
    ));

    // Max pool: the first order works, the second reports that it is not defined.
    let mut c = Case::new(401);
    let x = c.x("x", &[1, 1, 4, 4]);
    let p = c.op(
        Op::MaxPool2d(MaxPool2d {
            kernel: 2,
            stride: 2,
            pad: 0,
        }),
        vec![x],
    );
    let f = c.loss(p);
    let (g1, ids) = grad(&c.g, f, &[x]).unwrap();
    let mut g1 = g1;
    let s = sum_to_scalar(&mut g1, ids[0]).unwrap();
    let e = grad(&g1, s, &[x]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "autodiff at `grad.n1`: max_pool2d_grad: the second derivative is not defined in irdc; `grad.n1` is the gradient of a max pool, and a gradient of it was asked for (differentiate a graph with max pools only once)"
    );
}

/// The gradient-penalty shape: || d f / d x ||_2 as a node of the first-order graph.
fn grad_norm(g: &Graph, f: NodeId, x: NodeId) -> (Graph, NodeId) {
    let (mut g, ids) = grad(g, f, &[x]).unwrap();
    let sq = g
        .push("gp.sq", Op::Unary(Unary::Square), vec![ids[0]])
        .unwrap();
    let s = sum_to_scalar(&mut g, sq).unwrap();
    let n = g.push("gp.norm", Op::Unary(Unary::Sqrt), vec![s]).unwrap();
    (g, n)
}

/// Second order: the gradient of || grad_x f || w.r.t. `wrt` against finite differences of the
/// first-order graph.
fn second_order(c: &Case, f: NodeId, x: NodeId, wrt: &[NodeId], pick: Option<usize>) {
    let (g1, norm) = grad_norm(&c.g, f, x);
    check(&g1, &c.feeds, norm, wrt, pick);
}

#[test]
fn conv_leaky_relu_second_order() {
    for (hw, k, s, p) in [(7, 4, 2, 2), (5, 3, 1, 1), (6, 4, 1, 2)] {
        let mut c = Case::new(500 + hw as u64);
        let x = c.x("x", &[1, 2, hw, hw]);
        let w = c.x("w", &[3, 2, k, k]);
        let b = c.input("b", &[3], -0.3, 0.3);
        let y = c.op(
            Op::Conv2d(Conv2d {
                stride: s,
                pad: p,
                bias: true,
            }),
            vec![x, w, b],
        );
        let a = c.un(Unary::LeakyRelu { slope: 0.2 }, y);
        let f = c.loss(a);
        second_order(&c, f, x, &[w, b, x], None);
    }
}

#[test]
fn instance_norm_second_order() {
    let mut c = Case::new(600);
    let x = c.x("x", &[1, 2, 5, 5]);
    let w = c.x("w", &[3, 2, 3, 3]);
    let y = c.op(
        Op::Conv2d(Conv2d {
            stride: 2,
            pad: 1,
            bias: false,
        }),
        vec![x, w],
    );
    let n = c.op(Op::InstanceNorm(InstanceNorm { eps: 1e-5 }), vec![y]);
    let a = c.un(Unary::LeakyRelu { slope: 0.2 }, n);
    let f = c.loss(a);
    second_order(&c, f, x, &[w, x], None);
}

#[test]
fn elementwise_and_reductions_second_order() {
    // f = mean(sqrt(affine(square(x * w + b - x)))) + sum over channels of (x * w) * R
    let mut c = Case::new(700);
    let x = c.x("x", &[2, 3, 2, 3]);
    let w = c.x("w", &[1, 3, 1, 1]);
    let b = c.x("b", &[3, 1, 1]);
    let xw = c.bin(Binary::Mul, x, w);
    let t = c.bin(Binary::Add, xw, b);
    let t = c.bin(Binary::Sub, t, x);
    let t = c.un(Unary::Square, t);
    let t = c.un(
        Unary::Affine {
            scale: 2.0,
            shift: 0.5,
        },
        t,
    );
    let t = c.un(Unary::Sqrt, t);
    let m = c.op(
        Op::Reduce(Reduce {
            kind: ReduceKind::Mean,
            axes: vec![],
        }),
        vec![t],
    );
    let s = c.op(
        Op::Reduce(Reduce {
            kind: ReduceKind::Sum,
            axes: vec![1],
        }),
        vec![xw],
    );
    let s = c.loss(s);
    let m = c.op(Op::Reshape(Reshape { shape: vec![1] }), vec![m]);
    let f = c.bin(Binary::Add, m, s);
    second_order(&c, f, x, &[w, b, x], None);
}

/// The IRD-GAN critic at ndf = 4 on a 12x12 image: L = mean(D(x)) + (|| grad_x mean(D(x)) || - 1)^2,
/// differentiated w.r.t. a few weights of every layer.
#[test]
fn critic_with_gradient_penalty() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ird_gan.ron");
    let set = |k: &str, v: &str| (k.to_string(), v.to_string());
    let m = ir::front::load(&path, &[set("ndf", "4"), set("H", "12"), set("W", "12")]).unwrap();
    let g = m.build("critic", &[]).unwrap();
    let mut c = Case::new(800);
    c.g = g;
    let image = c.g.inputs().next().unwrap().0;
    let feeds: Vec<(String, Tensor<f64>)> =
        c.g.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.op, Op::Input { .. } | Op::Param { .. }))
            .map(|(i, n)| (key(&c.g, i), n.shape.clone()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(k, s)| (k, c.rng.tensor(&s, -0.3, 0.3)))
            .collect();
    c.feeds = feeds.into_iter().collect();
    let score = c.g.outputs[0].1;
    assert_eq!(c.g.nodes[score].shape, vec![1, 1, 5, 5]);
    let mean = c.op(
        Op::Reduce(Reduce {
            kind: ReduceKind::Mean,
            axes: vec![],
        }),
        vec![score],
    );
    let (mut g1, norm) = grad_norm(&c.g, mean, image);
    let d = g1
        .push(
            "gp.minus_one",
            Op::Unary(Unary::Affine {
                scale: 1.0,
                shift: -1.0,
            }),
            vec![norm],
        )
        .unwrap();
    let gp = g1.push("gp", Op::Unary(Unary::Square), vec![d]).unwrap();
    let l = g1
        .push("loss", Op::Binary(Binary::Add), vec![mean, gp])
        .unwrap();
    let l = g1
        .push(
            "loss.flat",
            Op::Reshape(Reshape { shape: vec![1] }),
            vec![l],
        )
        .unwrap();
    let wrt: Vec<NodeId> = [
        "conv1.weight",
        "conv1.bias",
        "layer2.conv.weight",
        "layer3.conv.bias",
        "layer4.conv.weight",
        "score.weight",
        "score.bias",
    ]
    .iter()
    .map(|n| g1.find(n).unwrap_or_else(|| panic!("no node {n}")))
    .collect();
    check(&g1, &c.feeds, l, &wrt, Some(5));
}
