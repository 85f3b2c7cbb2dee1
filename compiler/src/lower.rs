//! Lowering before fusion: `InstanceNorm(x)` becomes `InstanceNormStats(x)` (a small reduction,
//! `<name>.stats`, [N, C, 1, 2]; one per x and eps) and `InstanceNormApply(x, stats)` (elementwise, keeping the
//! node's name), so that the normalisation, like any elementwise op, can be computed inside the
//! kernels that read it (`fuse.rs`). Runs after autodiff and recomputation: no VJP needed.
//!
//! A backward pass computes the plane mean and 1 / sqrt(var + eps) of the same x again
//! (`InstanceNorm::vjp`, written in IR ops so it can be differentiated twice); where a norm's
//! stats of that x are already computed, those two become `PlaneStat` reads of them,
//! which saves two reductions per norm and step.

use ir::ops::{Binary, InstanceNormApply, InstanceNormStats, PlaneStat, Reduce, ReduceKind, Unary};
use ir::{Graph, Node, NodeId, Op};

/// `graph` with every InstanceNorm split in two, and how many were. Node ids change; names of
/// existing nodes and the outputs do not.
pub fn instance_norms(graph: &Graph) -> (Graph, usize) {
    let mut count = 0;
    // (x, eps) -> the stats node of a norm over x, in `out`'s ids.
    let mut stats_of: Vec<(NodeId, f64, NodeId)> = Vec::new();
    let mut reused = 0;
    let mut out = crate::rewrite::rewrite(graph, |out, new_id, i, mut node| {
        if let Some((x, eps)) = plane_stat_of(graph, i) {
            let x = new_id[x];
            let found = stats_of
                .iter()
                .find(|&&(sx, se, _)| sx == x && eps.is_none_or(|e| e == se));
            if let Some(&(_, _, stats)) = found {
                node.op = Op::PlaneStat(PlaneStat {
                    index: usize::from(eps.is_some()),
                });
                node.inputs = vec![stats];
                reused += 1;
            }
        }
        if let Op::InstanceNorm(o) = &node.op {
            let x = node.inputs[0];
            // A norm recomputed for the backward pass keeps the forward's stats: [N, C, 1, 2]
            // costs no memory worth a reduction.
            let known = stats_of.iter().find(|&&(sx, se, _)| sx == x && se == o.eps);
            let stats = match known {
                Some(&(_, _, stats)) => stats,
                None => {
                    let [n, c, _, _] = ir::shape4(&node.shape);
                    out.nodes.push(Node {
                        name: format!("{}.stats", node.name),
                        op: Op::InstanceNormStats(InstanceNormStats { eps: o.eps }),
                        inputs: node.inputs.clone(),
                        shape: vec![n, c, 1, 2],
                    });
                    stats_of.push((x, o.eps, out.nodes.len() - 1));
                    out.nodes.len() - 1
                }
            };
            node.inputs.push(stats);
            node.op = Op::InstanceNormApply(InstanceNormApply);
            count += 1;
        }
        new_id[i] = crate::rewrite::push(out, node);
    });
    if reused > 0 {
        // The variance's reduction and the rest of what the stats replaced are dead now.
        out = crate::simplify::simplify(&out);
    }
    (out, count)
}

