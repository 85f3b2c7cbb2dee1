//! An instance norm's gradient takes two plane means of the same planes, mean(g) and
//! mean(g * y) (`InstanceNorm::vjp`). Each would be a reduction kernel of its own; this pass
//! makes the pair one `PlaneMeans(g, g * y)`, read back by two `PlaneStat`s, so one kernel loads
//! g once for both. Runs after lowering (no VJP needed); the values and their names stay.

use ir::ops::{Binary, PlaneMeans, PlaneStat, Reduce, ReduceKind};
use ir::{Graph, Node, NodeId, Op};

/// `graph` with each such pair of plane means computed together, and how many pairs were.
pub fn pair(graph: &Graph) -> (Graph, usize) {
    let pairs = find_pairs(graph);
    if pairs.is_empty() {
        return (graph.clone(), 0);
    }
    // Each pair is computed where its later mean was: `later[l] = Some(earlier)`.
    let mut later = vec![None; graph.nodes.len()];
    let mut deferred = vec![false; graph.nodes.len()];
    for &(e, l) in &pairs {
        later[l] = Some(e);
        deferred[e] = true;
    }
    let out = crate::rewrite::rewrite(graph, |out, new_id, i, node| {
        if deferred[i] {
            return;
        }
        let Some(e) = later[i] else {
            new_id[i] = crate::rewrite::push(out, node);
            return;
        };
        let (a, b) = (graph.nodes[e].inputs[0], graph.nodes[i].inputs[0]);
        let [n, c, _, _] = ir::shape4(&graph.nodes[a].shape);
        out.nodes.push(Node {
            name: format!("{}.pair", node.name),
            op: Op::PlaneMeans(PlaneMeans),
            inputs: vec![new_id[a], new_id[b]],
            shape: vec![n, c, 1, 2],
        });
        let means = out.nodes.len() - 1;
        for (index, m) in [(0, e), (1, i)] {
            let mean = &graph.nodes[m];
            new_id[m] = out.nodes.len();
            out.nodes.push(Node {
                name: mean.name.clone(),
                op: Op::PlaneStat(PlaneStat { index }),
                inputs: vec![means],
                shape: mean.shape.clone(),
            });
        }
    });

    (out, pairs.len())
}

/// (earlier, later) plane means `Mean(g)` and `Mean(g * y)` (either order of the product) that
/// can be computed at the later one's place: nothing reads the earlier one before it, and the
/// later one does not depend on the earlier one.
fn find_pairs(g: &Graph) -> Vec<(NodeId, NodeId)> {
    let plane_mean = |v: NodeId| {
        let n = &g.nodes[v];
        let mean =
            matches!(&n.op, Op::Reduce(Reduce { kind: ReduceKind::Mean, axes }) if axes == &[2, 3]);
        (mean && n.inputs.len() == 1 && g.nodes[n.inputs[0]].shape.len() == 4).then(|| n.inputs[0])
    };
    let consumers = g.consumers();
    let mut taken = vec![false; g.nodes.len()];
    let mut pairs = Vec::new();
    for m2 in 0..g.nodes.len() {
        let Some(gy) = plane_mean(m2) else { continue };
        let Op::Binary(Binary::Mul) = g.nodes[gy].op else {
            continue;
        };
        let &[p, q] = g.nodes[gy].inputs.as_slice() else {
            continue;
        };
        let partner = (0..g.nodes.len()).find(|&m1| {
            m1 != m2
                && !taken[m1]
                && plane_mean(m1)
                    .is_some_and(|x| (x == p || x == q) && g.nodes[x].shape == g.nodes[gy].shape)
        });
        let Some(m1) = partner else { continue };
        let (e, l) = (m1.min(m2), m1.max(m2));
        let read_early = consumers[e].iter().any(|&u| u < l);
        if taken[m2] || read_early || depends(g, l, e) {
            continue;
        }
        taken[m1] = true;
        taken[m2] = true;
        pairs.push((e, l));
    }
    pairs
}

/// Whether `a` reads `b`, directly or through other nodes (node order is topological).
fn depends(g: &Graph, a: NodeId, b: NodeId) -> bool {
    let mut seen = vec![false; g.nodes.len()];
    let mut stack = vec![a];
    while let Some(v) = stack.pop() {
        for &i in &g.nodes[v].inputs {
            if i == b {
                return true;
            }
            if i > b && !std::mem::replace(&mut seen[i], true) {
                stack.push(i);
            }
        }
    }
    false
}
