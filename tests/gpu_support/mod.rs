//! Shared by the GPU tests: a graph builder, random feeds, and the comparison of a compiled
//! plan run on the device (lavapipe without a GPU) against the CPU reference in f64.

#![allow(dead_code)] // each test binary uses part of it

use compiler::Target;
use ir::{Graph, Node, NodeId, Op, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use runtime::Gpu;
use std::collections::HashMap;

/// The device of this test: one per test thread (libtest gives each test a thread of its own).
/// A device runs its submits one at a time, and lavapipe compiles each kernel in the submit that
/// first runs it, so tests sharing one device compiled one at a time on a machine of several
/// cores. Opening lavapipe takes about 20 ms; each device lives to the end of the binary.
pub fn gpu() -> &'static Gpu {
    thread_local! {
        static GPU: &'static Gpu = Box::leak(Box::new(Gpu::new().unwrap_or_else(|e| panic!("{e}"))));
    }
    GPU.with(|gpu| *gpu)
}

/// A graph under construction; panics on a shape error (the tests build valid graphs).
pub struct G(pub Graph);

impl G {
    pub fn new(name: &str) -> G {
        G(Graph {
            name: name.into(),
            ..Default::default()
        })
    }
    fn source(&mut self, name: &str, op: Op, shape: &[usize]) -> NodeId {
        self.0.nodes.push(Node {
            name: name.into(),
            op,
            inputs: vec![],
            shape: shape.to_vec(),
        });
        self.0.nodes.len() - 1
    }
    pub fn input(&mut self, name: &str, shape: &[usize]) -> NodeId {
        self.source(name, Op::Input { name: name.into() }, shape)
    }
    pub fn param(&mut self, name: &str, shape: &[usize]) -> NodeId {
        self.source(
            name,
            Op::Param {
                init: ir::ops::Init::Normal { std: 0.02 },
            },
            shape,
        )
    }
    pub fn op(&mut self, name: &str, op: Op, inputs: &[NodeId]) -> NodeId {
        self.0
            .push(name, op, inputs.to_vec())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }
    pub fn output(&mut self, id: NodeId) {
        let name = self.0.nodes[id].name.clone();
        self.0.outputs.push((name, id));
    }
}

/// Inputs uniform in [-1, 1]; weights uniform with std 1/sqrt(fan-in), so activations stay of
/// order 1 through deep nets and a wrong kernel shows (the model's own N(0, 0.02) init makes
/// deep outputs nearly constant); biases uniform in [-0.1, 0.1].
pub fn random_feeds(g: &Graph, seed: u64) -> HashMap<String, Tensor<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut feeds = HashMap::new();
    for node in &g.nodes {
        let n = ir::numel(&node.shape);
        let (key, half_width) = match &node.op {
            Op::Input { name } => (name.clone(), 1.0),
            Op::Param { .. } if node.shape.len() >= 2 => {
                let fan_in = (n / node.shape[0]).max(1) as f32;
                (node.name.clone(), (3.0 / fan_in).sqrt())
            }
            Op::Param { .. } => (node.name.clone(), 0.1),
            _ => continue,
        };
        let data = (0..n)
            .map(|_| rng.random_range(-half_width..=half_width))
            .collect();
        feeds.insert(key, Tensor::new(&node.shape, data));
    }
    feeds
}

/// Compile `g` for `target`, run it on the device, and check every graph output against the
/// CPU reference: |gpu - cpu| <= 1e-4 * max(1, |cpu|). Returns the plan and the GPU outputs.
pub fn check_on(
    g: &Graph,
    target: &Target,
    feeds: &HashMap<String, Tensor<f32>>,
) -> (compiler::Plan, Vec<(String, Tensor<f32>)>) {
    check_within(g, target, feeds, 1e-4)
}

/// [`check_on`] with |gpu - cpu| <= `tol` * max(1, |cpu|).
pub fn check_within(
    g: &Graph,
    target: &Target,
    feeds: &HashMap<String, Tensor<f32>>,
    tol: f64,
) -> (compiler::Plan, Vec<(String, Tensor<f32>)>) {
    let f64_feeds: HashMap<String, Tensor<f64>> =
        feeds.iter().map(|(k, v)| (k.clone(), v.cast())).collect();
    let cpu =
        ir::cpu::evaluate::<f64>(g, &f64_feeds).unwrap_or_else(|e| panic!("CPU reference: {e}"));
    let (plan, simplified) =
        compiler::compile(g, target).unwrap_or_else(|e| panic!("compile `{}`: {e}", g.name));
    // The plan refers to the simplified graph: feed what it still has (constants included, in
    // case the plan keeps them in memory rather than inlining them).
    let mut gpu_feeds = HashMap::new();
    for node in &simplified.nodes {
        let key = match &node.op {
            Op::Input { name } => name.clone(),
            Op::Param { .. } => node.name.clone(),
            Op::Const(c) => {
                gpu_feeds.insert(node.name.clone(), c.cpu::<f32>(&[], &c.shape));
                continue;
            }
            _ => continue,
        };
        let t = feeds
            .get(&key)
            .unwrap_or_else(|| panic!("test feeds lack `{key}`"));
        gpu_feeds.insert(key, t.clone());
    }
    let out = runtime::execute(gpu(), &plan, &gpu_feeds)
        .unwrap_or_else(|e| panic!("run `{}`: {e}", g.name));
    assert_eq!(out.len(), g.outputs.len(), "outputs of `{}`", g.name);
    for ((name, gpu_t), (want_name, id)) in out.iter().zip(&g.outputs) {
        assert_eq!(name, want_name);
        assert_within(&format!("{}.{name}", g.name), &gpu_t.data, &cpu[*id], tol);
    }
    (plan, out)
}

pub fn check(
    g: &Graph,
    feeds: &HashMap<String, Tensor<f32>>,
) -> (compiler::Plan, Vec<(String, Tensor<f32>)>) {
    check_on(g, &gpu().target(), feeds)
}

pub fn assert_close(what: &str, gpu: &[f32], cpu: &Tensor<f64>) {
    assert_within(what, gpu, cpu, 1e-4);
}

/// |gpu - cpu| <= `tol` * max(1, |cpu|) for every element.
pub fn assert_within(what: &str, gpu: &[f32], cpu: &Tensor<f64>, tol: f64) {
    assert_eq!(gpu.len(), cpu.data.len(), "{what}: element count");
    let mut worst = (0.0f64, 0usize);
    for (i, (&g, &c)) in gpu.iter().zip(&cpu.data).enumerate() {
        let err = (g as f64 - c).abs() / c.abs().max(1.0);
        // A NaN error is the worst there is.
        if err.is_nan() || err > worst.0 {
            worst = (if err.is_nan() { f64::INFINITY } else { err }, i);
        }
    }
    let (err, i) = worst;
    assert!(
        err <= tol,
        "{what} {:?}: element {i} is {} on the GPU, {} on the CPU (relative error {err:.3e})",
        cpu.shape,
        gpu[i],
        cpu.data[i]
    );
}

/// Standard deviation of a tensor's elements: the tests check that outputs are not near
/// constant, which would let a wrong kernel pass.
pub fn std_dev(t: &Tensor<f32>) -> f64 {
    let n = t.data.len() as f64;
    let mean = t.data.iter().map(|&v| v as f64).sum::<f64>() / n;
    (t.data
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}
