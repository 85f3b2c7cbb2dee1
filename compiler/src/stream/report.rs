//! What a streamed run of one image costs: windows per stage, and the bytes the host keeps.

use super::tiles::spans;
use super::{StreamPlan, When};

impl StreamPlan {
    /// Windows stage `k` runs over an `h` x `w` image.
    pub fn windows(&self, k: usize, h: usize, w: usize) -> usize {
        let halo = self.stages[k].halo;
        spans(h, self.window[0], halo, self.align).len()
            * spans(w, self.window[1], halo, self.align).len()
    }

    /// The most bytes the host keeps at once for an `h` x `w` image: the values between stages,
    /// each from the stage that writes it until its last reader (as `run` keeps them), with the
    /// image and the stage's own outputs.
    pub fn host_bytes(&self, h: usize, w: usize) -> u64 {
        let bytes = |v: usize| -> u64 {
            let shape = &self.graph.nodes[v].shape;
            let elements: usize = match self.extents[v] {
                Some(e) => shape[0] * shape[1] * (h / e.scale) * (w / e.scale),
                None => shape.iter().product(),
            };
            4 * elements as u64
        };
        // (first moment kept, last moment read) of every value the host holds.
        let mut spans: Vec<(usize, usize, u64)> = Vec::new();
        let last = self.last_reads();
        for (v, when) in self.when.iter().enumerate() {
            let from = match *when {
                When::Stage(k) if self.stages[k].writes.contains(&v) => 2 * k + 1,
                When::Planes(k) => 2 * k,
                _ if v == self.input => 0,
                _ => continue,
            };
            spans.push((from, last[v].min(2 * self.stages.len() + 1), bytes(v)));
        }
        (0..=2 * self.stages.len() + 1)
            .map(|t| {
                (spans.iter())
                    .filter(|&&(from, to, _)| from <= t && t <= to)
                    .map(|&(_, _, b)| b)
                    .sum()
            })
            .max()
            .unwrap_or(0)
    }

    /// For each node, the last moment it is read: plane ops before stage k read at 2k, stage k
    /// at 2k + 1; the output is never forgotten.
    pub(super) fn last_reads(&self) -> Vec<usize> {
        let mut last = vec![0; self.graph.nodes.len()];
        for (v, node) in self.graph.nodes.iter().enumerate() {
            let at = match self.when[v] {
                When::Stage(k) => 2 * k + 1,
                When::Planes(k) => 2 * k,
                When::Source | When::View(_) => continue,
            };
            for &u in &node.inputs {
                last[u] = last[u].max(at);
            }
        }
        last[self.output] = usize::MAX;
        // A view is read through its parts: they live as long as it is read.
        for (v, node) in self.graph.nodes.iter().enumerate().rev() {
            if let When::View(_) = self.when[v] {
                for &u in &node.inputs {
                    last[u] = last[u].max(last[v]);
                }
            }
        }
        last
    }
}
