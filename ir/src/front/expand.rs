//! Expansion of one graph of the model into a flat `ir::Graph`: block calls are inlined under
//! the calling node's path (`down1.conv`), `Repeat` chains a block `times` times under
//! `<node>.<index>` (`ird.3.inception`), `Seq` chains layers under `<node>.<position>`
//! (`features.0`, as torchvision names them), and `Call` inlines another graph (see `calls.rs`).
//! Every node is checked by its op's shape rule as it is pushed, and a failure is reported at the
//! node with its path.

use super::call::Call;
use super::error::{Diag, R};
use super::expr::Env;
use super::fields::{self, expected, Fields};
use super::model::{BlockDef, Body, GraphDef, Parts};
use super::ops;
use super::syntax::{Kind, Span, Value};
use super::Differentiator;
use crate::{Graph, Node, NodeId, Op};
use std::collections::HashMap;

/// Where a body is being expanded.
pub(super) struct Scope {
    /// Prefix of node names in the graph (`""` at the top, `ird.3` inside a repetition).
    pub(super) path: String,
    /// The same with the graph name in front, for messages (`generator.ird.3`).
    pub(super) err_path: String,
    /// `graph generator` or `block IRD`, for messages.
    pub(super) owner: String,
    /// Numbers visible here: parameters, and inside a block its arguments.
    pub(super) env: Env,
    /// Values visible here: inputs, and the nodes built so far.
    pub(super) values: HashMap<String, NodeId>,
    /// Prefix of parameter names: `path`, except inside a `Call`, where it restarts at the called
    /// graph's name (`critic.layer2`), so that every call of a graph shares its parameters.
    pub(super) param_path: String,
    /// The called graph's name inside a `Call` (`""` at the top): the root of `param_path`.
    pub(super) param_root: String,
}

pub(super) fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}.{b}")
    }
}

/// Expand graph `g`; `shapes` replaces declared input shapes by input name; `diff` builds the
/// `Grad` nodes (without one, a `Grad` is an error).
pub fn build_graph(
    parts: &Parts,
    g: &GraphDef,
    shapes: &[(String, Vec<usize>)],
    diff: Option<&dyn Differentiator>,
    training: bool,
) -> R<Graph> {
    let mut b = Builder {
        parts,
        graph: Graph {
            name: g.name.clone(),
            ..Graph::default()
        },
        stack: Vec::new(),
        graphs: vec![g.name.clone()],
        params: HashMap::new(),
        diff,
        training,
        seed: None,
    };
    for (name, _) in shapes {
        if !g.inputs.iter().any(|(k, _)| &k.name == name) {
            let known: Vec<&str> = g.inputs.iter().map(|(k, _)| k.name.as_str()).collect();
            return Err(Diag::plain(format!(
                "graph {} has no input `{name}`; its inputs: {}",
                g.name,
                known.join(", ")
            )));
        }
    }
    let mut values = HashMap::new();
    for (k, v) in &g.inputs {
        let shape = match shapes.iter().find(|(n, _)| n == &k.name) {
            Some((_, s)) => s.clone(),
            None => declared_shape(v, &parts.params)
                .map_err(|d| d.in_path(&format!("{}.{}", g.name, k.name)))?,
        };
        b.graph.nodes.push(Node {
            name: k.name.clone(),
            op: Op::Input {
                name: k.name.clone(),
            },
            inputs: vec![],
            shape,
        });
        values.insert(k.name.clone(), b.graph.nodes.len() - 1);
    }
    let mut scope = Scope {
        path: String::new(),
        err_path: g.name.clone(),
        owner: format!("graph {}", g.name),
        env: parts.params.clone(),
        values,
        param_path: String::new(),
        param_root: String::new(),
    };
    b.body(&g.body, &mut scope)?;
    b.check_seed_name()?;
    for (name, target) in &g.outputs {
        b.graph
            .outputs
            .push((name.name.clone(), scope.values[&target.name]));
    }
    Ok(b.graph)
}

