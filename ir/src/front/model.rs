//! The typed model read from the value tree: parameters (after `--set` overrides), blocks and
//! graphs. What can be checked without expanding is checked here: the layout of every struct,
//! names, outputs that name nothing, and cycles (each body gets its build order here).

use super::error::{Diag, R};
use super::fields::{self, expected, Fields};
use super::syntax::{Key, Kind, Value};
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::DiGraph;
use std::collections::BTreeMap;

/// A named list of nodes in any order, with the order to build them in.
#[derive(Debug, Clone)]
pub struct Body {
    pub nodes: Vec<(Key, Value)>,
    /// Indices into `nodes`, dependencies first.
    pub order: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct BlockDef {
    pub name: String,
    pub args: Vec<Key>,
    /// Each input with its declared channel count, if any (checked at every call).
    pub inputs: Vec<(Key, Option<Value>)>,
    pub body: Body,
    pub output: Key,
}

#[derive(Debug, Clone)]
pub struct GraphDef {
    pub name: String,
    /// Each input with its declared shape (a list of numbers).
    pub inputs: Vec<(Key, Value)>,
    pub body: Body,
    /// (output name, node it names)
    pub outputs: Vec<(Key, Key)>,
}

#[derive(Debug, Clone)]
pub struct Parts {
    pub params: BTreeMap<String, f64>,
    pub init_std: f64,
    /// `init: PyTorch`: convolutions start as PyTorch's do (see `ops::conv_init`), not N(0, init_std).
    pub pytorch_init: bool,
    pub blocks: BTreeMap<String, BlockDef>,
    pub graphs: Vec<GraphDef>,
    pub training: Option<Value>,
}

/// Read the top-level `Model(..)`, applying `overrides` to its parameters.
pub fn read_model(v: &Value, overrides: &[(String, String)]) -> R<Parts> {
    let Some((Some("Model"), fs)) = Fields::of(v, false) else {
        return Err(expected(
            v,
            "`Model(params: {..}, blocks: {..}, graphs: {..})`",
        ));
    };
    let mut f = Fields::new("Model", v.span, fs);
    let mut params = BTreeMap::new();
    if let Some(p) = f.get("params") {
        for (k, v) in fields::map(p, "a map of parameters `{ N: 64, .. }`")? {
            let Kind::Num(n) = v.kind else {
                return Err(expected(v, "a number"));
            };
            params.insert(k.name.clone(), n);
        }
    }
    for (name, text) in overrides {
        let Some(slot) = params.get_mut(name) else {
            let known: Vec<&str> = params.keys().map(String::as_str).collect();
            return Err(Diag::plain(format!(
                "--set {name}={text}: the model has no parameter `{name}`; its parameters: {}",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )));
        };
        *slot = text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| {
                Diag::plain(format!(
                    "--set {name}={text}: `{text}` is not a number; write e.g. --set {name}=8"
                ))
            })?;
    }
    let init_std = match f.get("init_std") {
        Some(v) => fields::num(v, &params)?,
        None => 0.02,
    };
    let pytorch_init = match f.get("init") {
        None => false,
        Some(v) => match fields::ident(v, "`PyTorch` (convs as PyTorch initialises them)")? {
            "PyTorch" => true,
            _ => {
                return Err(fields::expected(
                    v,
                    "`PyTorch` (convs as PyTorch initialises them)",
                ))
            }
        },
    };
    let mut blocks = BTreeMap::new();
    if let Some(b) = f.get("blocks") {
        for (k, v) in fields::map(b, "a map of blocks `{ Name: Block(..), .. }`")? {
            if super::ops::OP_NAMES.contains(&k.name.as_str())
                || ["Repeat", "Seq", "Call", "Grad"].contains(&k.name.as_str())
            {
                return Err(Diag::at(
                    k.span,
                    format!("block `{}` has the name of an op; rename it", k.name),
                ));
            }
            blocks.insert(k.name.clone(), read_block(k, v, &params)?);
        }
    }
    let mut graphs = Vec::new();
    for (k, v) in fields::map(
        f.req("graphs")?,
        "a map of graphs `{ name: Graph(..), .. }`",
    )? {
        graphs.push(read_graph(k, v, &params)?);
    }
    let training = f.get("training").cloned();
    f.finish()?;
    Ok(Parts {
        params,
        init_std,
        pytorch_init,
        blocks,
        graphs,
        training,
    })
}