/// `v` as a plane statistic of some x: `Mean over (H, W) of x` is `(x, None)`, and
/// `1 / sqrt(mean over (H, W) of (x - that mean)^2 + eps)` is `(x, Some(eps))`.
fn plane_stat_of(g: &Graph, v: NodeId) -> Option<(NodeId, Option<f64>)> {
    let node = &g.nodes[v];
    let only = |v: NodeId, op: &dyn Fn(&Op) -> bool| {
        let n = &g.nodes[v];
        (op(&n.op) && n.inputs.len() == 1).then(|| n.inputs[0])
    };
    let plane_mean = |v: NodeId| {
        only(v, &|op| {
            matches!(op, Op::Reduce(Reduce { kind: ReduceKind::Mean, axes }) if axes == &[2, 3])
        })
        .filter(|&x| g.nodes[x].shape.len() == 4)
    };
    if let Some(x) = plane_mean(v) {
        return Some((x, None));
    }
    if !matches!(node.op, Op::Unary(Unary::Recip)) {
        return None;
    }
    // Each step walks from a node to its one input: recip -> sqrt -> + eps -> mean -> square.
    let sqrt = only(v, &|op| matches!(op, Op::Unary(Unary::Recip)))?;
    let plus_eps = only(sqrt, &|op| matches!(op, Op::Unary(Unary::Sqrt)))?;
    let eps = match g.nodes[plus_eps].op {
        Op::Unary(Unary::Affine { scale: 1.0, shift }) => shift,
        _ => return None,
    };
    let var = only(plus_eps, &|op| {
        matches!(op, Op::Unary(Unary::Affine { .. }))
    })?;
    let square = plane_mean(var)?;
    let centered = only(square, &|op| matches!(op, Op::Unary(Unary::Square)))?;
    let c = &g.nodes[centered];
    let &[x, m] = c.inputs.as_slice() else {
        return None;
    };
    (matches!(c.op, Op::Binary(Binary::Sub)) && plane_mean(m) == Some(x)).then_some((x, Some(eps)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ir::ops::InstanceNorm;
    use ir::Tensor;
    use std::collections::HashMap;

    /// loss = sum(InstanceNorm(x) * w), differentiated w.r.t. x: the norm's VJP recomputes the
    /// plane mean and rstd of x, which lowering reads from the stats instead.
    fn norm_and_its_gradient() -> (Graph, HashMap<String, Tensor<f64>>) {
        let mut g = Graph::default();
        let shape = vec![2, 3, 4, 5];
        for name in ["x", "w"] {
            g.nodes.push(Node {
                name: name.into(),
                op: Op::Input { name: name.into() },
                inputs: vec![],
                shape: shape.clone(),
            });
        }
        let (x, w) = (0, 1);
        let y = g
            .push("y", Op::InstanceNorm(InstanceNorm { eps: 1e-3 }), vec![x])
            .unwrap();
        let yw = g.push("yw", Op::Binary(Binary::Mul), vec![y, w]).unwrap();
        let sum = Op::Reduce(Reduce {
            kind: ReduceKind::Sum,
            axes: vec![],
        });
        let loss = g.push("loss", sum, vec![yw]).unwrap();
        g.outputs.push(("loss".into(), loss));
        let (g, grads) = crate::autodiff::grad(&g, loss, &[x]).unwrap();
        let mut g = g;
        g.outputs.push(("gx".into(), grads[0]));
        let data = |k: usize| {
            (0..120)
                .map(|i| ((i * k % 17) as f64 - 8.0) / 3.0)
                .collect()
        };
        let feeds = HashMap::from([
            ("x".to_string(), Tensor::new(&shape, data(7))),
            ("w".to_string(), Tensor::new(&shape, data(5))),
        ]);
        (g, feeds)
    }

    fn outputs(g: &Graph, feeds: &HashMap<String, Tensor<f64>>) -> Vec<Vec<f64>> {
        let values = ir::cpu::evaluate(g, feeds).unwrap();
        g.outputs
            .iter()
            .map(|&(_, o)| values[o].data.clone())
            .collect()
    }

    #[test]
    fn a_gradients_plane_statistics_are_read_from_the_norms_stats() {
        let (g, feeds) = norm_and_its_gradient();
        let (lowered, count) = instance_norms(&g);
        assert_eq!(count, 1);
        let ops = |op: fn(&Op) -> bool| lowered.nodes.iter().filter(|n| op(&n.op)).count();
        // The rstd; the mean fed only the variance, which is gone with it.
        let rstd = |op: &Op| matches!(op, Op::PlaneStat(PlaneStat { index: 1 }));
        assert_eq!(ops(|op| matches!(op, Op::PlaneStat(_))), 1);
        assert_eq!(ops(rstd), 1);
        assert_eq!(ops(|op| matches!(op, Op::InstanceNormStats(_))), 1);
        // What remains reduced is the gradient's own: mean(g), mean(g * y) and the loss.
        assert_eq!(ops(|op| matches!(op, Op::Reduce(_))), 3);
        let (want, got) = (outputs(&g, &feeds), outputs(&lowered, &feeds));
        for (w, v) in want.iter().flatten().zip(got.iter().flatten()) {
            assert!((w - v).abs() < 1e-12, "{w} vs {v}");
        }
    }

    #[test]
    fn another_eps_keeps_its_own_variance() {
        let (mut g, feeds) = norm_and_its_gradient();
        for node in g.nodes.iter_mut() {
            if let Op::InstanceNorm(o) = &mut node.op {
                o.eps = 0.5;
            }
        }
        let (lowered, _) = instance_norms(&g);
        let stats = |g: &Graph| {
            (g.nodes.iter())
                .filter(|n| matches!(n.op, Op::PlaneStat(PlaneStat { index: 1 })))
                .count()
        };
        assert_eq!(stats(&lowered), 0);
        let (want, got) = (outputs(&g, &feeds), outputs(&lowered, &feeds));
        for (w, v) in want.iter().flatten().zip(got.iter().flatten()) {
            assert!((w - v).abs() < 1e-12, "{w} vs {v}");
        }
    }
}
