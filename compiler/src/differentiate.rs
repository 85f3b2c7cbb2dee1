//! The front end's `Grad(of: v, wrt: x)` builds its gradient with this crate's reverse-mode pass:
//! `ir` cannot depend on the compiler, so it asks for an [`ir::front::Differentiator`], and this
//! is the one irdc gives it. Build a model with `model.build_with(graph, shapes, &Autodiff)`.

use crate::autodiff;
use ir::{Graph, NodeId};

/// [`autodiff::grad`] as the front end's differentiator.
pub struct Autodiff;

impl ir::front::Differentiator for Autodiff {
    fn grad(&self, g: &mut Graph, of: NodeId, wrt: NodeId) -> Result<NodeId, String> {
        let (mut extended, ids) = autodiff::grad(g, of, &[wrt]).map_err(|e| e.to_string())?;
        // `grad` adds an output per gradient; a `Grad` node is a value, not an output.
        extended.outputs = std::mem::take(&mut g.outputs);
        *g = extended;
        Ok(ids[0])
    }
}