fn read_block(key: &Key, v: &Value, params: &BTreeMap<String, f64>) -> R<BlockDef> {
    let Some((Some("Block"), fs)) = Fields::of(v, false) else {
        return Err(expected(
            v,
            "`Block(args: [..], inputs: [..], nodes: {..}, output: ..)`",
        ));
    };
    let path = format!("block {}", key.name);
    let mut f = Fields::new(format!("Block {}", key.name), v.span, fs);
    let mut args = Vec::new();
    if let Some(a) = f.get("args") {
        for item in fields::list(a, "a list of argument names `[k, s, c]`")? {
            let name = fields::ident(item, "an argument name")?;
            if params.contains_key(name) {
                return Err(Diag::at(
                    item.span,
                    format!("argument `{name}` has the name of a parameter"),
                )
                .in_path(&path));
            }
            args.push(Key {
                name: name.to_string(),
                span: item.span,
            });
        }
    }
    let ins = f.req("inputs")?;
    let inputs: Vec<(Key, Option<Value>)> = match &ins.kind {
        Kind::List(items) => items
            .iter()
            .map(|i| {
                Ok((
                    Key {
                        name: fields::ident(i, "an input name")?.to_string(),
                        span: i.span,
                    },
                    None,
                ))
            })
            .collect::<R<_>>()?,
        Kind::Map(entries) => entries
            .iter()
            .map(|(k, c)| (k.clone(), Some(c.clone())))
            .collect(),
        _ => {
            return Err(expected(
                ins,
                "a list of inputs `[x]` or a map of inputs and channels `{ x: \"4 * N\" }`",
            ))
        }
    };
    if inputs.is_empty() {
        return Err(Diag::at(ins.span, "a block needs at least one input").in_path(&path));
    }
    let declared: Vec<&Key> = inputs.iter().map(|(k, _)| k).chain(&args).collect();
    let body = read_body(f.req("nodes")?, &declared, params, &path, &path)?;
    let out = f.req("output")?;
    let output = output_key(out, "output", &body, &declared, &path)?;
    f.finish()?;
    Ok(BlockDef {
        name: key.name.clone(),
        args,
        inputs,
        body,
        output,
    })
}

fn read_graph(key: &Key, v: &Value, params: &BTreeMap<String, f64>) -> R<GraphDef> {
    let Some((Some("Graph"), fs)) = Fields::of(v, false) else {
        return Err(expected(
            v,
            "`Graph(inputs: {..}, nodes: {..}, outputs: {..})`",
        ));
    };
    let mut f = Fields::new(format!("Graph {}", key.name), v.span, fs);
    let inputs: Vec<(Key, Value)> = fields::map(
        f.req("inputs")?,
        "a map of inputs and shapes `{ image: [1, 3, H, W] }`",
    )?
    .to_vec();
    let names: Vec<&Key> = inputs.iter().map(|(k, _)| k).collect();
    let body = read_body(
        f.req("nodes")?,
        &names,
        params,
        &key.name,
        &format!("graph {}", key.name),
    )?;
    let mut outputs = Vec::new();
    for (k, o) in fields::map(f.req("outputs")?, "a map of outputs `{ name: node }`")? {
        let label = format!("output `{}`", k.name);
        outputs.push((
            k.clone(),
            output_key(o, &label, &body, &names, &format!("graph {}", key.name))?,
        ));
    }
    f.finish()?;
    Ok(GraphDef {
        name: key.name.clone(),
        inputs,
        body,
        outputs,
    })
}

/// An output must name a node of the body or an input.
fn output_key(v: &Value, label: &str, body: &Body, inputs: &[&Key], owner: &str) -> R<Key> {
    let name = fields::ident(v, &format!("the name of a node of {owner}"))?;
    if !body.nodes.iter().any(|(k, _)| k.name == name) && !inputs.iter().any(|k| k.name == name) {
        return Err(Diag::at(
            v.span,
            format!("{label} names `{name}`, which is not a node of {owner}"),
        ));
    }
    Ok(Key {
        name: name.to_string(),
        span: v.span,
    })
}

