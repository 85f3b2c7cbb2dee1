//! `irdc import MODEL.onnx --out MODEL.ron`: an ONNX model as a model file, with its
//! initialisers in `MODEL.safetensors` beside it (the importer is `crate::import`).

use crate::import::{import, GRAPH};
use anyhow::{bail, Result};
use runtime::io::write_tensors;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model
    onnx: PathBuf,
    /// The model file to write (RON); the parameters go to the same name with .safetensors
    #[arg(long)]
    out: PathBuf,
    /// The shape of an input whose sizes the model leaves open, e.g. x=1x3x256x256 (repeatable)
    #[arg(long = "input", value_name = "NAME=NxCxHxW")]
    inputs: Vec<String>,
    /// Replace the model file and the parameters file if they exist
    #[arg(long)]
    force: bool,
}

pub fn main(args: Args) -> Result<()> {
    let shapes = (args.inputs.iter())
        .map(|s| super::parse_input_shape(s))
        .collect::<Result<Vec<_>>>()?;
    let weights = args.out.with_extension("safetensors");
    if args.out.extension().is_some_and(|e| e == "safetensors") {
        bail!(
            "--out {}: give the model file's name, e.g. model.ron",
            args.out.display()
        );
    }
    for path in [&args.out, &weights] {
        if path.exists() && !args.force {
            bail!("{} exists; pass --force to replace it", path.display());
        }
    }
    let weights_name = file_name(&weights);
    let header = format!(
        "Imported by `irdc import` from {}; parameters in {weights_name}:\n  irdc run {} --graph \
         {GRAPH} --weights {} --input X.safetensors --output Y.safetensors",
        file_name(&args.onnx),
        args.out.display(),
        weights.display()
    );
    let imported = import(&args.onnx, &shapes, &header)?;
    let meta = HashMap::from([("source".to_string(), args.onnx.display().to_string())]);
    write_tensors(&weights, &imported.tensors, &meta)?;
    write_atomically(&args.out, &imported.ron)?;
    eprintln!(
        "wrote {} (graph {GRAPH}, {} nodes) and {} ({} tensor{})",
        args.out.display(),
        imported.nodes,
        weights.display(),
        imported.tensors.len(),
        if imported.tensors.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Through a temporary file and a rename, as the tensor files are written, so a failed write
/// leaves no half model file.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("ron.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}
