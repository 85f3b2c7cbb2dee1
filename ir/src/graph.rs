//! The flat dataflow graph that the front end produces and every compiler pass reads.

use crate::{op::Op, Shape};

/// Index of a node in [`Graph::nodes`]. Nodes are stored in a topological order: every input of
/// node `i` has an index below `i`.
pub type NodeId = usize;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The node path, e.g. `ird[3].inception.b2.conv` (without the graph name).
    pub name: String,
    pub op: Op,
    pub inputs: Vec<NodeId>,
    pub shape: Shape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ValueKind {
    /// Fed by the user at run time (`Op::Input`).
    Input,
    /// A trainable parameter (`Op::Param`), named by its node path plus `.weight` / `.bias`.
    Param,
    /// A constant baked into the model file (`Op::Const`).
    Const,
    /// Computed by a kernel.
    Computed,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    pub name: String,
    pub nodes: Vec<Node>,
    /// Graph outputs by their user-facing name.
    pub outputs: Vec<(String, NodeId)>,
}

impl Graph {
    /// Append a node after checking its shape rule; returns its id. The inputs must already exist.
    pub fn push(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: Vec<NodeId>,
    ) -> Result<NodeId, String> {
        let shapes: Vec<&[usize]> = inputs
            .iter()
            .map(|&i| self.nodes[i].shape.as_slice())
            .collect();
        let shape = op.infer_shape(&shapes)?;
        self.nodes.push(Node {
            name: name.into(),
            op,
            inputs,
            shape,
        });
        Ok(self.nodes.len() - 1)
    }

    pub fn kind(&self, id: NodeId) -> ValueKind {
        match self.nodes[id].op {
            Op::Input { .. } => ValueKind::Input,
            Op::Param { .. } => ValueKind::Param,
            Op::Const(_) => ValueKind::Const,
            _ => ValueKind::Computed,
        }
    }

    /// The graph's inputs in node order, with their names.
    pub fn inputs(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.op, Op::Input { .. }))
    }

    /// The graph's parameters in node order.
    pub fn params(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.op, Op::Param { .. }))
    }

    /// For each node, the nodes that read it (in node order, with repeats if read twice).
    pub fn consumers(&self) -> Vec<Vec<NodeId>> {
        let mut c = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &j in &n.inputs {
                c[j].push(i);
            }
        }
        c
    }

    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name)
    }
}
