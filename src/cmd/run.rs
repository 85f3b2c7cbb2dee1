//! `irdc run MODEL --graph G --input X.safetensors --output Y.safetensors`: execute a graph.

use super::ModelArgs;
use anyhow::{bail, Context, Result};
use ir::Tensor;
use runtime::io::{fit_tensors, read_tensors, write_tensors};
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
    /// Parameters, named by their node paths (see `irdc params`)
    #[arg(long, conflicts_with = "seed")]
    weights: Option<PathBuf>,
    /// Initialise parameters from this seed (SPEC.md's N(0, 0.02)); the default when no --weights
    #[arg(long)]
    seed: Option<u64>,
    /// Save the parameters used (e.g. the seeded ones) to this file
    #[arg(long)]
    save_weights: Option<PathBuf>,
}

pub fn main(args: Args) -> Result<()> {
    let model = args.model.load()?;
    let input_name = args.input.display().to_string();
    let input_file = read_tensors(&args.input)?;

    // The file's shapes become the graph's input shapes: rank and channels must match the
    // declaration; batch and spatial sizes may differ (the graph's shape rules then check them).
    super::check_graph_name(&model, &args.model.model, &args.graph)?;
    let declared = model.input_shapes(&args.graph)?;
    let mut shapes = Vec::new();
    for (name, want) in &declared {
        let Some(t) = input_file.get(name) else {
            let have: Vec<&str> = input_file.tensors.iter().map(|(n, _)| n.as_str()).collect();
            bail!("{input_name}: no tensor named `{name}`, the input of graph {} (shape {want:?}); the file holds: {}", args.graph, have.join(", "));
        };
        if t.shape.len() != want.len() || (want.len() == 4 && t.shape[1] != want[1]) {
            bail!("{input_name}: tensor `{name}` has shape {:?}; graph {} takes {want:?} (batch and spatial sizes may differ, rank and channels may not)", t.shape, args.graph);
        }
        shapes.push((name.clone(), t.shape.clone()));
    }
    for (n, _) in &input_file.tensors {
        if !declared.iter().any(|(d, _)| d == n) {
            eprintln!(
                "warning: {input_name}: tensor `{n}` is not an input of graph {}; ignored",
                args.graph
            );
        }
    }
    let graph = super::build_graph(&model, &args.model.model, &args.graph, &shapes)?;

    let wanted: Vec<(String, Vec<usize>)> = graph
        .params()
        .map(|(_, n)| (n.name.clone(), n.shape.clone()))
        .collect();
    let params = match &args.weights {
        Some(path) => {
            let file = read_tensors(path)?;
            let (taken, unused) = fit_tensors(&path.display().to_string(), &file, &wanted)?;
            if !unused.is_empty() {
                eprintln!(
                    "warning: {}: {} tensors are not parameters of graph {} (e.g. `{}`); ignored",
                    path.display(),
                    unused.len(),
                    args.graph,
                    unused[0]
                );
            }
            taken
        }
        None => ir::init::init_params(&graph, args.seed.unwrap_or(0)),
    };
    if let Some(path) = &args.save_weights {
        write_tensors(path, &params, &HashMap::new())?;
    }

    let gpu = runtime::Gpu::new()?;
    eprintln!("{}", gpu.describe());
    let started = Instant::now();
    let (plan, _) = compiler::compile(&graph, &gpu.target())?;
    let mut feeds: HashMap<String, Tensor<f32>> = params.into_iter().collect();
    for (name, _) in &shapes {
        feeds.insert(
            name.clone(),
            input_file.get(name).expect("checked above").clone(),
        );
    }
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
