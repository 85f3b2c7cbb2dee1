//! The subcommands, and what several of them share: loading a model with `--set` overrides,
//! parsing `--input NAME=NxCxHxW`, reading inputs and weights from safetensors, feeding a plan,
//! and extending a graph with the gradients of its output.

pub mod blur;
pub mod check;
pub mod checkpoint;
pub mod deblur;
pub mod deblurrer;
pub mod demo;
pub mod eval;
pub mod grad;
pub mod import;
pub mod params;
pub mod plan;
pub mod plan_step;
pub mod plan_stream;
pub mod profile;
mod profile_ranks;
pub mod run;
pub mod train;

use anyhow::{bail, Context, Result};
use ir::{Graph, Op, Tensor};
use runtime::io::{fit_tensors, read_tensors, TensorFile};
use std::collections::HashMap;
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

/// A model file, its `--set` overrides, and one of its graphs (`--graph`), for the commands
/// that work on one graph.
#[derive(clap::Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The graph (an error lists the model's graphs if it has none of this name)
    #[arg(long, default_value = "generator")]
    pub graph: String,
}

impl GraphArgs {
    /// The model loaded with its overrides, and the graph built at its declared shapes with
    /// `inputs` overriding some (`--input NAME=NxCxHxW`).
    pub fn build(&self, inputs: &[(String, Vec<usize>)]) -> Result<(ir::front::Model, Graph)> {
        let model = self.model.load()?;
        let graph = build_graph(&model, &self.model.model, &self.graph, inputs)?;
        Ok((model, graph))
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
/// `Grad` nodes are built by the compiler's reverse-mode pass.
pub fn build_graph(
    model: &ir::front::Model,
    path: &Path,
    graph: &str,
    inputs: &[(String, Vec<usize>)],
) -> Result<ir::Graph> {
    check_graph_name(model, path, graph)?;
    Ok(model.build_with(graph, inputs, &compiler::differentiate::Autodiff)?)
}

/// The input shapes of `graph` taken from a tensor file (`--input X.safetensors`): rank and
/// channels must match the declaration; batch and spatial sizes may differ (the graph's shape
/// rules then check them). Tensors that are not inputs are ignored with a warning.
pub fn input_shapes_from(
    model: &ir::front::Model,
    model_path: &Path,
    graph: &str,
    file_name: &str,
    file: &TensorFile,
) -> Result<Vec<(String, Vec<usize>)>> {
    check_graph_name(model, model_path, graph)?;
    let declared = model.input_shapes(graph)?;
    let mut shapes = Vec::new();
    for (name, want) in &declared {
        let Some(t) = file.get(name) else {
            let have: Vec<&str> = file.tensors.iter().map(|(n, _)| n.as_str()).collect();
            bail!("{file_name}: no tensor named `{name}`, the input of graph {graph} (shape {want:?}); the file holds: {}", have.join(", "));
        };
        if t.shape.len() != want.len() || (want.len() == 4 && t.shape[1] != want[1]) {
            bail!("{file_name}: tensor `{name}` has shape {:?}; graph {graph} takes {want:?} (batch and spatial sizes may differ, rank and channels may not)", t.shape);
        }
        shapes.push((name.clone(), t.shape.clone()));
    }
    for (n, _) in &file.tensors {
        if !declared.iter().any(|(d, _)| d == n) {
            eprintln!(
                "warning: {file_name}: tensor `{n}` is not an input of graph {graph}; ignored"
            );
        }
    }
    Ok(shapes)
}

/// Where a graph's parameters come from: a file, or a seeded initialisation.
#[derive(clap::Args)]
pub struct WeightArgs {
    /// Parameters, named by their node paths (see `irdc params`)
    #[arg(long, conflicts_with = "seed")]
    pub weights: Option<PathBuf>,
    /// Initialise parameters from this seed (docs/spec.md's N(0, 0.02)); the default when no --weights
    #[arg(long)]
    pub seed: Option<u64>,
}

impl WeightArgs {
    /// One tensor per parameter of `graph`, by name.
    pub fn load(&self, graph: &Graph) -> Result<Vec<(String, Tensor<f32>)>> {
        let Some(path) = &self.weights else {
            return Ok(ir::init::init_params(graph, self.seed.unwrap_or(0)));
        };
        let wanted: Vec<(String, Vec<usize>)> = graph
            .params()
            .map(|(_, n)| (n.name.clone(), n.shape.clone()))
            .collect();
        let file = read_tensors(path)?;
        let (taken, unused) = fit_tensors(&path.display().to_string(), &file, &wanted)?;
        if !unused.is_empty() {
            eprintln!(
                "warning: {}: {} tensors are not parameters of graph {} (e.g. `{}`); ignored",
                path.display(),
                unused.len(),
                graph.name,
                unused[0]
            );
        }
        Ok(taken)
    }
}

/// The feeds of a plan compiled from `graph`, whose simplified graph is `plan_graph`: the inputs
/// from `inputs` and the parameters from `params`, only those the plan still reads (the compiler
/// drops values that no output needs, and a plan refuses a feed it does not know).
pub fn plan_feeds(
    plan_graph: &Graph,
    params: Vec<(String, Tensor<f32>)>,
    inputs: &TensorFile,
) -> HashMap<String, Tensor<f32>> {
    let mut params: HashMap<String, Tensor<f32>> = params.into_iter().collect();
    let mut feeds = HashMap::new();
    for node in &plan_graph.nodes {
        let (key, t) = match &node.op {
            Op::Input { name } => (name, inputs.get(name).cloned()),
            Op::Param { .. } => (&node.name, params.remove(&node.name)),
            _ => continue,
        };
        if let Some(t) = t {
            feeds.insert(key.clone(), t);
        }
    }
    feeds
}

/// `graph` extended with the gradients of its output `of` (the only output when `None`; summed
/// when it has several elements) with respect to every parameter whose name starts with
/// `param_prefix` (every parameter when it is empty) and, if `inputs`, every input; with
/// `as_trained`, without the parameters the output is proven not to depend on
/// (`compiler::invariance`), whose gradients the trainer never computes.
/// Its outputs become that output, under its name, then each gradient under the name of the value
/// it belongs to (`critic.conv1.weight`, `fake`), so they can be held against another framework.
pub fn with_gradients(
    graph: &Graph,
    of: Option<&str>,
    param_prefix: &str,
    inputs: bool,
    as_trained: bool,
) -> Result<Graph> {
    let names: Vec<&str> = graph.outputs.iter().map(|(n, _)| n.as_str()).collect();
    let (out_name, out) = match (of, graph.outputs.as_slice()) {
        (Some(want), outs) => outs.iter().find(|(n, _)| n == want).with_context(|| {
            format!(
                "graph {} has no output `{want}`; its outputs: {}",
                graph.name,
                names.join(", ")
            )
        })?,
        (None, [one]) => one,
        (None, _) => bail!(
            "graph {} has several outputs ({}); say which to differentiate with --of NAME",
            graph.name,
            names.join(", ")
        ),
    };
    let wrt: Vec<usize> = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| match n.op {
            Op::Param { .. } => n.name.starts_with(param_prefix),
            Op::Input { .. } => inputs,
            _ => false,
        })
        .map(|(i, _)| i)
        .collect();
    if let Some(&w) = wrt.iter().find(|&&w| graph.nodes[w].name == *out_name) {
        bail!(
            "graph {}: output `{out_name}` has the name of {} `{}`; the gradients file names both the same",
            graph.name,
            if graph.kind(w) == ir::ValueKind::Param { "parameter" } else { "input" },
            graph.nodes[w].name
        );
    }
    let mut g = graph.clone();
    let scalar = compiler::autodiff::sum_to_scalar(&mut g, *out)?;
    let wrt = match as_trained {
        true => compiler::invariance::dependent(&g, scalar, &wrt),
        false => wrt,
    };
    let (mut g, grads) = compiler::autodiff::grad(&g, scalar, &wrt)?;
    g.outputs = vec![(out_name.clone(), *out)];
    for (&w, &d) in wrt.iter().zip(&grads) {
        g.outputs.push((graph.nodes[w].name.clone(), d));
    }
    g.name = format!("{}.train", graph.name);
    Ok(g)
}

/// The training step `plan --train` and `profile --train` show: `graph` with the gradients of
/// its output `of`. For a loss graph of the model's training section, only w.r.t. the network its
/// step trains (`critic.` for `critic_loss`), as `irdc train` does, so that the plan is the
/// trainer's (said on stderr); for any other graph, or with `all_params`, every parameter.
pub fn training_step(
    model: &ir::front::Model,
    graph: &Graph,
    of: Option<&str>,
    all_params: bool,
) -> Result<Graph> {
    let prefix = match all_params {
        true => String::new(),
        false => (model.training_spec()?)
            .trained_prefix(&graph.name)
            .unwrap_or_default(),
    };
    // As the trainer does (`runtime::train::bound::loss_graph`): a term weighted 0 goes before
    // differentiation, with the networks only it used.
    let (graph, _) = compiler::fold::zero_weighted_terms(graph);
    let step = with_gradients(&graph, of, &prefix, false, true)?;
    if !prefix.is_empty() {
        eprintln!(
            "--train: gradients w.r.t. the `{prefix}*` parameters only, as in `irdc train`'s \
             step (--all-params for every parameter)"
        );
    }
    Ok(step)
}

/// The options `irdc train` compiles the step of `graph` with (`runtime::train::bound::step_options`),
/// for the step of a loss graph of the training section (`--train` without `--all-params`;
/// `name` is the graph's name in the model): what its frozen parameters alone give runs once,
/// and the generator's step computes what the critic's updates cannot change first.
pub fn step_options(
    model: &ir::front::Model,
    (name, graph): (&str, &Graph),
    train: bool,
    all_params: bool,
    options: compiler::Options,
) -> Result<compiler::Options> {
    if !train || all_params {
        return Ok(options);
    }
    let spec = model.training_spec()?;
    if spec.trained_prefix(name).is_none() {
        return Ok(options);
    }
    let step = runtime::train::bound::step_options(&spec, graph, name == spec.generator_loss);
    Ok(compiler::Options {
        frozen: step.frozen,
        late: step.late,
        ..options
    })
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

/// The progress bar of a training run (`irdc train`, `irdc demo`) over `steps` steps: with a
/// clock that ticks while a long step (the first, compiling) runs; hidden where `shown` is false
/// (the other ranks of a job).
pub fn training_bar(steps: u64, shown: bool) -> indicatif::ProgressBar {
    if !shown {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_secs(1));
    bar
}

/// The progress line until a run's first step (`step`, 1-based) ends: that step is also where
/// the driver compiles the step's kernels (lavapipe compiles each in the first submit that runs
/// it), which a user would otherwise take for a hang.
pub fn first_step(step: u64) -> String {
    format!(
        "step {step} also compiles the kernels (on a CPU a minute or more; later runs reuse the cache)"
    )
}

/// The progress line while step `step` validates; the first validation also compiles the
/// generator at the held-out images' size.
pub fn validating(step: u64, first: bool) -> String {
    let compiles = match first {
        true => " (the first validation also compiles its kernels)",
        false => "",
    };
    format!("step {step}: validating{compiles}")
}

pub fn format_count(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Load the model, read the input file, and build `graph` at the shapes of the file's tensors:
/// the first half of `irdc run` and `irdc grad`.
pub fn build_from_inputs(
    model_args: &ModelArgs,
    graph: &str,
    input: &Path,
) -> Result<(Graph, TensorFile)> {
    let model = model_args.load()?;
    let input_file = runtime::io::read_tensors(input)?;
    let input_name = input.display().to_string();
    let shapes = input_shapes_from(&model, &model_args.model, graph, &input_name, &input_file)?;
    Ok((
        build_graph(&model, &model_args.model, graph, &shapes)?,
        input_file,
    ))
}

/// How the commands that compute on the GPU use it.
#[derive(clap::Args)]
pub struct DeviceArgs {
    /// What the convolutions multiply in: f32, or f16 (operands rounded to f16, sums kept in
    /// f32; on cooperative matrices where the adapter has them); f16 needs shader-f16
    #[arg(long, default_value = "f32", value_name = "f32|f16")]
    pub precision: compiler::Precision,
    /// Kernels specialised to each image size (`specialised`: faster, but compiled anew for
    /// every size) or taking sizes as data (`data`: one set of pipelines for every size). The
    /// default: `irdc deblur` takes them as data when its images have more than one size;
    /// everything else specialises
    #[arg(long, value_name = "specialised|data")]
    pub sizes: Option<compiler::Sizes>,
}

impl DeviceArgs {
    /// The GPU (see `runtime::Gpu::new`) at the precision asked for.
    pub fn open(&self) -> Result<runtime::Gpu> {
        self.open_at(0)
    }

    /// [`DeviceArgs::open`] for the `local`-th process of an MPI job on this machine (see
    /// `runtime::Gpu::for_local_rank`).
    pub fn open_at(&self, local: usize) -> Result<runtime::Gpu> {
        let gpu = runtime::Gpu::for_local_rank(local)?.with_precision(self.precision)?;
        let gpu = gpu.with_sizes(self.sizes.unwrap_or_default());
        // Only past f32: `target()` settles the conv tiles (a timing run on a first start).
        if self.precision != compiler::Precision::F32 {
            if let Some(summary) = gpu.target().precision_summary() {
                eprintln!("{summary}");
            }
        }
        Ok(gpu)
    }
}

/// Compile `graph` for the GPU, feed it, run it and write its outputs to `output`: the second
/// half of `irdc run` and `irdc grad`. Returns the kernel count and the outputs written.
pub fn execute_to_file(
    graph: &Graph,
    params: Vec<(String, Tensor<f32>)>,
    inputs: &TensorFile,
    output: &Path,
    device: &DeviceArgs,
) -> Result<(usize, usize)> {
    let gpu = device.open()?;
    eprintln!("{}", gpu.describe());
    let started = std::time::Instant::now();
    let (plan, plan_graph) = compiler::compile(graph, &gpu.target())?;
    let feeds = plan_feeds(&plan_graph, params, inputs);
    let compiled = std::time::Instant::now();
    let outputs = runtime::execute(&gpu, &plan, &feeds).context("running the plan")?;
    let ran = std::time::Instant::now();
    runtime::io::write_tensors(output, &outputs, &HashMap::new())?;
    eprintln!(
        "{}: {} kernels; compile {:.2} s, run {:.2} s; wrote {}",
        graph.name,
        plan.kernels.len(),
        (compiled - started).as_secs_f64(),
        (ran - compiled).as_secs_f64(),
        output.display()
    );
    Ok((plan.kernels.len(), outputs.len()))
}

/// A size in bytes from `512M`, `2G`, `1.5G` or a plain number (K, M, G: powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'B'),
    };
    let scale: u64 = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        _ => {
            return Err(format!(
                "`{text}`: a size is a number with K, M or G, e.g. 512M or 2G"
            ))
        }
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok((v * scale as f64) as u64),
        _ => Err(format!(
            "`{text}`: a size is a positive number with K, M or G, e.g. 512M or 2G"
        )),
    }
}
