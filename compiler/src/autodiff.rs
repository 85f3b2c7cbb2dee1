//! Reverse-mode autodiff over the IR: from a scalar `of` and the values `wrt`, the graph
//! extended with the nodes that compute d of / d wrt. Each op's vector-Jacobian product lives
//! with the op (`Op::vjp`) and is written in IR ops, so the result can be differentiated again
//! (the gradient penalty of WGAN-GP is a gradient of a gradient).

use crate::CompileError;
use ir::ops::{vjp, Reduce, ReduceKind};
use ir::{Graph, NodeId, Op};

fn error(g: &Graph, node: NodeId, message: String) -> CompileError {
    CompileError::Autodiff {
        node: g.nodes[node].name.clone(),
        message,
    }
}

/// Extend `graph` with the gradient of `of` (a value with a single element) with respect to each
/// of `wrt`. Returns the new graph (the forward nodes unchanged and first, the backward nodes
/// appended, named `grad.<node path>...`, and one output `grad.<wrt path>` per `wrt`) and the
/// gradient node of each `wrt`, in order; a zero (a broadcast scalar 0) where `of` does not
/// depend on it.
///
/// Only nodes on a path from some `wrt` to `of` are differentiated, contributions to a value
/// read by several consumers are summed with Add, and backward nodes that none of the returned
/// gradients need (say a weight gradient when only the input's was asked) are dropped, so
/// values that need no gradient cost nothing.
pub fn grad(
    graph: &Graph,
    of: NodeId,
    wrt: &[NodeId],
) -> Result<(Graph, Vec<NodeId>), CompileError> {
    let n = graph.nodes.len();
    let plain = |message: String| CompileError::Autodiff {
        node: format!("#{of}"),
        message,
    };
    if of >= n {
        return Err(plain(format!(
            "node #{of} is not in graph `{}`",
            graph.name
        )));
    }
    if let Some(&w) = wrt.iter().find(|&&w| w >= n) {
        return Err(plain(format!(
            "wrt node #{w} is not in graph `{}`",
            graph.name
        )));
    }
    if ir::numel(&graph.nodes[of].shape) != 1 {
        return Err(error(
            graph,
            of,
            format!(
                "expected a value with one element to differentiate, found shape {:?} (sum it first: sum_to_scalar)",
                graph.nodes[of].shape
            ),
        ));
    }
    // active: depends on some wrt (forward sweep) and reaches `of` (backward sweep).
    let mut depends = vec![false; n];
    for (i, node) in graph.nodes.iter().enumerate() {
        depends[i] = wrt.contains(&i) || node.inputs.iter().any(|&j| depends[j]);
    }
    let mut reaches = vec![false; n];
    reaches[of] = true;
    for i in (0..=of).rev() {
        if reaches[i] {
            for &j in &graph.nodes[i].inputs {
                reaches[j] = true;
            }
        }
    }
    let active = |i: usize| depends[i] && reaches[i];

    let mut g = graph.clone();
    let mut grads: Vec<Option<NodeId>> = vec![None; n];
    if active(of) {
        let seed = Op::Const(ir::ops::Const {
            shape: graph.nodes[of].shape.clone(),
            values: vec![1.0],
        });
        let name = format!("grad.{}.seed", graph.nodes[of].name);
        grads[of] = Some(
            g.push(name, seed, vec![])
                .map_err(|m| error(graph, of, m))?,
        );
    }
    for i in (0..=of).rev() {
        let Some(gi) = grads[i] else { continue };
        if graph.nodes[i].inputs.is_empty() {
            continue;
        }
        let op = graph.nodes[i].op.clone();
        let parts = op.vjp(&mut g, i, gi).map_err(|m| error(graph, i, m))?;
        for (&j, part) in graph.nodes[i].inputs.iter().zip(parts) {
            let Some(part) = part.filter(|_| active(j)) else {
                continue;
            };
            if g.nodes[part].shape != graph.nodes[j].shape {
                return Err(error(
                    graph,
                    i,
                    format!(
                        "internal: the gradient of input `{}` has shape {:?}, expected {:?}",
                        graph.nodes[j].name, g.nodes[part].shape, graph.nodes[j].shape
                    ),
                ));
            }
            grads[j] = Some(match grads[j] {
                None => part,
                Some(prev) => {
                    let name = format!("grad.{}", graph.nodes[j].name);
                    let add = Op::Binary(ir::ops::Binary::Add);
                    g.push(name, add, vec![prev, part])
                        .map_err(|m| error(graph, j, m))?
                }
            });
        }
    }
    let mut result = Vec::with_capacity(wrt.len());
    for &w in wrt {
        let id = match grads[w] {
            Some(id) => id,
            None => {
                let name = format!("grad.{}.zero", graph.nodes[w].name);
                vjp::zeros(&mut g, &name, &graph.nodes[w].shape).map_err(|m| error(graph, w, m))?
            }
        };
        result.push(id);
    }
    let (mut g, result) = prune(g, n, &result);
    for (&w, &id) in wrt.iter().zip(&result) {
        g.outputs
            .push((format!("grad.{}", graph.nodes[w].name), id));
    }
    Ok((g, result))
}

/// Drop the appended nodes (ids >= `keep`) that no node in `roots` needs; returns the graph and
/// the roots' new ids. Forward nodes keep their ids.
fn prune(g: Graph, keep: usize, roots: &[NodeId]) -> (Graph, Vec<NodeId>) {
    let mut needed = vec![false; g.nodes.len()];
    for &r in roots {
        needed[r] = true;
    }
    for i in (keep..g.nodes.len()).rev() {
        if needed[i] {
            for &j in &g.nodes[i].inputs {
                needed[j] = true;
            }
        }
    }
    let (out, new_id) = crate::rewrite::rewrite_with_ids(&g, |out, new_id, i, node| {
        if i < keep || needed[i] {
            new_id[i] = crate::rewrite::push(out, node);
        }
    });
    let roots = roots.iter().map(|&r| new_id[r]).collect();
    (out, roots)
}

/// Extend `graph` with the sum of all elements of `node` (named `<node path>.sum`) and return
/// its id; `node` itself when it already has one element.
pub fn sum_to_scalar(graph: &mut Graph, node: NodeId) -> Result<NodeId, CompileError> {
    let Some(n) = graph.nodes.get(node) else {
        return Err(CompileError::Autodiff {
            node: format!("#{node}"),
            message: format!("node #{node} is not in graph `{}`", graph.name),
        });
    };
    if ir::numel(&n.shape) == 1 {
        return Ok(node);
    }
    let name = format!("{}.sum", n.name);
    let op = Op::Reduce(Reduce {
        kind: ReduceKind::Sum,
        axes: vec![],
    });
    graph
        .push(name, op, vec![node])
        .map_err(|m| error(graph, node, m))
}
