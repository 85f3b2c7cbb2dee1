//! The two constructs that work on whole graphs, so that a loss is written from the model's own
//! graphs (README "Calls and gradients"):
//! - `Call(graph: critic, image: x)` inlines another graph, its inputs bound to values, under the
//!   calling node's path; its parameters are named `<graph>.<param path>` and shared by every call;
//! - `Grad(of: v, wrt: x)` is the gradient of sum(v) with respect to x. The reverse-mode pass lives
//!   in the compiler crate, which depends on this one, so it comes in through [`Differentiator`].

use super::error::{Diag, R};
use super::expand::{declared_shape, given_by_seq, join, resolve, Builder, Here, Scope};
use super::fields::{self, Fields};
use crate::ops::{Reduce, ReduceKind};
use crate::{NodeId, Op};
use std::collections::HashMap;

/// The reverse-mode pass, as the front end needs it for `Grad`.
pub trait Differentiator {
    /// Append to `g` the nodes that compute the gradient of `of` (a node with one element) with
    /// respect to `wrt`, and return the gradient's node (shape of `wrt`). Nodes already in `g`
    /// must keep their ids and meaning; `g.outputs` must be left as it is.
    fn grad(&self, g: &mut crate::Graph, of: NodeId, wrt: NodeId) -> Result<NodeId, String>;
}

impl Builder<'_> {
    /// `Call(graph: G, <inputs of G>, output: name)`; `output` may be left out when G has one.
    pub(super) fn call_graph(
        &mut self,
        mut f: Fields,
        scope: &Scope,
        at: &Here,
        chained: Option<NodeId>,
    ) -> R<NodeId> {
        let gv = f.req("graph")?;
        let name = fields::ident(gv, "a graph name")?;
        let parts = self.parts;
        let Some(g) = parts.graphs.iter().find(|g| g.name == name) else {
            let known: Vec<&str> = parts.graphs.iter().map(|g| g.name.as_str()).collect();
            return Err(Diag::at(
                gv.span,
                format!(
                    "unknown graph `{name}`; expected one of {}",
                    known.join(", ")
                ),
            ));
        };
        if self.graphs.iter().any(|g| g == name) {
            return Err(Diag::at(
                gv.span,
                format!(
                    "graph {name} calls itself ({} -> {name})",
                    self.graphs.join(" -> ")
                ),
            ));
        }
        f.what = format!("Call of graph {name}");
        let output = match f.get("output") {
            Some(v) => {
                let o = fields::ident(v, "the name of an output")?;
                let Some((_, target)) = g.outputs.iter().find(|(k, _)| k.name == o) else {
                    return Err(Diag::at(
                        v.span,
                        format!(
                            "graph {name} has no output `{o}`; its outputs: {}",
                            output_names(g)
                        ),
                    ));
                };
                target
            }
            None => match g.outputs.as_slice() {
                [(_, target)] => target,
                _ => {
                    return Err(Diag::at(
                        at.span,
                        format!(
                            "graph {name} has several outputs ({}); say which with `output: ..`",
                            output_names(g)
                        ),
                    ))
                }
            },
        };
        // The inputs: rank and channels as declared; batch and spatial sizes may differ.
        let mut values = HashMap::new();
        for (i, (k, decl)) in g.inputs.iter().enumerate() {
            let (id, span) = match chained.filter(|_| i == 0) {
                Some(id) => match f.get(&k.name) {
                    Some(v) => return Err(given_by_seq(&k.name, v)),
                    None => (id, at.span),
                },
                None => {
                    let v = f.req_as(&k.name, "input")?;
                    (resolve(v, scope)?, v.span)
                }
            };
            let want = declared_shape(decl, &parts.params)?;
            let have = &self.graph.nodes[id].shape;
            if have.len() != want.len() || (want.len() == 4 && have[1] != want[1]) {
                return Err(Diag::at(span, format!("input `{}` of graph {name} has shape {have:?}; the graph declares {want:?} (batch and spatial sizes may differ, rank and channels may not)", k.name)));
            }
            values.insert(k.name.clone(), id);
        }
        f.finish_as("input")?;
        let root = join(&scope.param_root, name);
        let mut inner = Scope {
            path: at.path.to_string(),
            err_path: at.err_path.to_string(),
            owner: format!("graph {name}"),
            env: parts.params.clone(),
            values,
            param_path: root.clone(),
            param_root: root,
        };
        self.graphs.push(name.to_string());
        self.body(&g.body, &mut inner)?;
        self.graphs.pop();
        Ok(inner.values[&output.name])
    }

    /// `Grad(of: v, wrt: x)`: d sum(v) / d x, named by the node's path.
    pub(super) fn grad(
        &mut self,
        mut f: Fields,
        scope: &Scope,
        at: &Here,
        chained: Option<NodeId>,
    ) -> R<NodeId> {
        let of = match chained {
            Some(id) => match f.get("of") {
                Some(v) => return Err(given_by_seq("of", v)),
                None => id,
            },
            None => resolve(f.req("of")?, scope)?,
        };
        let wrt = resolve(f.req("wrt")?, scope)?;
        f.finish()?;
        let Some(diff) = self.diff else {
            return Err(Diag::at(
                at.span,
                "Grad needs a differentiator; build the graph with `Model::build_with(.., &compiler::differentiate::Autodiff)` (irdc's commands do)",
            ));
        };
        let scalar = if crate::numel(&self.graph.nodes[of].shape) == 1 {
            of
        } else {
            let sum = Op::Reduce(Reduce {
                kind: ReduceKind::Sum,
                axes: vec![],
            });
            let name = format!("{}.sum", at.path);
            self.graph
                .push(name, sum, vec![of])
                .map_err(|m| Diag::at(at.span, m))?
        };
        let before = self.graph.nodes.len();
        let id = diff
            .grad(&mut self.graph, scalar, wrt)
            .map_err(|m| Diag::at(at.span, format!("Grad: {m}")))?;
        let (got, want) = (&self.graph.nodes[id].shape, &self.graph.nodes[wrt].shape);
        if got != want {
            return Err(Diag::at(
                at.span,
                format!(
                    "Grad: the differentiator returned shape {got:?} for `wrt` of shape {want:?}"
                ),
            ));
        }
        // The gradient is a new node (the pass names it `grad.<wrt path>`): name it as the node.
        if id >= before {
            self.graph.nodes[id].name = at.path.to_string();
        }
        Ok(id)
    }
}

fn output_names(g: &super::model::GraphDef) -> String {
    let names: Vec<&str> = g.outputs.iter().map(|(k, _)| k.name.as_str()).collect();
    names.join(", ")
}
