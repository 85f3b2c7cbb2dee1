//! `irdc grad MODEL --graph G --input X.safetensors --output GRADS.safetensors`: the gradients of
//! a graph's output (its sum where it is not a scalar) with respect to every parameter and every
//! input, computed on the GPU (or lavapipe) by the compiled backward graph. GRADS holds the output
//! under its own name (`loss`) and each gradient under the name of the value it belongs to
//! (`critic.conv1.weight`, `fake`), so it can be held against another framework's gradients.

use super::WeightArgs;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    on: super::GraphArgs,
    /// Inputs, one tensor per graph input, named as the graph names them
    #[arg(long)]
    input: PathBuf,
    /// Where to write the output and the gradients
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    weights: WeightArgs,
    /// The output to differentiate, when the graph has several
    #[arg(long, value_name = "NAME")]
    of: Option<String>,
    #[command(flatten)]
    device: super::DeviceArgs,
}

pub fn main(args: Args) -> Result<()> {
    let (graph, input_file) =
        super::build_from_inputs(&args.on.model, &args.on.graph, &args.input)?;
    let params = args.weights.load(&graph)?;
    let train = super::with_gradients(&graph, args.of.as_deref(), "", true, false)?;
    let (_, written) =
        super::execute_to_file(&train, params, &input_file, &args.output, &args.device)?;
    eprintln!(
        "{}: {} gradients and the output",
        args.on.graph,
        written - 1
    );
    Ok(())
}
