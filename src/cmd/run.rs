//! `irdc run MODEL --graph G --input X.safetensors --output Y.safetensors`: execute a graph.

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
    /// The graph, e.g. generator
    #[arg(long)]
    graph: String,
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
    if let Some(path) = &args.save_weights {
        write_tensors(path, &params, &HashMap::new())?;
    }

    let gpu = runtime::Gpu::new()?;
    eprintln!("{}", gpu.describe());
    let started = Instant::now();
    let (plan, plan_graph) = compiler::compile(&graph, &gpu.target())?;
    let feeds = super::plan_feeds(&plan_graph, params, &input_file);
    let compiled = Instant::now();
    let outputs = runtime::execute(&gpu, &plan, &feeds).context("running the plan")?;
    let ran = Instant::now();
    write_tensors(&args.output, &outputs, &HashMap::new())?;
    eprintln!(
        "{}: {} kernels; compile {:.2} s, run {:.2} s; wrote {}",
        args.graph,
        plan.kernels.len(),
        (compiled - started).as_secs_f64(),
        (ran - compiled).as_secs_f64(),
        args.output.display()
    );
    Ok(())
}
