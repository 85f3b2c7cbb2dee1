//! (j): a merged kernel's parts run at the same time, in no order, so each must be independent
//! of the others: no part writes what another part reads or writes. Two values share bytes only
//! inside one region ((a) proves it), so this compares the channels of each region that the
//! parts touch. A part may still read and write the same bytes itself (an accumulation in
//! place), which (f) checks as for any kernel.

use crate::Plan;
use ir::{shape4, Graph, NodeId};

pub(super) fn check(plan: &Plan, graph: &Graph, errs: &mut Vec<String>) {
    // The region a value lies in and its channels there; all of it for a view of another shape.
    let channels = |v: NodeId| {
        let [n, c, h, w] = shape4(&graph.nodes[v].shape);
        match plan.values[v].slice_of {
            None => (v, 0, c),
            Some((r, first)) => match shape4(&graph.nodes[r].shape) {
                [rn, _, rh, rw] if (rn, rh, rw) == (n, h, w) => (r, first, first + c),
                _ => (r, 0, usize::MAX),
            },
        }
    };
    let clash = |a: &[NodeId], b: &[NodeId]| {
        (a.iter()).find_map(|&v| {
            let x = channels(v);
            (b.iter())
                .find(|&&u| {
                    let y = channels(u);
                    x.0 == y.0 && x.1 < y.2 && y.1 < x.2
                })
                .map(|&u| (v, u))
        })
    };
    for k in plan.kernels.iter().filter(|k| !k.parts.is_empty()) {
        for (i, p) in k.parts.iter().enumerate() {
            for (j, q) in k.parts.iter().enumerate() {
                if i == j {
                    continue;
                }
                let found = clash(&p.writes, &q.reads).or_else(|| clash(&p.writes, &q.writes));
                if let Some((v, u)) = found {
                    errs.push(format!(
                        "merged kernel `{}`: part `{}` writes `{}`, and part `{}` uses `{}` in \
                         the same bytes, in the same dispatch",
                        k.name, p.name, graph.nodes[v].name, q.name, graph.nodes[u].name
                    ));
                }
            }
        }
    }
}