/// Read a body's nodes (errors name `path`; `owner` is `graph g` or `block B`) and order them by their dependencies (any identifier inside a node that
/// names another node of the same body, except the values of `block` and `index`).
fn read_body(
    v: &Value,
    declared: &[&Key],
    params: &BTreeMap<String, f64>,
    path: &str,
    owner: &str,
) -> R<Body> {
    let nodes = fields::map(v, "a map of nodes `{ name: Op(..), .. }`")?.to_vec();
    let mut g = DiGraph::<usize, ()>::new();
    let ids: Vec<_> = (0..nodes.len()).map(|i| g.add_node(i)).collect();
    for (i, (k, node)) in nodes.iter().enumerate() {
        let here = format!("{path}.{}", k.name);
        let clash = |what: &str| {
            Diag::at(k.span, format!("node `{}` has the name of {what}", k.name)).in_path(&here)
        };
        if !k.name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(Diag::at(
                k.span,
                format!("node name `{}` must be letters, digits and `_`", k.name),
            ));
        }
        if declared.iter().any(|d| d.name == k.name) {
            let what = if owner.starts_with("graph") {
                "an input"
            } else {
                "an input or argument"
            };
            return Err(clash(&format!("{what} of {owner}")));
        }
        if params.contains_key(&k.name) {
            return Err(clash("a parameter"));
        }
        let mut refs = Vec::new();
        idents(node, true, &mut refs);
        for r in refs {
            if let Some(j) = nodes.iter().position(|(k, _)| k.name == r) {
                g.add_edge(ids[j], ids[i], ());
            }
        }
    }
    let order = match toposort(&g, None) {
        Ok(order) => order.into_iter().map(|n| g[n]).collect(),
        Err(_) => return Err(cycle_error(&g, &nodes, path)),
    };
    Ok(Body { nodes, order })
}

/// Name the nodes of a cycle, in the order they feed each other, from the first one in the file.
fn cycle_error(g: &DiGraph<usize, ()>, nodes: &[(Key, Value)], path: &str) -> Diag {
    let scc = tarjan_scc(g)
        .into_iter()
        .find(|c| c.len() > 1 || g.contains_edge(c[0], c[0]))
        .expect("toposort found a cycle");
    let start = *scc.iter().min_by_key(|n| g[**n]).expect("non-empty");
    // Breadth-first inside the component for the shortest way back to `start`.
    let mut parent = std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut last = start;
    'search: while let Some(at) = queue.pop_front() {
        for next in g.neighbors(at).filter(|n| scc.contains(n)) {
            if next == start {
                last = at;
                break 'search;
            }
            if next != start && !parent.contains_key(&next) {
                parent.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    let mut walk = vec![last];
    while let Some(&p) = parent.get(walk.last().expect("non-empty")) {
        walk.push(p);
    }
    walk.reverse();
    walk.push(start);
    let names: Vec<String> = walk
        .iter()
        .map(|n| format!("`{}`", nodes[g[*n]].0.name))
        .collect();
    Diag::at(
        nodes[g[start]].0.span,
        format!("nodes {} form a cycle", names.join(" -> ")),
    )
    .in_path(path)
}

/// Every identifier inside a node (its own struct name aside, and the fields that name a block,
/// an index, or a `Call`'s graph and output rather than a value).
fn idents(v: &Value, top: bool, out: &mut Vec<String>) {
    match &v.kind {
        Kind::Ident(name) if !top => out.push(name.clone()),
        Kind::Struct(name, fs) => {
            let call = top && name.as_deref() == Some("Call");
            for (k, fv) in fs {
                let not_a_value = (top && (k.name == "block" || k.name == "index"))
                    || (call && (k.name == "graph" || k.name == "output"));
                if !not_a_value {
                    idents(fv, false, out);
                }
            }
        }
        Kind::Tuple(_, items) | Kind::List(items) => {
            items.iter().for_each(|i| idents(i, false, out))
        }
        Kind::Map(entries) => entries.iter().for_each(|(_, e)| idents(e, false, out)),
        _ => {}
    }
}
