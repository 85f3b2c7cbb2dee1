//! Cutting a graph into stages at the ops that need whole planes (`Reach::Planes`), each stage a
//! graph of its own at the window's size, and the halo each needs.

use super::geometry::Extent;
use ir::ops::Reach;
use ir::{Graph, Node, NodeId, Op};

/// A stage: a graph run window by window over the whole image.
#[derive(Debug, Clone)]
pub struct Stage {
    /// At the window's size. Its inputs are named by the nodes of the whole graph they stand
    /// for; parameters and constants keep their node names, so weights load as they would for
    /// the whole graph.
    pub graph: Graph,
    /// The whole graph's nodes the stage reads: the input image, values of earlier stages,
    /// plane results.
    pub reads: Vec<NodeId>,
    /// The whole graph's nodes the stage computes that later stages, plane ops or the graph's
    /// output read; they are the stage graph's outputs, named by their nodes.
    pub writes: Vec<NodeId>,
    /// Image pixels on each inner side of a window whose results are wrong (they need pixels
    /// beyond the window) and are left to the neighbouring windows.
    pub halo: usize,
}

/// When a node of the whole graph is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// An input, a parameter or a constant: there from the start.
    Source,
    /// In stage k, window by window.
    Stage(usize),
    /// On the host before stage k, from complete planes.
    Planes(usize),
    /// Channels stacked (`Reach::Stack`) from values complete before stage k, read by later
    /// stages alone: the host keeps the parts, never a copy.
    View(usize),
}

/// Each node's [`When`]: a node runs in the first stage after all it reads is complete.
pub fn schedule(graph: &Graph) -> Result<Vec<When>, String> {
    let mut when: Vec<When> = Vec::with_capacity(graph.nodes.len());
    for node in &graph.nodes {
        if node.inputs.is_empty() {
            when.push(When::Source);
            continue;
        }
        let ready = |done_after: fn(usize) -> usize| {
            (node.inputs.iter())
                .map(|&i| match when[i] {
                    When::Source => 0,
                    When::Stage(s) => done_after(s),
                    When::Planes(k) | When::View(k) => k,
                })
                .max()
                .unwrap_or(0)
        };
        when.push(match reach(graph, node) {
            Reach::Whole => return Err(whole(node)),
            Reach::Planes => When::Planes(ready(|s| s + 1)),
            Reach::Pixel | Reach::Window(_) | Reach::Stack => When::Stage(ready(|s| s)),
        });
    }
    views(graph, &mut when);
    Ok(when)
}

/// Stacks of kept values that no node of their own stage reads become views: the host keeps
/// their parts (which become the stage's writes) and cuts windows from those.
fn views(graph: &Graph, when: &mut [When]) {
    let consumers = graph.consumers();
    for (v, node) in graph.nodes.iter().enumerate() {
        let When::Stage(k) = when[v] else { continue };
        let kept = |i: &NodeId| match when[*i] {
            When::Source => matches!(graph.nodes[*i].op, Op::Input { .. }),
            _ => true,
        };
        if reach(graph, node) == Reach::Stack
            && node.inputs.iter().all(kept)
            && consumers[v].iter().all(|&c| when[c] != When::Stage(k))
            && !graph.outputs.iter().any(|&(_, o)| o == v)
        {
            when[v] = When::View(k + 1);
        }
    }
}

/// What `node` reads of its inputs' pixels, for the shapes they have in `graph`.
fn reach(graph: &Graph, node: &Node) -> Reach {
    let shapes: Vec<&[usize]> = (node.inputs.iter())
        .map(|&i| graph.nodes[i].shape.as_slice())
        .collect();
    node.op.reach(&shapes)
}

fn whole(node: &Node) -> String {
    format!(
        "`{}` ({}) mixes pixels from all over the image, so the graph cannot run window by \
         window; it runs on whole images only",
        node.name,
        node.op.kind_name()
    )
}

/// The graph of stage `k`: its nodes, with what they read from outside as inputs.
pub fn stage(graph: &Graph, when: &[When], k: usize, extents: &[Option<Extent>]) -> Stage {
    let consumers = graph.consumers();
    let mut g = Graph {
        name: format!("{}.stage{k}", graph.name),
        ..Graph::default()
    };
    let mut new_id: Vec<Option<NodeId>> = vec![None; graph.nodes.len()];
    let mut reads = Vec::new();
    for (v, node) in graph.nodes.iter().enumerate() {
        if when[v] != When::Stage(k) {
            continue;
        }
        let mut inputs = Vec::with_capacity(node.inputs.len());
        for &u in &node.inputs {
            let id = *new_id[u].get_or_insert_with(|| {
                let source = &graph.nodes[u];
                let op = match (&source.op, when[u]) {
                    (Op::Param { .. } | Op::Const(_), When::Source) => source.op.clone(),
                    _ => {
                        reads.push(u);
                        Op::Input {
                            name: source.name.clone(),
                        }
                    }
                };
                g.nodes.push(Node {
                    op,
                    inputs: vec![],
                    ..source.clone()
                });
                g.nodes.len() - 1
            });
            inputs.push(id);
        }
        g.nodes.push(Node {
            inputs,
            ..node.clone()
        });
        new_id[v] = Some(g.nodes.len() - 1);
    }
    let is_output = |v: NodeId| graph.outputs.iter().any(|&(_, o)| o == v);
    let writes: Vec<NodeId> = (0..graph.nodes.len())
        .filter(|&v| when[v] == When::Stage(k))
        .filter(|&v| is_output(v) || consumers[v].iter().any(|&c| when[c] != when[v]))
        .collect();
    g.outputs = (writes.iter())
        .filter_map(|&v| Some((graph.nodes[v].name.clone(), new_id[v]?)))
        .collect();
    let halo = spread(graph, when, k, extents, &writes);
    Stage {
        graph: g,
        reads,
        writes,
        halo,
    }
}

/// How far, in image pixels, wrong values at a window's inner edge spread into the stage's
/// outputs: each windowed op carries them its reach further (in its input's pixels), plus a
/// pixel of its output for the rounding of strides.
fn spread(
    graph: &Graph,
    when: &[When],
    k: usize,
    extents: &[Option<Extent>],
    writes: &[NodeId],
) -> usize {
    let mut depth = vec![0usize; graph.nodes.len()];
    for (v, node) in graph.nodes.iter().enumerate() {
        if when[v] != When::Stage(k) {
            continue;
        }
        let (radius, step) = match reach(graph, node) {
            Reach::Window(r) => (r, extents[v].map_or(0, |e| e.scale)),
            _ => (0, 0),
        };
        let inner = |u: NodeId| match (when[u], extents[u]) {
            (When::Stage(s), Some(e)) if s == k => depth[u] + radius * e.scale,
            (_, Some(e)) => radius * e.scale,
            (_, None) => 0,
        };
        depth[v] = node.inputs.iter().map(|&u| inner(u)).max().unwrap_or(0) + step;
    }
    writes.iter().map(|&v| depth[v]).max().unwrap_or(0)
}
