//! irdc's compiler: passes from a [`ir::Graph`] to a [`Plan`] of kernels over planned memory.
//!
//! simplify -> schedule -> plan memory -> generate WGSL. Each pass is a small function in its
//! own file; the `Plan` they produce is plain data (see `plan.rs`), checked by `verify.rs` and
//! shown by `print.rs`.

pub mod codegen;
pub mod memory;
pub mod plan;
pub mod print;
pub mod schedule;
pub mod simplify;
pub mod verify;

pub use plan::*;

use ir::Graph;

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A value cannot be placed: too large for one binding and not splittable, say.
    #[error("memory plan: {0}")]
    Memory(String),
    /// A kernel could not be generated for a node.
    #[error("code generation for `{node}`: {message}")]
    Codegen { node: String, message: String },
}

/// Compile a forward graph for `target`. Returns the plan and the simplified graph it refers to:
/// the plan's node ids (values, kernels' reads and writes, outputs) index that graph, not `graph`.
pub fn compile(graph: &Graph, target: &Target) -> Result<(Plan, Graph), CompileError> {
    let graph = simplify::simplify(graph);
    let slices = memory::concat_slices(&graph);
    let steps = schedule::schedule(&graph, &slices);
    let (mut values, memory) = memory::plan_memory(&graph, &steps, &slices, target)?;
    let kernels = codegen::generate(&graph, &steps, &values, target)?;
    memory::retime(&mut values, &steps, &kernels);
    let plan = Plan {
        graph: graph.name.clone(),
        target: target.clone(),
        values,
        kernels,
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