/// A declared input shape: a list of sizes over the parameters.
pub fn declared_shape(v: &Value, params: &Env) -> R<Vec<usize>> {
    fields::list(v, "a shape `[1, 3, H, W]`")?
        .iter()
        .map(|d| fields::whole(d, params, "size", 1))
        .collect()
}

pub(super) struct Builder<'m> {
    pub(super) parts: &'m Parts,
    pub(super) graph: Graph,
    /// Blocks being expanded, to refuse a block that calls itself.
    stack: Vec<String>,
    /// Graphs being expanded (the built one first), to refuse a graph that calls itself.
    pub(super) graphs: Vec<String>,
    /// Parameters by name: a name is one Param node, however many calls reach it.
    params: HashMap<String, NodeId>,
    pub(super) diff: Option<&'m dyn Differentiator>,
    /// A training build: dropouts read the seed input (see `dropout.rs`).
    pub(super) training: bool,
    /// The seed input, once a dropout has made it.
    pub(super) seed: Option<NodeId>,
}

impl Builder<'_> {
    pub(super) fn body(&mut self, body: &Body, scope: &mut Scope) -> R<()> {
        for &i in &body.order {
            let (k, v) = &body.nodes[i];
            let id = self.node(&k.name, v, scope, None)?;
            scope.values.insert(k.name.clone(), id);
        }
        Ok(())
    }

    /// Build one node (an op, a block call, `Repeat` or `Seq`); `chained` is the previous layer
    /// of a `Seq`, which feeds the node's first input.
    fn node(&mut self, name: &str, v: &Value, scope: &Scope, chained: Option<NodeId>) -> R<NodeId> {
        let path = join(&scope.path, name);
        let err_path = join(&scope.err_path, name);
        let param_path = join(&scope.param_path, name);
        let Some((Some(op), fs)) = Fields::of(v, chained.is_some()) else {
            return Err(expected(
                v,
                "an op `Name(..)`, a block call, `Repeat(..)` or `Seq(..)`",
            )
            .in_path(&err_path));
        };
        let f = Fields::new(op, v.span, fs);
        let at = Here {
            path: &path,
            err_path: &err_path,
            param_path: &param_path,
            span: v.span,
        };
        let r = match op {
            "Repeat" => self.repeat(f, scope, &at, chained),
            "Seq" => self.seq(name, f, scope, chained),
            "Call" => self.call_graph(f, scope, &at, chained),
            "Grad" => self.grad(f, scope, &at, chained),
            _ => match self.parts.blocks.get(op) {
                Some(block) => self.call(block, f, &scope.env, scope, &at, chained, false),
                None => self.op(op, f, scope, &at, chained),
            },
        };
        r.map_err(|d| d.in_path(&err_path))
    }

    fn op(
        &mut self,
        op: &str,
        f: Fields,
        scope: &Scope,
        at: &Here,
        chained: Option<NodeId>,
    ) -> R<NodeId> {
        let mut call = Call::new(
            f,
            &scope.env,
            scope,
            &self.graph,
            chained,
            (self.parts.init_std, self.parts.pytorch_init),
        );
        if op == "Param" {
            // The node is the parameter itself, named by its path like a conv's weights.
            if chained.is_some() {
                return Err(Diag::at(
                    at.span,
                    "Param reads no input, so it cannot be a layer of a Seq",
                ));
            }
            let (shape, init) = ops::param(&mut call)?;
            call.f.finish()?;
            return self.param(at.param_path.to_string(), shape, init, at.span);
        }
        let Some(built) = ops::build(op, &mut call)? else {
            let blocks: Vec<&str> = self.parts.blocks.keys().map(String::as_str).collect();
            let blocks = if blocks.is_empty() {
                "none in this model".into()
            } else {
                blocks.join(", ")
            };
            return Err(Diag::at(
                at.span,
                format!(
                    "unknown op `{op}`; expected one of {}, Repeat, Seq or a block ({blocks})",
                    ops::OP_NAMES.join(", ")
                ),
            ));
        };
        call.f.finish()?;
        let (mut op, mut inputs) = (built.op, built.inputs);
        self.dropout(&mut op, &mut inputs, scope, at)?;
        for (suffix, shape, init) in built.params {
            let name = format!("{}.{suffix}", at.param_path);
            inputs.push(self.param(name, shape, init, at.span)?);
        }
        self.graph
            .push(at.path, op, inputs)
            .map_err(|m| Diag::at(at.span, m))
    }

    /// The Param node named `name`: a new one, or the one an earlier call of the same graph made
    /// (which must have the same shape: a shared weight cannot change shape between calls).
    fn param(
        &mut self,
        name: String,
        shape: Vec<usize>,
        init: crate::ops::Init,
        span: Span,
    ) -> R<NodeId> {
        if let Some(&id) = self.params.get(&name) {
            let have = &self.graph.nodes[id].shape;
            if *have != shape {
                return Err(Diag::at(span, format!("parameter `{name}` is shared by every call of its graph, but it has shape {shape:?} here and {have:?} at an earlier call; call the graph with inputs of the same channels")));
            }
            return Ok(id);
        }
        self.graph.nodes.push(Node {
            name: name.clone(),
            op: Op::Param { init },
            inputs: vec![],
            shape,
        });
        let id = self.graph.nodes.len() - 1;
        self.params.insert(name, id);
        Ok(id)
    }

    /// Inline `block` under `at.path`. `env` evaluates the arguments (the caller's numbers, plus a
    /// repetition index); `chained` feeds the first input, replacing a given one if `replace`.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        block: &BlockDef,
        mut f: Fields,
        env: &Env,
        scope: &Scope,
        at: &Here,
        chained: Option<NodeId>,
        replace: bool,
    ) -> R<NodeId> {
        if self.stack.contains(&block.name) {
            return Err(Diag::at(
                at.span,
                format!(
                    "block {} calls itself ({} -> {})",
                    block.name,
                    self.stack.join(" -> "),
                    block.name
                ),
            ));
        }
        f.what = format!("block {}", block.name);
        let mut values = HashMap::new();
        let mut given = Vec::new();
        for (i, (k, _)) in block.inputs.iter().enumerate() {
            let (id, span) = match chained.filter(|_| i == 0) {
                Some(id) => match f.get(&k.name) {
                    Some(v) if !replace => return Err(given_by_seq(&k.name, v)),
                    _ => (id, at.span),
                },
                None => {
                    let v = f.req_as(&k.name, "input")?;
                    (resolve(v, scope)?, v.span)
                }
            };
            values.insert(k.name.clone(), id);
            given.push((id, span));
        }
        let mut inner = self.parts.params.clone();
        for a in &block.args {
            let v = f.req_as(&a.name, "argument")?;
            inner.insert(a.name.clone(), fields::num(v, env)?);
        }
        f.finish_as("input or argument")?;
        for ((k, channels), (id, span)) in block.inputs.iter().zip(given) {
            let Some(c) = channels else { continue };
            let want = fields::whole(c, &inner, "channels", 1)?;
            let shape = &self.graph.nodes[id].shape;
            if shape.get(1) != Some(&want) {
                let text = match &c.kind {
                    Kind::Str(s) => format!("{s} = {want}"),
                    _ => want.to_string(),
                };
                let found = shape
                    .get(1)
                    .map_or(format!("shape {shape:?}"), |c| format!("{c} channels"));
                let msg = format!(
                    "input `{}` of block {} has {found}, but the block declares {text}",
                    k.name, block.name
                );
                return Err(Diag::at(span, msg));
            }
        }
        let mut inner_scope = Scope {
            path: at.path.to_string(),
            err_path: at.err_path.to_string(),
            owner: format!("block {}", block.name),
            env: inner,
            values,
            param_path: at.param_path.to_string(),
            param_root: scope.param_root.clone(),
        };
        self.stack.push(block.name.clone());
        self.body(&block.body, &mut inner_scope)?;
        self.stack.pop();
        Ok(inner_scope.values[&block.output.name])
    }

    /// `Repeat(block: B, times: n, index: i, <inputs and arguments of B>)`: repetition r reads
    /// the output of repetition r - 1 as its first input; `i` is r in the arguments.
    fn repeat(
        &mut self,
        mut f: Fields,
        scope: &Scope,
        at: &Here,
        chained: Option<NodeId>,
    ) -> R<NodeId> {
        let bv = f.req("block")?;
        let name = fields::ident(bv, "a block name")?;
        let Some(block) = self.parts.blocks.get(name) else {
            let known: Vec<&str> = self.parts.blocks.keys().map(String::as_str).collect();
            let known = if known.is_empty() {
                "none in this model".into()
            } else {
                known.join(", ")
            };
            return Err(Diag::at(
                bv.span,
                format!("unknown block `{name}`; expected one of {known}"),
            ));
        };
        let times = fields::whole(f.req("times")?, &scope.env, "times", 1)?;
        let index = match f.get("index") {
            Some(v) => {
                let i = fields::ident(v, "a name for the index")?;
                if scope.env.contains_key(i) {
                    return Err(Diag::at(
                        v.span,
                        format!("index `{i}` has the name of a parameter or argument"),
                    ));
                }
                Some(i)
            }
            None => None,
        };
        let rest: Vec<_> = f.rest().cloned().collect();
        let mut prev = chained;
        for r in 0..times {
            let mut env = scope.env.clone();
            if let Some(i) = index {
                env.insert(i.to_string(), r as f64);
            }
            let path = format!("{}.{r}", at.path);
            let err_path = format!("{}.{r}", at.err_path);
            let param_path = format!("{}.{r}", at.param_path);
            let here = Here {
                path: &path,
                err_path: &err_path,
                param_path: &param_path,
                span: at.span,
            };
            let fr = Fields::new("", f.span, &rest);
            let out = self
                .call(block, fr, &env, scope, &here, prev, r > 0)
                .map_err(|d| d.in_path(&err_path))?;
            prev = Some(out);
        }
        Ok(prev.expect("times >= 1"))
    }

    /// `Seq(in: x, layers: [..])`: each layer reads the previous one; layer i is `<node>.i`.
    fn seq(
        &mut self,
        name: &str,
        mut f: Fields,
        scope: &Scope,
        chained: Option<NodeId>,
    ) -> R<NodeId> {
        let mut prev = match chained {
            Some(id) => match f.get("in") {
                Some(v) => return Err(given_by_seq("in", v)),
                None => id,
            },
            None => resolve(f.req("in")?, scope)?,
        };
        let lv = f.req("layers")?;
        let layers = fields::list(lv, "a list of layers `[Conv(..), Relu, ..]`")?;
        f.finish()?;
        if layers.is_empty() {
            return Err(Diag::at(lv.span, "a Seq needs at least one layer"));
        }
        for (i, layer) in layers.iter().enumerate() {
            prev = self.node(&format!("{name}.{i}"), layer, scope, Some(prev))?;
        }
        Ok(prev)
    }
}

/// Where a node is: its name in the graph, its path in messages, the prefix of its parameters'
/// names, its position in the file.
pub(super) struct Here<'a> {
    pub(super) path: &'a str,
    pub(super) err_path: &'a str,
    pub(super) param_path: &'a str,
    pub(super) span: Span,
}

pub(super) fn given_by_seq(field: &str, v: &Value) -> Diag {
    Diag::at(
        v.span,
        format!("`{field}` is the previous layer of the Seq here; remove it"),
    )
}

/// The node or input that an identifier names.
pub(super) fn resolve(v: &Value, scope: &Scope) -> R<NodeId> {
    let name = fields::ident(v, "the name of a node or input")?;
    scope.values.get(name).copied().ok_or_else(|| {
        Diag::at(
            v.span,
            format!(
                "unknown value `{name}`; expected a node or input of {}",
                scope.owner
            ),
        )
    })
}
