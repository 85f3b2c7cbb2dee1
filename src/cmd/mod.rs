//! The subcommands, and what several of them share: loading a model with `--set` overrides and
//! parsing `--input NAME=NxCxHxW`.

pub mod check;
pub mod demo;
pub mod params;
pub mod plan;
pub mod run;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The model file and its `--set NAME=VALUE` overrides, shared by every subcommand.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// The model file (RON), e.g. models/ird_gan.ron
    pub model: PathBuf,
    /// Override a model parameter, e.g. --set N=8 (repeatable)
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
}

impl ModelArgs {
    pub fn load(&self) -> Result<ir::front::Model> {
        let overrides = self
            .set
            .iter()
            .map(|s| ir::front::parse_set(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ir::front::load(&self.model, &overrides)?)
    }
}

/// Parse `NAME=NxCxHxW` (any rank, `x`-separated).
pub fn parse_input_shape(arg: &str) -> Result<(String, Vec<usize>)> {
    let (name, dims) = arg.split_once('=').with_context(|| {
        format!("--input `{arg}`: expected NAME=NxCxHxW, e.g. blurred=1x3x256x256")
    })?;
    let shape = dims
        .split('x')
        .map(|d| d.trim().parse::<usize>().ok().filter(|&d| d > 0))
        .collect::<Option<Vec<_>>>()
        .with_context(|| {
            format!("--input `{arg}`: `{dims}` is not a shape of positive sizes like 1x3x256x256")
        })?;
    if name.is_empty() {
        bail!("--input `{arg}`: the input name is missing, e.g. blurred=1x3x256x256");
    }
    Ok((name.to_string(), shape))
}

/// Build one graph of a model, checking the graph name first so the error can list the graphs.
pub fn build_graph(
    model: &ir::front::Model,
    path: &Path,
    graph: &str,
    inputs: &[(String, Vec<usize>)],
) -> Result<ir::Graph> {
    check_graph_name(model, path, graph)?;
    Ok(model.build(graph, inputs)?)
}

pub fn check_graph_name(model: &ir::front::Model, path: &Path, graph: &str) -> Result<()> {
    let names = model.graph_names();
    if !names.iter().any(|g| g == graph) {
        bail!(
            "{}: no graph named `{graph}`; the model has: {}",
            path.display(),
            names.join(", ")
        );
    }
    Ok(())
}

pub fn format_count(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
