//! The fields of one op being built (see `ops.rs`): each accessor reads one field as what the
//! op needs (a value it reads, a size, a number, a flag) and words the mistake if it is not.

use super::error::{Diag, R};
use super::expand::{given_by_seq, resolve, Scope};
use super::expr::Env;
use super::fields::{self, expected, Fields};
use super::syntax::{Kind, Value};
use crate::{Graph, NodeId};

/// The fields of one op being built, with what they may name (see `ops.rs`).
pub struct Call<'a> {
    pub f: Fields<'a>,
    env: &'a Env,
    scope: &'a Scope,
    graph: &'a Graph,
    chained: Option<NodeId>,
    pub init_std: f64,
    /// Convolutions initialised as PyTorch's (the model's `init: PyTorch`).
    pub pytorch_init: bool,
}

impl<'a> Call<'a> {
    pub(super) fn new(
        f: Fields<'a>,
        env: &'a Env,
        scope: &'a Scope,
        graph: &'a Graph,
        chained: Option<NodeId>,
        (init_std, pytorch_init): (f64, bool),
    ) -> Self {
        Call {
            f,
            env,
            scope,
            graph,
            chained,
            init_std,
            pytorch_init,
        }
    }
    /// An error at the node.
    pub fn err(&self, msg: String) -> Diag {
        Diag::at(self.f.span, msg)
    }
    pub fn shape(&self, id: NodeId) -> &[usize] {
        &self.graph.nodes[id].shape
    }
    /// A value input; in a `Seq`, the first one asked for is the previous layer.
    pub fn value(&mut self, name: &str) -> R<NodeId> {
        if let Some(id) = self.chained.take() {
            return match self.f.get(name) {
                Some(v) => Err(given_by_seq(name, v)),
                None => Ok(id),
            };
        }
        resolve(self.f.req(name)?, self.scope)
    }
    /// A list of value inputs; in a `Seq` the previous layer comes first.
    pub fn values(&mut self, name: &str) -> R<Vec<NodeId>> {
        let mut out: Vec<NodeId> = self.chained.take().into_iter().collect();
        let v = if out.is_empty() {
            Some(self.f.req(name)?)
        } else {
            self.f.get(name)
        };
        if let Some(v) = v {
            for item in fields::list(v, "a list of values `[a, b]`")? {
                out.push(resolve(item, self.scope)?);
            }
        }
        Ok(out)
    }
    /// A number written as `v` (a literal, a name or an expression).
    pub fn num_of(&self, v: &Value) -> R<f64> {
        fields::num(v, self.env)
    }
    pub fn num(&mut self, name: &str) -> R<f64> {
        fields::num(self.f.req(name)?, self.env)
    }
    pub fn num_or(&mut self, name: &str, default: f64) -> R<f64> {
        self.f
            .get(name)
            .map_or(Ok(default), |v| fields::num(v, self.env))
    }
    pub fn nums(&mut self, name: &str) -> R<Vec<f64>> {
        let v = self.f.req(name)?;
        fields::list(v, "a list of numbers")?
            .iter()
            .map(|x| fields::num(x, self.env))
            .collect()
    }
    pub fn size(&mut self, name: &str) -> R<usize> {
        fields::whole(self.f.req(name)?, self.env, name, 1)
    }
    pub fn size_or(&mut self, name: &str, default: usize) -> R<usize> {
        self.f
            .get(name)
            .map_or(Ok(default), |v| fields::whole(v, self.env, name, 1))
    }
    pub fn count(&mut self, name: &str) -> R<usize> {
        fields::whole(self.f.req(name)?, self.env, name, 0)
    }
    pub fn count_or(&mut self, name: &str, default: usize) -> R<usize> {
        self.f
            .get(name)
            .map_or(Ok(default), |v| fields::whole(v, self.env, name, 0))
    }
    pub fn sizes(&mut self, name: &str) -> R<Vec<usize>> {
        let v = self.f.req(name)?;
        fields::list(v, "a list of sizes")?
            .iter()
            .map(|x| fields::whole(x, self.env, name, 1))
            .collect()
    }
    pub fn counts_or(&mut self, name: &str, default: Vec<usize>) -> R<Vec<usize>> {
        match self.f.get(name) {
            None => Ok(default),
            Some(v) => fields::list(v, "a list of axes")?
                .iter()
                .map(|x| fields::whole(x, self.env, name, 0))
                .collect(),
        }
    }
    pub fn bool_or(&mut self, name: &str, default: bool) -> R<bool> {
        match self.f.get(name) {
            None => Ok(default),
            Some(Value {
                kind: Kind::Bool(b),
                ..
            }) => Ok(*b),
            Some(v) => Err(expected(v, "`true` or `false`")),
        }
    }
    /// One of the words `options` in a string (`mode: "bilinear"`), or `default` if absent.
    pub fn word_or(
        &mut self,
        name: &str,
        options: &[&'static str],
        default: &'static str,
    ) -> R<&'static str> {
        let Some(v) = self.f.get(name) else {
            return Ok(default);
        };
        let found = match &v.kind {
            Kind::Str(s) => options.iter().find(|o| **o == s.as_str()),
            _ => None,
        };
        found.copied().ok_or_else(|| {
            let words: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
            expected(v, &format!("one of {}", words.join(", ")))
        })
    }
    /// A padding: one number for all four sides, or `[top, bottom, left, right]`.
    pub fn pads(&mut self, name: &str) -> R<[usize; 4]> {
        let v = self.f.req(name)?;
        if let Kind::List(items) = &v.kind {
            let p: Vec<usize> = items
                .iter()
                .map(|x| fields::whole(x, self.env, name, 0))
                .collect::<R<_>>()?;
            return p
                .try_into()
                .map_err(|_| expected(v, "one padding or four `[top, bottom, left, right]`"));
        }
        Ok([fields::whole(v, self.env, name, 0)?; 4])
    }
}
