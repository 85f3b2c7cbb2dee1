//! One compiled graph of the training step, tied to the trainer's parameter sets: which of its
//! parameters come from which set, where its gradients go, its inputs and its loss outputs.

use super::exchange::Exchange;
use super::params::{copy_in, copy_out, ParamSet, Tie};
use super::TrainError;
use crate::device::Gpu;
use crate::exec::Executable;
use crate::pipeline_cache::PipelineCache;
use ir::front::TrainingSpec;
use ir::{Graph, NodeId, Op};
use std::cell::OnceCell;
use std::collections::HashMap;

/// Scalar nodes of the loss graphs worth a column in the metrics (when a graph has them).
pub const PARTS: [&str; 6] = ["wasserstein", "gp", "adversarial", "perceptual", "l1", "l2"];

/// A network's parameter set and the prefix its parameters carry in the loss graphs
/// (`critic.`); the frozen set (VGG19) has an empty prefix and full names.
pub struct Net {
    pub prefix: String,
    pub set: ParamSet,
}

pub struct Bound {
    pub name: String,
    pub exe: Executable,
    /// Per net (in the trainer's order), the parameters this graph reads.
    params: Vec<Vec<Tie>>,
    /// Gradients of the trained net's parameters, into its gradient buffer.
    grads: Vec<Tie>,
    pub inputs: HashMap<String, NodeId>,
    pub outputs: HashMap<String, NodeId>,
    /// Its gradients' buckets in a data-parallel run, made on first use.
    exchange: OnceCell<Exchange>,
}

impl Bound {
    /// Compile `graph` and tie it to `nets`. `raw_prefix` is put before the graph's own parameter
    /// names (the standalone generator graph names them without `generator.`). With `trained`,
    /// gradient outputs `grad.<param>` of that net are tied to its gradient buffer. `options`:
    /// as [`step_options`] gives them for a loss graph, the defaults for a forward graph.
    pub fn new(
        gpu: &Gpu,
        cache: &mut PipelineCache,
        graph: &Graph,
        nets: &[Net],
        (raw_prefix, trained): (&str, Option<usize>),
        options: &compiler::Options,
    ) -> Result<Bound, TrainError> {
        let (plan, pg) = compiler::compile_with(graph, &gpu.target(), options)?;
        let exe = Executable::with_cache(gpu, &plan, cache)?;
        let mut params = vec![Vec::new(); nets.len()];
        let mut inputs = HashMap::new();
        for (id, node) in pg.nodes.iter().enumerate() {
            match &node.op {
                Op::Input { name } => {
                    inputs.insert(name.clone(), id);
                }
                Op::Param { .. } => {
                    let full = format!("{raw_prefix}{}", node.name);
                    let found = nets.iter().enumerate().find_map(|(i, n)| {
                        let rest = full.strip_prefix(&n.prefix)?;
                        n.set.find(rest).map(|e| (i, e.at))
                    });
                    let Some((net, at)) = found else {
                        return Err(TrainError::Setup(format!(
                            "graph {}: parameter `{full}` belongs to no network of the trainer",
                            graph.name
                        )));
                    };
                    params[net].push(Tie { at, node: id });
                }
                _ => {}
            }
        }
        let outputs: HashMap<String, NodeId> = plan.outputs.iter().cloned().collect();
        let mut grads = Vec::new();
        if let Some(t) = trained {
            for e in &nets[t].set.entries {
                let name = format!("grad.{}{}", nets[t].prefix, e.name);
                // A parameter the loss never reads keeps a zero gradient.
                if let Some(&node) = outputs.get(&name) {
                    grads.push(Tie { at: e.at, node });
                }
            }
        }
        Ok(Bound {
            name: graph.name.clone(),
            exe,
            params,
            grads,
            inputs,
            outputs,
            exchange: OnceCell::new(),
        })
    }

    /// Record copies of every net's current parameters into this graph.
    pub fn feed_params(
        &self,
        enc: &mut wgpu::CommandEncoder,
        nets: &[Net],
    ) -> Result<(), TrainError> {
        self.feed_params_with(enc, nets, None)
    }

    /// [`Bound::feed_params`], with net `replaced.0`'s parameters taken from the buffer
    /// `replaced.1` of the same layout (its moving average) instead.
    pub fn feed_params_with(
        &self,
        enc: &mut wgpu::CommandEncoder,
        nets: &[Net],
        replaced: Option<(usize, &wgpu::Buffer)>,
    ) -> Result<(), TrainError> {
        for (i, (net, ties)) in nets.iter().zip(&self.params).enumerate() {
            let flat = match replaced {
                Some((r, buf)) if r == i => buf,
                _ => &net.set.p,
            };
            copy_in(enc, &self.exe, flat, ties)?;
        }
        Ok(())
    }

