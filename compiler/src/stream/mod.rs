//! Streamed runs: an image-to-image graph over an image of any size, window by window, with
//! memory bounded by the window rather than the image and the result of the whole image.
//!
//! Most ops read a bounded neighbourhood (`Reach::Window`); the few that need whole planes
//! (`Reach::Planes`: an instance norm's statistics, a global mean) cut the graph into stages.
//! Each stage runs window by window over the image, its outputs stored whole on the host; between
//! stages the host computes the plane ops from the complete values. Windows overlap by a halo
//! that covers how far wrong values at a window's inner edges spread through the stage, and a
//! window never leaves the image, so at the image's edges it pads as the whole image does. The
//! stage plans depend on the window alone: one set serves every image at least that large.

mod geometry;
mod report;
mod run;
mod stages;
mod store;
mod tiles;

pub use geometry::Extent;
pub use run::{run, StageRunner};
pub use stages::{Stage, When};
pub use tiles::{cut, paste, spans, Span};

use ir::{Graph, NodeId, ValueKind};

/// A graph cut into stages for windows of one size.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    /// The window's height and width, in image pixels.
    pub window: [usize; 2],
    /// Window positions, halos and image sizes are multiples of this: every value's pixels
    /// then fall on whole image pixels.
    pub align: usize,
    /// The whole graph at the window's size, instance norms split into statistics and their
    /// application (`lower::instance_norms`); the ids below index it.
    pub graph: Graph,
    pub extents: Vec<Option<Extent>>,
    pub when: Vec<When>,
    pub stages: Vec<Stage>,
    /// The graph's one input (the image) and its one output.
    pub input: NodeId,
    pub output: NodeId,
}

/// Plan `at_window` (the graph built for a `window`-sized image) in stages, given the same graph
/// built for an image of twice that size (`at_double`), which shows how each value follows the
/// image's size.
pub fn plan(
    at_window: &Graph,
    at_double: &Graph,
    window: [usize; 2],
) -> Result<StreamPlan, String> {
    let plan = unchecked(at_window, at_double, window)?;
    plan.check()?;
    Ok(plan)
}

/// Plan square windows of `side` image pixels or, where the graph's halos need more, of the
/// least side that fits them. `build(s)` builds the graph for an `s` x `s` image; `side` must
/// be a size it builds at.
pub fn plan_fitted(
    build: &dyn Fn(usize) -> Result<Graph, String>,
    side: usize,
) -> Result<StreamPlan, String> {
    let first = unchecked(&build(side)?, &build(2 * side)?, [side, side])?;
    let least = first.least_side().next_multiple_of(first.align);
    match side >= least {
        true => plan(&build(side)?, &build(2 * side)?, [side, side]),
        false => plan(&build(least)?, &build(2 * least)?, [least, least]),
    }
}

fn unchecked(
    at_window: &Graph,
    at_double: &Graph,
    window: [usize; 2],
) -> Result<StreamPlan, String> {
    let (graph, _) = crate::lower::instance_norms(at_window);
    let (double, _) = crate::lower::instance_norms(at_double);
    let extents = geometry::extents(&graph, &double, window)?;
    let (input, output) = ends(&graph)?;
    let align = (extents.iter().flatten()).fold(1, |a, e| lcm(a, e.scale));
    let when = stages::schedule(&graph)?;
    let count = (when.iter())
        .filter_map(|w| match w {
            When::Stage(k) => Some(k + 1),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut stages: Vec<Stage> = (0..count)
        .map(|k| stages::stage(&graph, &when, k, &extents))
        .collect();
    for s in &mut stages {
        s.halo = s.halo.next_multiple_of(align);
    }
    Ok(StreamPlan {
        window,
        align,
        graph,
        extents,
        when,
        stages,
        input,
        output,
    })
}

fn ends(graph: &Graph) -> Result<(NodeId, NodeId), String> {
    let inputs: Vec<NodeId> = graph.inputs().map(|(i, _)| i).collect();
    match (&inputs[..], &graph.outputs[..]) {
        ([input], [(_, output)]) => Ok((*input, *output)),
        _ => Err(format!(
            "graph {} has {} inputs and {} outputs; a streamed run takes one image to one image",
            graph.name,
            inputs.len(),
            graph.outputs.len()
        )),
    }
}

fn lcm(a: usize, b: usize) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    a / gcd(a, b) * b
}

impl StreamPlan {
    /// What the windows and the host store need of the plan: values stored between stages lie
    /// exactly on the image, windows are aligned and larger than both halos.
    fn check(&self) -> Result<(), String> {
        // Parameters and constants are copied whole into every stage that reads them.
        for (v, node) in self.graph.nodes.iter().enumerate() {
            let source = matches!(self.graph.kind(v), ValueKind::Param | ValueKind::Const);
            if source && self.extents[v].is_some() {
                return Err(format!(
                    "`{}` is a parameter or constant that grows with the image; a streamed run \
                     cannot cut it into windows",
                    node.name
                ));
            }
        }
        for s in &self.stages {
            for &v in s.reads.iter().chain(&s.writes) {
                let node = &self.graph.nodes[v];
                if let Some(e) = self.extents[v].filter(|e| e.extra != 0) {
                    return Err(format!(
                        "`{}` is kept between stages but has {} pixels beyond the image's on \
                         each axis; a streamed run keeps only values that lie on the image",
                        node.name, e.extra
                    ));
                }
                if self.graph.kind(v) == ValueKind::Param {
                    return Err(format!(
                        "`{}`: a parameter read as a stage input",
                        node.name
                    ));
                }
            }
        }
        let least = self.least_side();
        if self
            .window
            .iter()
            .any(|&side| !side.is_multiple_of(self.align) || side < least)
        {
            let widest = (self.stages.iter().enumerate())
                .max_by_key(|(_, s)| s.halo)
                .map_or(0, |(i, _)| i);
            return Err(format!(
                "a window of {}x{} is too small: windows need sides that are multiples of {} and \
                 at least {least} (stage {widest} has a halo of {} pixels on each inner side)",
                self.window[1], self.window[0], self.align, self.stages[widest].halo
            ));
        }
        Ok(())
    }

    /// The smallest window side this graph can run in: twice the largest halo, plus what each
    /// window must keep.
    pub fn least_side(&self) -> usize {
        let halo = self.stages.iter().map(|s| s.halo).max().unwrap_or(0);
        2 * halo + self.align
    }

    /// The plane ops computed on the host before stage `k` (after the last when `k` is the
    /// stage count).
    pub fn planes_before(&self, k: usize) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.when.len()).filter(move |&v| self.when[v] == When::Planes(k))
    }

    /// The image sizes this plan can run: at least the window, multiples of `align`.
    pub fn fits(&self, height: usize, width: usize) -> bool {
        let aligned = height.is_multiple_of(self.align) && width.is_multiple_of(self.align);
        aligned && height >= self.window[0] && width >= self.window[1]
    }
}
