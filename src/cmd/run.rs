//! `irdc run MODEL --graph G --input X.safetensors --output Y.safetensors`: execute a graph.

use super::WeightArgs;
use anyhow::Result;
use runtime::io::write_tensors;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    on: super::GraphArgs,
    /// Inputs, one tensor per graph input, named as the graph names them
    #[arg(long)]
    input: PathBuf,
    /// Where to write the graph's outputs
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    weights: WeightArgs,
    /// Save the parameters used (e.g. the seeded ones) to this file
    #[arg(long)]
    save_weights: Option<PathBuf>,
    #[command(flatten)]
    device: super::DeviceArgs,
}

pub fn main(args: Args) -> Result<()> {
    let (graph, input_file) =
        super::build_from_inputs(&args.on.model, &args.on.graph, &args.input)?;
    let params = args.weights.load(&graph)?;
    if let Some(path) = &args.save_weights {
        write_tensors(path, &params, &HashMap::new())?;
    }
    super::execute_to_file(&graph, params, &input_file, &args.output, &args.device)?;
    Ok(())
}
