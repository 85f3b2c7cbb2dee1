//! The values a streamed run keeps on the host between stages, at the image's size, and the
//! parts of them a window or a plane op reads. A view (`When::View`) has no data of its own:
//! its channels are its parts', one after another.

use super::tiles::cut;
use super::{StreamPlan, When};
use ir::{NodeId, Tensor};

pub struct Store<'a> {
    plan: &'a StreamPlan,
    /// The image's height and width.
    size: (usize, usize),
    pub values: Vec<Option<Tensor<f32>>>,
}

impl<'a> Store<'a> {
    pub fn new(plan: &'a StreamPlan, image: Tensor<f32>) -> Store<'a> {
        let size = (image.shape[2], image.shape[3]);
        let mut values = vec![None; plan.graph.nodes.len()];
        values[plan.input] = Some(image);
        Store { plan, size, values }
    }

    /// `[N, C, H, W]` of `v` at the image's size.
    pub fn shape(&self, v: NodeId) -> Vec<usize> {
        let shape = &self.plan.graph.nodes[v].shape;
        match self.plan.extents[v] {
            Some(e) => vec![
                shape[0],
                shape[1],
                self.size.0 / e.scale,
                self.size.1 / e.scale,
            ],
            None => shape.clone(),
        }
    }

    fn missing(&self, v: NodeId) -> String {
        format!(
            "`{}` is read before it is computed",
            self.plan.graph.nodes[v].name
        )
    }

    /// `v` in the window whose top-left image pixel is `at`: cut from the kept value, or from
    /// a view's parts; a value without spatial extent whole.
    pub fn window(&self, v: NodeId, at: (usize, usize)) -> Result<Tensor<f32>, String> {
        if let When::View(_) = self.plan.when[v] {
            let parts = (self.plan.graph.nodes[v].inputs.iter())
                .map(|&p| self.window(p, at))
                .collect::<Result<Vec<_>, String>>()?;
            return Ok(stack(&parts));
        }
        let value = self.values[v].as_ref().ok_or_else(|| self.missing(v))?;
        let [wh, ww] = self.plan.window;
        Ok(match self.plan.extents[v] {
            Some(e) => cut(
                value,
                (at.0 / e.scale, at.1 / e.scale),
                (wh / e.scale, ww / e.scale),
            ),
            None => value.clone(),
        })
    }

    /// Plane `(n, c)` of `v`, through views to the part that holds it.
    pub fn plane(&self, v: NodeId, n: usize, c: usize) -> Result<&[f32], String> {
        if let When::View(_) = self.plan.when[v] {
            let mut first = 0;
            for &p in &self.plan.graph.nodes[v].inputs {
                let channels = self.plan.graph.nodes[p].shape[1];
                if c < first + channels {
                    return self.plane(p, n, c - first);
                }
                first += channels;
            }
            return Err(format!(
                "`{}` has no channel {c}",
                self.plan.graph.nodes[v].name
            ));
        }
        let value = self.values[v].as_ref().ok_or_else(|| self.missing(v))?;
        let [_, channels, h, w] = ir::shape4(&value.shape);
        let at = (n * channels + c) * h * w;
        Ok(&value.data[at..at + h * w])
    }

    /// Forget every value last read at or before `now` (`StreamPlan::last_reads`).
    pub fn forget(&mut self, last: &[usize], now: usize) {
        for (v, value) in self.values.iter_mut().enumerate() {
            if last[v] <= now {
                *value = None;
            }
        }
    }
}

/// Tensors of the same batch, height and width, their channels one after another.
fn stack(parts: &[Tensor<f32>]) -> Tensor<f32> {
    let [n, _, h, w] = ir::shape4(&parts[0].shape);
    let channels: usize = parts.iter().map(|p| p.shape[1]).sum();
    let mut data = Vec::with_capacity(n * channels * h * w);
    for b in 0..n {
        for p in parts {
            let block = p.shape[1] * h * w;
            data.extend_from_slice(&p.data[b * block..(b + 1) * block]);
        }
    }
    Tensor::new(&[n, channels, h, w], data)
}
