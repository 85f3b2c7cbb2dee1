//! The compiler's graph rewrites as data: a list of named passes, each with the condition under
//! which it runs for a graph and a target. [`crate::compile_with`] runs them in order, then
//! kernel fusion (`Options::fuse`), scheduling, the memory plan and code generation. A pass can
//! be left out by name (`Options::without`, `irdc plan --without NAME`), to see or measure what
//! it does; every pass keeps the graph's meaning, so the plan checker and the tests hold either
//! way.

use crate::{channelwise, lower, plane_means, simplify, winograd, CompileError, Target};
use ir::Graph;

/// What a pass's condition may look at.
pub struct Context<'a> {
    pub target: &'a Target,
    /// The graph has a backward part (`recompute::backward`).
    pub training: bool,
}

/// One graph-to-graph pass.
pub struct Pass {
    pub name: &'static str,
    /// What it does, in a line (for `irdc plan --without`'s error).
    pub about: &'static str,
    pub applies: fn(&Context) -> bool,
    pub run: fn(&Graph, &Context) -> Graph,
}

/// The passes after simplification and recomputation, in order.
pub const PASSES: &[Pass] = &[
    Pass {
        name: "split-norms-over-concats",
        about: "norms and activations over dense concats split by part, where a conv's loads do \
                not compute them (forward graphs)",
        applies: |c| !c.training && c.target.policy.max_ops_in_conv_loads < 2,
        run: |g, _| simplify::simplify(&channelwise::split_over_concats(g).0),
    },
    Pass {
        name: "winograd",
        about: "3x3 convs (and their input gradients) as Winograd products",
        applies: |c| c.target.policy.winograd_tile > 0,
        run: |g, c| {
            let max_bytes = winograd::MAX_TRANSFORMED_BINDINGS * c.target.limits.max_binding_bytes;
            winograd::rewrite(g, c.target.policy.winograd_tile, max_bytes).0
        },
    },
    Pass {
        name: "lower-instance-norms",
        about: "each instance norm as its statistics and an elementwise normalisation",
        applies: |_| true,
        run: |g, _| lower::instance_norms(g).0,
    },
    Pass {
        name: "pair-plane-means",
        about: "plane means of the same input computed by one reduction",
        applies: |_| true,
        run: |g, _| plane_means::pair(g).0,
    },
];

/// Run the passes of [`PASSES`] that apply and are not in `without`; returns the graph and the
/// names of the passes that ran.
pub fn run(
    graph: Graph,
    context: &Context,
    without: &std::collections::BTreeSet<String>,
) -> Result<(Graph, Vec<&'static str>), CompileError> {
    if let Some(unknown) = without.iter().find(|w| PASSES.iter().all(|p| p.name != *w)) {
        let known: Vec<String> = PASSES
            .iter()
            .map(|p| format!("{} ({})", p.name, p.about))
            .collect();
        return Err(CompileError::Options(format!(
            "no pass named `{unknown}`; the passes: {}",
            known.join("; ")
        )));
    }
    let mut ran = Vec::new();
    let mut graph = graph;
    for pass in PASSES {
        if (pass.applies)(context) && !without.contains(pass.name) {
            graph = (pass.run)(&graph, context);
            ran.push(pass.name);
        }
    }
    Ok((graph, ran))
}
