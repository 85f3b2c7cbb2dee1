//! `irdc plan MODEL --graph G [--train]`: the compiled plan, as text, JSON or Graphviz DOT, and
//! the verdict of the plan checker (`compiler::verify`). With `--train`, the plan of a whole step:
//! the graph, then the gradients of its scalar output with respect to every parameter; without
//! `--graph`, the kernels of the training section's whole step (`plan_step.rs`).

use super::{parse_input_shape, ModelArgs};
use anyhow::{bail, Result};

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
    /// The graph, e.g. generator; without it, `--train` plans the training section's whole step
    #[arg(long, required_unless_present = "train")]
    graph: Option<String>,
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
    /// Plan a training step: forward, then the gradients of the output w.r.t. the parameters
    /// (for a loss graph of the training section, only its network's, as `irdc train` does)
    #[arg(long)]
    train: bool,
    /// With --train, the output to differentiate when the graph has several
    #[arg(long, value_name = "NAME", requires = "train")]
    of: Option<String>,
    /// With --train, differentiate w.r.t. every parameter, even for a loss graph of the training
    /// section (whose step trains only one network)
    #[arg(long, requires = "train")]
    all_params: bool,
    /// Do not fuse kernels: one kernel per node of the graph the passes made (to compare with the fused plan); nothing else changes
    #[arg(long)]
    no_fuse: bool,
    /// Leave out a graph pass by name (repeatable; `irdc plan` prints those that ran), e.g. --without winograd
    #[arg(long, value_name = "PASS")]
    without: Vec<String>,
    #[command(flatten)]
    device: super::DeviceArgs,
    /// Plan for a device with cooperative matrices of this side (NVIDIA: 16, with its 32-lane
    /// subgroups; lavapipe of Mesa 26: 8), which the f16 precision's GEMMs then run on
    #[arg(long, value_name = "SIDE")]
    coop_matrix: Option<u32>,
    /// Plan as for a CPU adapter (lavapipe with 8-lane subgroups, as Mesa 25 has): at most one op
    /// computed in a convolution's loads, so a norm and its activation get a kernel of their
    /// own, the convolutions' weights broadcast across subgroup lanes, reductions one subgroup
    /// each, and 3x3 convs as Winograd products (the default plans for a GPU)
    #[arg(long)]
    cpu: bool,
    /// Plan the graph streamed in windows of this side, as `irdc deblur` runs images larger than
    /// it: stages, halos, kernels, and for the --input size the windows and the memory
    #[arg(long, value_name = "PIXELS", conflicts_with = "train")]
    window: Option<usize>,
}

pub fn main(args: Args) -> Result<()> {
    let model = args.model.load()?;
    let inputs = args
        .inputs
        .iter()
        .map(|s| parse_input_shape(s))
        .collect::<Result<Vec<_>>>()?;
    let Some(graph_name) = &args.graph else {
        return super::plan_step::main(&model, &target_of(&args)?, &options_of(&args));
    };
    if let Some(side) = args.window {
        let (target, options) = (target_of(&args)?, options_of(&args));
        let verbose = args.verbose;
        return super::plan_stream::main(
            &model, graph_name, &inputs, side, &target, &options, verbose,
        );
    }
    let mut graph = super::build_graph(&model, &args.model.model, graph_name, &inputs)?;
    if args.train {
        graph = super::training_step(&model, &graph, args.of.as_deref(), args.all_params)?;
    }
    let target = target_of(&args)?;
    let options = super::step_options(
        &model,
        (graph_name, &graph),
        args.train,
        args.all_params,
        options_of(&args),
    )?;
    let (plan, plan_graph) = compiler::compile_with(&graph, &target, &options)?;
    if let Err(errors) = compiler::verify::verify(&plan, &plan_graph) {
        bail!(
            "the plan of {} fails the plan checker (a compiler bug): {}",
            graph.name,
            errors.join("; ")
        );
    }
    let out = match args.format {
        Format::Text => compiler::print::text(&plan, args.verbose),
        Format::Json => compiler::print::json(&plan, args.verbose)? + "\n",
        Format::Dot => compiler::print::dot(&plan),
    };
    print!("{out}");
    // Text is read by a person; JSON and DOT by programs, so the verdict goes to stderr there.
    let verdict = format!(
        "plan check: passed ({} kernels, {} values)",
        plan.kernels.len(),
        plan.values.len()
    );
    match args.format {
        Format::Text => println!("\n{verdict}"),
        _ => eprintln!("{verdict}"),
    }
    Ok(())
}

/// The target the options describe: a GPU's policy on the given limits, or with `--cpu` a CPU
/// adapter's on lavapipe's (8-lane subgroups and 48 storage buffers, as Mesa 25 has); the
/// `IRDC_*` switches apply as they do when a device opens.
fn target_of(args: &Args) -> Result<compiler::Target> {
    let overrides = compiler::Overrides::from_env().map_err(anyhow::Error::msg)?;
    let mut limits = compiler::Limits {
        max_binding_bytes: args.max_binding_mib << 20,
        ..Default::default()
    };
    let kind = match args.cpu {
        true => {
            // lavapipe's own limits (Mesa 25), so a plan fails where the run would.
            limits.subgroup_size = 8;
            limits.max_storage_buffers_per_stage = 48;
            compiler::DeviceKind::Cpu
        }
        false => compiler::DeviceKind::Gpu,
    };
    if let Some(side) = args.coop_matrix {
        if !matches!(side, 8 | 16) {
            bail!("--coop-matrix {side}: wgpu's cooperative matrices are 8x8 or 16x16");
        }
        limits.coop_matrix = side;
        if limits.subgroup_size == 0 {
            limits.subgroup_size = 32;
        }
    }
    Ok(compiler::Target {
        precision: args.device.precision,
        ..compiler::Target::new(limits, kind, &overrides)
    }
    .with_sizes(args.device.sizes.unwrap_or_default()))
}

fn options_of(args: &Args) -> compiler::Options {
    compiler::Options {
        fuse: !args.no_fuse,
        without: args.without.iter().cloned().collect(),
        ..Default::default()
    }
}
