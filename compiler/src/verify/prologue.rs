//! (h): the kernels the runtime runs only once (`Plan::prologue`) leave, for every later run,
//! exactly what the first run had: they depend on no input, and what later kernels read of
//! theirs keeps its bytes (alive from the first kernel to the last, so (a) proves that no value,
//! fed or computed, shares them) and is not written again.

use crate::Plan;
use ir::{Graph, ValueKind};

pub(super) fn check(plan: &Plan, graph: &Graph, errs: &mut Vec<String>) {
    let (once, last) = (plan.prologue, plan.kernels.len().saturating_sub(1));
    if once > plan.kernels.len() {
        errs.push(format!(
            "the prologue has {once} kernels, the plan {}",
            plan.kernels.len()
        ));
        return;
    }
    let name = |v: usize| &graph.nodes[v].name;
    let mut early = vec![false; graph.nodes.len()];
    for k in &plan.kernels[..once] {
        for &v in &k.reads {
            let kind = graph.kind(v);
            if kind == ValueKind::Input || (kind == ValueKind::Computed && !early[v]) {
                errs.push(format!(
                    "prologue kernel `{}` reads `{}`, which is not the same on every run",
                    k.name,
                    name(v)
                ));
            }
        }
        for &v in &k.writes {
            match graph.kind(v) {
                ValueKind::Computed => early[v] = true,
                _ => errs.push(format!(
                    "prologue kernel `{}` writes `{}`, which is fed before every run",
                    k.name,
                    name(v)
                )),
            }
        }
    }
    for k in &plan.kernels[once..] {
        for &v in k.writes.iter().filter(|&&v| early[v]) {
            errs.push(format!(
                "kernel `{}` writes `{}`, which the prologue wrote",
                k.name,
                name(v)
            ));
        }
        for &v in k.reads.iter().filter(|&&v| early[v]) {
            if plan.values[v].live != (0, last) {
                errs.push(format!(
                    "kernel `{}` reads `{}` of the prologue, alive only {:?} of 0..{last}",
                    k.name,
                    name(v),
                    plan.values[v].live
                ));
            }
        }
    }
}

/// (i): the kernels before `Plan::split` read none of the plan's late sources (what they read
/// of computed values is written by kernels before them, which (c) proves).
pub(super) fn check_split(plan: &Plan, graph: &Graph, errs: &mut Vec<String>) {
    if plan.split < plan.prologue || plan.split > plan.kernels.len() {
        errs.push(format!(
            "the first phase ends at kernel {}, outside {}..={}",
            plan.split,
            plan.prologue,
            plan.kernels.len()
        ));
        return;
    }
    for k in &plan.kernels[..plan.split] {
        for v in k.reads.iter().filter(|v| plan.late.contains(v)) {
            errs.push(format!(
                "kernel `{}` of the first phase reads `{}`, which may change before the second",
                k.name, graph.nodes[*v].name
            ));
        }
    }
}
