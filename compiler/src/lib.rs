//! irdc's compiler: passes from a [`ir::Graph`] to a [`Plan`] of kernels over planned memory.
//!
//! simplify -> recompute (training graphs) -> the graph passes of `pipeline.rs` (split norms
//! over concats, Winograd, lower norms, pair plane means; each named, each with its condition)
//! -> fuse -> schedule -> plan memory -> generate WGSL. Each pass is a small function in its
//! own file; the `Plan` they produce is plain data (see `plan.rs`), checked by `verify/` and
//! shown by `print.rs`.

pub mod autodiff;
pub mod channelwise;
pub mod codegen;
pub mod cost;
pub mod differentiate;
pub mod fold;
pub mod fuse;
pub mod invariance;
pub mod lower;
pub mod memory;
pub mod merge;
pub mod pipeline;
pub mod plan;
pub mod plane_apply;
pub mod plane_means;
pub mod print;
pub mod prologue;
pub mod recompute;
pub mod rewrite;
pub mod schedule;
pub mod simplify;
pub mod stream;
pub mod target;
pub mod verify;
pub mod winograd;

pub use plan::*;
pub use target::{DeviceKind, Limits, Overrides, Policy, Sizes, Target};

use ir::Graph;

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A value cannot be placed: too large for one binding and not splittable, say.
    #[error("memory plan: {0}")]
    Memory(String),
    /// A kernel could not be generated for a node.
    #[error("code generation for `{node}`: {message}")]
    Codegen { node: String, message: String },
    /// A gradient could not be built (a non-scalar loss, an op without a derivative).
    #[error("autodiff at `{node}`: {message}")]
    Autodiff { node: String, message: String },
    /// Options that name something the compiler does not have (a pass, say).
    #[error("{0}")]
    Options(String),
}

/// How to compile. `Options::default()` is what [`compile`] does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Recompute cheap forward values in the backward pass when that lowers the peak
    /// (`recompute.rs`); off, every forward value backward reads is kept from the forward pass.
    pub recompute: bool,
    /// Fuse kernels (`fuse.rs`): elementwise work computed inside the kernels that read it,
    /// and convolutions' consumers in their stores; off, one kernel per node of the graph the
    /// passes made. Nothing else.
    pub fuse: bool,
    /// Graph passes (`pipeline::PASSES`, by name) not to run.
    pub without: std::collections::BTreeSet<String>,
    /// Parameters (node names) whose values the caller never changes from one run to the next
    /// without telling the executable: what is computed from them alone runs once
    /// (`prologue.rs`).
    pub frozen: std::collections::BTreeSet<String>,
    /// Sources (inputs by name, parameters by node name) the caller may change between the
    /// plan's two phases: the kernels that read none of them, directly or not, come first
    /// (`Plan::split`, `prologue.rs`). Empty: one phase.
    pub late: std::collections::BTreeSet<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            recompute: true,
            fuse: true,
            without: Default::default(),
            frozen: Default::default(),
            late: Default::default(),
        }
    }
}

/// Compile a graph (forward, or with a backward part from `autodiff::grad`) for `target`. Returns
/// the plan and the graph it refers to (simplified, with recomputed values added): the plan's
/// node ids (values, kernels' reads and writes, outputs) index that graph, not `graph`.
pub fn compile(graph: &Graph, target: &Target) -> Result<(Plan, Graph), CompileError> {
    compile_with(graph, target, &Options::default())
}

