//! Dropout in a build: every Dropout gets its salt from its path in the graph that defines it (so
//! a graph inlined by a `Call` draws the masks it draws when built alone), and in a training build
//! the graph's seed input as its second operand, which makes it a real dropout (ops/dropout.rs).

use super::error::{Diag, R};
use super::expand::{Builder, Here, Scope};
use crate::ops::{dropout_salt, DROPOUT_SEED};
use crate::{Node, NodeId, Op};

impl Builder<'_> {
    /// Fix up a Dropout built at `at` (other ops pass through).
    pub(super) fn dropout(
        &mut self,
        op: &mut Op,
        inputs: &mut Vec<NodeId>,
        scope: &Scope,
        at: &Here,
    ) -> R<()> {
        let Op::Dropout(d) = op else { return Ok(()) };
        // Inside a Call, parameter paths start with the called graph's name; without it, the
        // path is the one the node has when that graph is built alone.
        let local = match scope.param_root.as_str() {
            "" => at.param_path,
            root => at
                .param_path
                .strip_prefix(root)
                .map_or(at.param_path, |p| p.strip_prefix('.').unwrap_or(p)),
        };
        d.salt = dropout_salt(local);
        if self.training {
            inputs.push(self.dropout_seed(at)?);
        }
        Ok(())
    }

    /// The graph's seed input, made at the first dropout of the build.
    fn dropout_seed(&mut self, at: &Here) -> R<NodeId> {
        if let Some(id) = self.seed {
            return Ok(id);
        }
        if self.graph.find(DROPOUT_SEED).is_some() {
            return Err(Diag::at(at.span, taken()));
        }
        self.graph.nodes.push(Node {
            name: DROPOUT_SEED.into(),
            op: Op::Input {
                name: DROPOUT_SEED.into(),
            },
            inputs: vec![],
            shape: vec![2],
        });
        self.seed = Some(self.graph.nodes.len() - 1);
        Ok(self.graph.nodes.len() - 1)
    }

    /// After the build: no node built after the seed may carry its name.
    pub(super) fn check_seed_name(&self) -> R<()> {
        let named = self.graph.nodes.iter().filter(|n| n.name == DROPOUT_SEED);
        match self.seed {
            Some(_) if named.count() > 1 => Err(Diag::plain(format!(
                "graph {}: {}",
                self.graph.name,
                taken()
            ))),
            _ => Ok(()),
        }
    }
}

fn taken() -> String {
    format!("a training build names its dropout seed input `{DROPOUT_SEED}`, but the graph already has a value of that name; rename it")
}
