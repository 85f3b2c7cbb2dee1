//! `irdc grad MODEL --graph G --input X.safetensors --output GRADS.safetensors`: the gradients of
//! a graph's output (its sum where it is not a scalar) with respect to every parameter and every
//! input, computed on the GPU (or lavapipe) by the compiled backward graph. GRADS holds the output
//! under its own name (`loss`) and each gradient under the name of the value it belongs to
//! (`critic.conv1.weight`, `fake`), so it can be held against another framework's gradients.

use super::{ModelArgs, WeightArgs};
use anyhow::{Context, Result};
use runtime::io::{read_tensors, write_tensors};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// The graph, e.g. critic_loss
    #[arg(long)]
    graph: String,
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
}

pub fn main(args: Args) -> Result<()> {
    let model = args.model.load()?;
    let input_name = args.input.display().to_string();
    let input_file = read_tensors(&args.input)?;
    let shapes = super::input_shapes_from(
        &model,
        &args.model.model,
        &args.graph,
        &input_name,
        &input_file,
    )?;
    let graph = super::build_graph(&model, &args.model.model, &args.graph, &shapes)?;
    let params = args.weights.load(&graph)?;
    let train = super::with_gradients(&graph, args.of.as_deref(), true)?;

    let gpu = runtime::Gpu::new()?;
    eprintln!("{}", gpu.describe());
    let started = Instant::now();
    let (plan, plan_graph) = compiler::compile(&train, &gpu.target())?;
    let feeds = super::plan_feeds(&plan_graph, params, &input_file);
    let compiled = Instant::now();
    let outputs = runtime::execute(&gpu, &plan, &feeds).context("running the plan")?;
    let ran = Instant::now();
    write_tensors(&args.output, &outputs, &HashMap::new())?;
    eprintln!(
        "{}: {} gradients, {} kernels; compile {:.2} s, run {:.2} s; wrote {}",
        args.graph,
        outputs.len() - 1,
        plan.kernels.len(),
        (compiled - started).as_secs_f64(),
        (ran - compiled).as_secs_f64(),
        args.output.display()
    );
    Ok(())
}
