//! `irdc plan MODEL --graph G`: the compiled plan, as text, JSON or Graphviz DOT.

use super::{parse_input_shape, ModelArgs};
use anyhow::Result;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
    Dot,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// The graph, e.g. generator
    #[arg(long)]
    graph: String,
    /// Override an input's shape, e.g. --input blurred=1x3x720x1280 (repeatable)
    #[arg(long = "input", value_name = "NAME=NxCxHxW")]
    inputs: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Largest storage binding of the target device in MiB (lavapipe: 128; NVIDIA: 2048 or more)
    #[arg(long, default_value_t = 128)]
    max_binding_mib: u64,
    /// List every value of the memory plan, and include the WGSL of each kernel in JSON
    #[arg(long)]
    verbose: bool,
}

pub fn main(args: Args) -> Result<()> {
    let model = args.model.load()?;
    let inputs = args
        .inputs
        .iter()
        .map(|s| parse_input_shape(s))
        .collect::<Result<Vec<_>>>()?;
    let graph = super::build_graph(&model, &args.model.model, &args.graph, &inputs)?;
    let target = compiler::Target {
        max_binding_bytes: args.max_binding_mib << 20,
        ..Default::default()
    };
    let (plan, _) = compiler::compile(&graph, &target)?;
    let out = match args.format {
        Format::Text => compiler::print::text(&plan, args.verbose),
        Format::Json => compiler::print::json(&plan, args.verbose)? + "\n",
        Format::Dot => compiler::print::dot(&plan),
    };
    print!("{out}");
    Ok(())
}