    /// Record copies of the gradients into the trained net's gradient buffer.
    pub fn take_grads(&self, enc: &mut wgpu::CommandEncoder, net: &Net) -> Result<(), TrainError> {
        let g = net.set.opt.as_ref().map(|o| &o.g).ok_or_else(|| {
            TrainError::Setup("the trained network has no gradient buffer".into())
        })?;
        copy_out(enc, &self.exe, g, &self.grads)?;
        Ok(())
    }

    /// The buckets (of about `bucket_bytes`) its gradients are exchanged in.
    pub fn exchange(&self, gpu: &Gpu, bucket_bytes: u64) -> Result<&Exchange, TrainError> {
        if let Some(made) = self.exchange.get() {
            return Ok(made);
        }
        let made = Exchange::new(gpu, &self.exe, &self.grads, bucket_bytes)?;
        Ok(self.exchange.get_or_init(|| made))
    }

    /// Write an input by name (a value the compiler dropped needs no data).
    pub fn write(&self, name: &str, data: &[f32]) -> Result<(), TrainError> {
        let node = self.input(name)?;
        if self.exe.value(node)?.pieces.is_empty() {
            return Ok(());
        }
        Ok(self.exe.write(node, data)?)
    }

    pub fn input(&self, name: &str) -> Result<NodeId, TrainError> {
        self.inputs.get(name).copied().ok_or_else(|| {
            let mut have: Vec<&str> = self.inputs.keys().map(String::as_str).collect();
            have.sort();
            TrainError::Setup(format!(
                "graph `{}` has no input `{name}`; its inputs: {}",
                self.name,
                have.join(", ")
            ))
        })
    }

    pub fn output(&self, name: &str) -> Result<NodeId, TrainError> {
        self.outputs.get(name).copied().ok_or_else(|| {
            TrainError::Setup(format!("graph `{}` has no output `{name}`", self.name))
        })
    }
}

/// How the trainer compiles the step of a loss graph of `spec`: what its frozen parameters alone
/// give runs once (`compiler::Options::frozen`); and in the generator's step (`late`), the
/// critic's parameters are late sources, so that G(blurred) and everything else the critic's
/// updates cannot change is computed in a first phase, before them (`reuse.rs`).
pub fn step_options(spec: &TrainingSpec, graph: &Graph, late: bool) -> compiler::Options {
    let critic = spec.critic.as_ref().map(|c| format!("{c}."));
    let late = match (late, critic) {
        (true, Some(cp)) => (graph.params())
            .filter(|(_, n)| n.name.starts_with(&cp))
            .map(|(_, n)| n.name.clone())
            .collect(),
        _ => Default::default(),
    };
    compiler::Options {
        frozen: spec.frozen_params(graph),
        late,
        ..Default::default()
    }
}

/// `graph` with the loss parts of [`PARTS`] it has as extra outputs, and, for `prefix`, the
/// gradient of its output `loss` w.r.t. every parameter whose name starts with `prefix`.
pub fn loss_graph(graph: &Graph, prefix: &str) -> Result<Graph, TrainError> {
    // A term weighted 0 (`--set per_weight=0`) is dropped before differentiation, with the
    // networks only it used (VGG19): neither its forward nor its backward pass runs.
    let (mut g, _) = compiler::fold::zero_weighted_terms(graph);
    let Some(&(_, loss)) = g.outputs.iter().find(|(n, _)| n == "loss") else {
        return Err(TrainError::Setup(format!(
            "loss graph {} has no output named `loss`",
            graph.name
        )));
    };
    let wrt: Vec<NodeId> = g
        .params()
        .filter(|(_, n)| n.name.starts_with(prefix))
        .map(|(i, _)| i)
        .collect();
    let has_params = !wrt.is_empty();
    // A bias right before an instance norm changes no loss: its gradient stays 0 without a
    // reduction per step (its `grad.` output is absent, so its gradient buffer is never written).
    let wrt = compiler::invariance::dependent(&g, loss, &wrt);
    if !has_params {
        return Err(TrainError::Setup(format!(
            "loss graph {} has no parameters named `{prefix}*` to train",
            graph.name
        )));
    }
    for part in PARTS {
        if let Some(id) = g.find(part) {
            if ir::numel(&g.nodes[id].shape) == 1 {
                g.outputs.push((part.to_string(), id));
            }
        }
    }
    let (g, _) = compiler::autodiff::grad(&g, loss, &wrt)?;
    Ok(g)
}
