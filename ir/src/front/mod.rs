//! The RON model language: read the file with positions (`syntax`), check its layout into a
//! typed model (`model`), and expand one graph at a time into a flat [`crate::Graph`] (`expand`),
//! evaluating channel arithmetic (`expr`) and translating op names (`ops`); `calls` inlines
//! other graphs (`Call`) and builds gradients (`Grad`). The language is described for users in
//! `models/README.md`.

mod call;
mod calls;
mod dropout;
mod error;
mod expand;
mod expr;
mod fields;
mod model;
mod ops;
mod recipes;
mod sizes;
mod syntax;
mod training;

pub use calls::Differentiator;
pub use error::FrontError;
pub use ops::OP_NAMES;
pub use syntax::{Key, Kind, Span, Value};
pub use training::{AdamSpec, DataDefault, Length, TrainingSpec};

use std::collections::BTreeMap;
use std::path::Path;

/// A checked model: parameters after `--set` overrides, blocks and graphs ready to expand.
#[derive(Debug, Clone)]
pub struct Model {
    file: String,
    parts: model::Parts,
}

/// Read and check the model file at `path`, with `--set` overrides applied.
pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Model, FrontError> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        FrontError::Plain(format!("cannot read the model file `{}`: {e}; give the path of a .ron model, e.g. models/ird_gan.ron", path.display()))
    })?;
    parse(&source, &path.display().to_string(), overrides)
}

/// Read and check a model from its text; `file_name` is used in error messages.
pub fn parse(
    source: &str,
    file_name: &str,
    overrides: &[(String, String)],
) -> Result<Model, FrontError> {
    let value = syntax::read(source).map_err(|d| d.into_error(file_name))?;
    let parts = model::read_model(&value, overrides).map_err(|d| d.into_error(file_name))?;
    Ok(Model {
        file: file_name.to_string(),
        parts,
    })
}

/// Parse one `--set NAME=NUMBER` argument.
pub fn parse_set(arg: &str) -> Result<(String, String), FrontError> {
    let bad = || {
        FrontError::Plain(format!(
            "--set `{arg}`: expected NAME=NUMBER, e.g. --set N=8"
        ))
    };
    let (name, value) = arg.split_once('=').ok_or_else(bad)?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() || value.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_')
    {
        return Err(bad());
    }
    if !value.parse::<f64>().is_ok_and(f64::is_finite) {
        return Err(FrontError::Plain(format!(
            "--set `{arg}`: `{value}` is not a number; write e.g. --set {name}=8"
        )));
    }
    Ok((name.to_string(), value.to_string()))
}

impl Model {
    /// The graphs in file order.
    pub fn graph_names(&self) -> Vec<String> {
        self.parts.graphs.iter().map(|g| g.name.clone()).collect()
    }

    pub fn params(&self) -> &BTreeMap<String, f64> {
        &self.parts.params
    }

    /// The file the model was read from (as given), for messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    fn graph(&self, graph: &str) -> Result<&model::GraphDef, FrontError> {
        self.parts
            .graphs
            .iter()
            .find(|g| g.name == graph)
            .ok_or_else(|| {
                FrontError::Plain(format!(
                    "{}: no graph named `{graph}`; the model has: {}",
                    self.file,
                    self.graph_names().join(", ")
                ))
            })
    }

    /// The declared input shapes of `graph`, in declaration order.
    pub fn input_shapes(&self, graph: &str) -> Result<Vec<(String, Vec<usize>)>, FrontError> {
        let g = self.graph(graph)?;
        g.inputs
            .iter()
            .map(|(k, v)| {
                let shape = expand::declared_shape(v, &self.parts.params).map_err(|d| {
                    d.in_path(&format!("{graph}.{}", k.name))
                        .into_error(&self.file)
                })?;
                Ok((k.name.clone(), shape))
            })
            .collect()
    }

    /// Expand graph `graph` into a flat graph; `input_shapes` overrides declared input shapes by
    /// name. A graph with a `Grad` node needs [`Model::build_with`].
    pub fn build(
        &self,
        graph: &str,
        input_shapes: &[(String, Vec<usize>)],
    ) -> Result<crate::Graph, FrontError> {
        self.build_inner(graph, input_shapes, None, false)
    }

    /// [`Model::build`] with the reverse-mode pass that builds `Grad` nodes (the compiler's
    /// `compiler::differentiate::Autodiff`).
    pub fn build_with(
        &self,
        graph: &str,
        input_shapes: &[(String, Vec<usize>)],
        diff: &dyn Differentiator,
    ) -> Result<crate::Graph, FrontError> {
        self.build_inner(graph, input_shapes, Some(diff), false)
    }

    /// [`Model::build_with`] in training mode: every Dropout is active. A graph with dropout (its
    /// own or in a graph it calls) gets one more input, [`crate::ops::DROPOUT_SEED`] of shape [2],
    /// which every dropout reads: feed it `[seed, first]`, integers below 2^24 as f32, a new seed
    /// per step and `first` the batch index of the graph's first sample (the masks are a pure
    /// function of the seed, the dropout's path and the element's place in the whole batch).
    /// [`Model::input_shapes`] does not list it: it is not a declared input.
    pub fn build_training(
        &self,
        graph: &str,
        input_shapes: &[(String, Vec<usize>)],
        diff: &dyn Differentiator,
    ) -> Result<crate::Graph, FrontError> {
        self.build_inner(graph, input_shapes, Some(diff), true)
    }

    fn build_inner(
        &self,
        graph: &str,
        input_shapes: &[(String, Vec<usize>)],
        diff: Option<&dyn Differentiator>,
        training: bool,
    ) -> Result<crate::Graph, FrontError> {
        let g = self.graph(graph)?;
        expand::build_graph(&self.parts, g, input_shapes, diff, training).map_err(|d| {
            let error = d.into_error(&self.file);
            // Every input's shape, declared or given, for the search of sizes that fit.
            let mut shapes = self.input_shapes(graph).unwrap_or_default();
            for (name, s) in input_shapes {
                match shapes.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = s.clone(),
                    None => return error,
                }
            }
            sizes::explain(self, graph, &shapes, diff, training, error)
        })
    }

    /// Build every graph with its declared input shapes: the whole check of a model file (one
    /// with `Grad` nodes needs [`Model::check_with`]).
    pub fn check(&self) -> Result<(), FrontError> {
        for g in self.graph_names() {
            self.build(&g, &[])?;
        }
        Ok(())
    }

    /// [`Model::check`] with the reverse-mode pass that builds `Grad` nodes.
    pub fn check_with(&self, diff: &dyn Differentiator) -> Result<(), FrontError> {
        for g in self.graph_names() {
            self.build_with(&g, &[], diff)?;
        }
        Ok(())
    }

    /// The `training:` section as written (interpreted by the trainer).
    pub fn training(&self) -> Option<&Value> {
        self.parts.training.as_ref()
    }

    /// The standard deviation of the normal initialisation of weights (`init_std`, default 0.02).
    pub fn init_std(&self) -> f64 {
        self.parts.init_std
    }
}
