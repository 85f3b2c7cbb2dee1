//! What the autodiff tests share: seeded random graphs and feeds, and the check of a gradient
//! against central finite differences of the f64 CPU reference.
#![allow(dead_code)]

use compiler::autodiff::{grad, sum_to_scalar};
use ir::ops::*;
use ir::{cpu, Graph, Node, NodeId, Op, Tensor};
use std::collections::HashMap;

/// A small deterministic generator (the compiler crate has no rand dependency).
pub struct Rng(u64);
impl Rng {
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (hi - lo) * ((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }
    pub fn tensor(&mut self, shape: &[usize], lo: f64, hi: f64) -> Tensor<f64> {
        let n = ir::numel(shape);
        Tensor::new(shape, (0..n).map(|_| self.uniform(lo, hi)).collect())
    }
}

/// A graph under construction with its random feeds.
pub struct Case {
    pub g: Graph,
    pub feeds: HashMap<String, Tensor<f64>>,
    pub rng: Rng,
}

impl Case {
    pub fn new(seed: u64) -> Case {
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
    pub fn input(&mut self, name: &str, shape: &[usize], lo: f64, hi: f64) -> NodeId {
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
    pub fn x(&mut self, name: &str, shape: &[usize]) -> NodeId {
        self.input(name, shape, -1.0, 1.0)
    }
    pub fn op(&mut self, op: Op, inputs: Vec<NodeId>) -> NodeId {
        let name = format!("n{}", self.g.nodes.len());
        self.g.push(name, op, inputs).unwrap()
    }
    pub fn un(&mut self, u: Unary, x: NodeId) -> NodeId {
        self.op(Op::Unary(u), vec![x])
    }
    pub fn bin(&mut self, b: Binary, x: NodeId, y: NodeId) -> NodeId {
        self.op(Op::Binary(b), vec![x, y])
    }
    /// sum(out * R) with a fixed random R, a scalar that weighs every output element differently.
    pub fn loss(&mut self, out: NodeId) -> NodeId {
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
pub fn key(g: &Graph, id: NodeId) -> String {
    match &g.nodes[id].op {
        Op::Input { name } => name.clone(),
        _ => g.nodes[id].name.clone(),
    }
}

pub fn eval(g: &Graph, feeds: &HashMap<String, Tensor<f64>>, id: NodeId) -> Tensor<f64> {
    cpu::evaluate::<f64>(g, feeds).unwrap().swap_remove(id)
}

/// d f / d wrt by autodiff against central differences of `f` in `g`, on the elements `pick`
/// chooses (all when None).
pub fn check(
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
pub fn first_order(case: Case, op: Op, inputs: Vec<NodeId>) {
    let mut case = case;
    let out = case.op(op, inputs.clone());
    let f = case.loss(out);
    check(&case.g, &case.feeds, f, &inputs, None);
}