/// [`compile`] with `options`.
pub fn compile_with(
    graph: &Graph,
    target: &Target,
    options: &Options,
) -> Result<(Plan, Graph), CompileError> {
    let graph = simplify::simplify(graph);
    let back = recompute::backward(&graph);
    let training = back.iter().any(|&b| b);
    let peak = |g: &Graph, keep: &[bool]| {
        let slices = memory::in_place(g);
        memory::peak_bytes(g, &schedule::schedule(g, &slices), &slices, target, keep)
    };
    let mut forward_kept_bytes = 0;
    let (graph, recomputed) = if training {
        let forward: Vec<bool> = (0..graph.nodes.len())
            .map(|v| !back[v] && graph.kind(v) == ir::ValueKind::Computed)
            .collect();
        forward_kept_bytes = peak(&graph, &forward)?;
        let (redone, count) = recompute::recompute(&graph);
        // Keep the recomputation only where it lowers the peak (planning is cheap).
        if options.recompute && count > 0 && peak(&redone, &[])? < peak(&graph, &[])? {
            (redone, count)
        } else {
            (graph, 0)
        }
    } else {
        (graph, 0)
    };
    let context = pipeline::Context { target, training };
    let (graph, passes) = pipeline::run(graph, &context, &options.without)?;
    let slices = memory::in_place(&graph);
    let fusion = match options.fuse {
        true => fuse::fuse(&graph, &slices, target),
        false => fuse::Fusion::none(&graph),
    };
    let steps = fuse::schedule(&schedule::schedule(&graph, &slices), &fusion);
    let invariant = prologue::invariant(&graph, &options.frozen);
    let stay = prologue::Regions::Stay;
    let (steps, once) = prologue::hoist(&graph, steps, &fusion, &slices, (&invariant, stay));
    // The prologue's steps read no late source either (frozen parameters are not late), so they
    // stay first.
    let early = prologue::independent_of(&graph, &options.late);
    let together = prologue::Regions::Together;
    let (steps, first) = match options.late.is_empty() {
        true => (steps.clone(), steps.len()),
        false => prologue::hoist(&graph, steps, &fusion, &slices, (&early, together)),
    };
    let groups = match options.fuse && target.policy.merge_kernels {
        true => {
            let max_work = match target.sizes {
                Sizes::Specialised => merge::MAX_WORK,
                Sizes::Data => u64::MAX,
            };
            merge::group(&graph, steps, (&fusion, &slices), &[once, first], max_work)
        }
        false => merge::Groups::single(steps),
    };
    let steps = &groups.steps;
    let persistent = prologue::persistent(&graph, steps, once, &fusion);
    let (mut values, mut memory) = memory::plan_fused_memory(
        &graph,
        steps,
        &slices,
        &fusion,
        target,
        &persistent,
        &groups,
    )?;
    memory.recomputed = recomputed;
    memory.forward_kept_bytes = forward_kept_bytes;
    fuse::describe(&graph, &fusion, &mut values);
    let mut kernels = Vec::new();
    let (mut kernel_steps, mut kernel_groups) = (Vec::new(), Vec::new());
    for (s, &t) in groups.time.iter().enumerate() {
        let made = codegen::generate(&graph, &steps[s..=s], &values, &fusion.applies, target)?;
        kernel_steps.extend(made.iter().map(|_| s));
        kernel_groups.extend(made.iter().map(|_| t));
        kernels.extend(made);
    }
    let unmerged_kernels = kernels.len();
    let kernels = merge::merge_kernels(kernels, (&kernel_steps, &kernel_groups), target);
    let at = merge::grouped_at(&graph, steps, &fusion, &groups);
    memory::retime(&mut values, &at, groups.count(), &kernels);
    // Kernels of the first `n` groups: those before the first that writes a later group's value.
    let kernels_of = |n: usize| {
        let before = |w: &ir::NodeId| !at[*w].is_empty() && at[*w].iter().all(|&s| s < n);
        match n {
            0 => 0,
            _ if n == groups.count() => kernels.len(),
            _ => kernels
                .iter()
                .take_while(|k| k.writes.iter().all(before))
                .count(),
        }
    };
    let (prologue, split) = (
        kernels_of(groups.before(once)),
        kernels_of(groups.before(first)),
    );
    let late = (graph.nodes.iter().enumerate())
        .filter(|&(v, _)| graph.kind(v) != ir::ValueKind::Computed && !early[v])
        .map(|(v, _)| v)
        .collect();
    // One kernel per node of the graph the passes made, as `Options::fuse` off gives.
    let unfused_kernels = unmerged_kernels + fusion.kernels_saved();
    let plan = Plan {
        graph: graph.name.clone(),
        target: target.clone(),
        values,
        kernels,
        prologue,
        split,
        late,
        unfused_kernels,
        unmerged_kernels,
        passes,
        memory,
        outputs: graph.outputs.clone(),
        constants: constants(&graph),
    };
    Ok((plan, graph))
}

fn constants(graph: &Graph) -> Vec<(ir::NodeId, Vec<f32>)> {
    let data = |c: &ir::ops::Const| c.values.iter().map(|&v| v as f32).collect();
    (graph.nodes.iter().enumerate())
        .filter_map(|(id, n)| match &n.op {
            ir::Op::Const(c) => Some((id, data(c))),
            _ => None,
        })
        .collect()
}
