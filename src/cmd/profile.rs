//! `irdc profile MODEL --graph G [--train]`: compile a graph (with `--train`, a whole training
//! step, as `irdc plan --train` plans it), feed it seeded random inputs and parameters, run it once
//! to warm up, then `--repeat` times, and show where the time goes: wall time per run, then per
//! kernel its time, FLOPs, bytes, achieved GFLOP/s and GB/s and the IR nodes it carries out,
//! largest first, and a total per kernel template. FLOP and byte counts: `compiler::cost`.

use super::{parse_input_shape, WeightArgs};
use anyhow::{bail, Context, Result};
use compiler::cost::{kernel_cost, Cost};
use runtime::io::TensorFile;
use runtime::profile::Timing;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    on: super::GraphArgs,
    /// Override an input's shape, e.g. --input blurred=1x3x256x256 (repeatable)
    #[arg(long = "input", value_name = "NAME=NxCxHxW")]
    inputs: Vec<String>,
    /// Profile a training step: forward, then the gradients of the output w.r.t. the parameters
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
    /// Timed runs after the warm-up (the median is reported)
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Time each kernel as its own submit-and-wait on the host clock, even where the GPU has
    /// timestamp queries (to compare the two)
    #[arg(long)]
    host_timed: bool,
    /// Under mpirun, with --train: about how many bytes of gradients each all-reduce takes
    /// (as `irdc train --bucket`)
    #[arg(long, value_name = "SIZE", value_parser = super::parse_bytes, requires = "train")]
    bucket: Option<u64>,
    /// Also write the whole profile as JSON to this file
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    #[command(flatten)]
    weights: WeightArgs,
    #[command(flatten)]
    device: super::DeviceArgs,
}

/// One kernel's measurements.
struct Row<'a> {
    /// In the plan (`irdc plan`'s numbering).
    index: usize,
    kernel: &'a compiler::Kernel,
    runs_s: &'a [f64],
    seconds: f64,
    cost: Cost,
}

/// Under `mpirun -np K` (docs/mpi.md) every rank profiles on its own adapter, and with `--train`
/// also exchanges its gradients as a data-parallel step does (`profile_ranks.rs`); rank 0 reports.
pub fn main(args: Args) -> Result<()> {
    let job = crate::mpi::start()?;
    let result = profile(args, job.as_ref());
    if let (Err(e), Some(job)) = (&result, &job) {
        job.fail(&crate::chain(e));
    }
    result
}

fn profile(args: Args, job: Option<&std::rc::Rc<crate::mpi::Mpi>>) -> Result<()> {
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let shapes = args
        .inputs
        .iter()
        .map(|s| parse_input_shape(s))
        .collect::<Result<Vec<_>>>()?;
    let (model, mut graph) = args.on.build(&shapes)?;
    let params = args.weights.load(&graph)?;
    if args.train {
        graph = super::training_step(&model, &graph, args.of.as_deref(), args.all_params)?;
    }
    let gpu = match job {
        Some(j) => args.device.open_at(j.local())?,
        None => args.device.open()?,
    };
    let leader = job.is_none_or(|j| runtime::train::Collective::rank(&**j) == 0);
    if leader {
        eprintln!("{}", gpu.describe());
    }
    let options = super::step_options(
        &model,
        (&args.on.graph, &graph),
        args.train,
        args.all_params,
        Default::default(),
    )?;
    let (plan, plan_graph) = compiler::compile_with(&graph, &gpu.target(), &options)?;
    // The random inputs only once the plan has accepted their shapes: a size no device can
    // hold is refused here, not by the allocator.
    let seed = args.weights.seed.unwrap_or(0);
    let inputs = TensorFile {
        tensors: (graph.inputs().enumerate())
            .map(|(i, (_, n))| {
                let t = runtime::profile::random_input(&n.shape, seed, i as u64);
                (n.name.clone(), t)
            })
            .collect(),
        metadata: HashMap::new(),
    };

    let exe = runtime::Executable::new(&gpu, &plan)?;
    for (name, t) in super::plan_feeds(&plan_graph, params, &inputs) {
        let v = (plan.values.iter())
            .find(|v| v.name == name && v.kind != ir::ValueKind::Computed)
            .with_context(|| format!("feed `{name}` is not a source of the plan"))?;
        if !v.pieces.is_empty() {
            exe.write(v.node, &t.data)?;
        }
    }
    let profile = exe
        .profile(args.repeat, args.host_timed)
        .context("profiling the plan")?;

    // The prologue (run once, `compiler::prologue`) is not timed: the rows are the rest, by
    // their index in the plan.
    let once = plan.prologue;
    let mut rows: Vec<Row> = (plan.kernels.iter().enumerate().skip(once))
        .map(|(index, kernel)| Row {
            index,
            kernel,
            runs_s: &profile.kernels_s[index - once],
            seconds: median(&profile.kernels_s[index - once]),
            cost: kernel_cost(&plan_graph, kernel),
        })
        .collect();
    rows.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    let total: f64 = rows.iter().map(|r| r.seconds).sum();
    let templates = per_template(&rows);
    let wall = (median(&profile.runs_s), min(&profile.runs_s));
    let bucket = (args.bucket).unwrap_or_else(|| gpu.target().policy.gradient_bucket_bytes);
    let exchanged = match job.filter(|_| args.train) {
        Some(j) => Some(super::profile_ranks::exchanged(
            &gpu,
            &exe,
            &plan,
            j,
            (args.repeat, wall.0),
            bucket,
        )?),
        None => None,
    };
    if !leader {
        return Ok(());
    }

    print!(
        "{}",
        text(
            (&graph.name, once),
            &profile.timing,
            args.repeat,
            wall,
            total,
            &rows,
            &templates
        )
    );
    if let Some(e) = &exchanged {
        println!("\ndata-parallel step: {}", e.line());
    }
    if let Some(path) = &args.json {
        let mut doc = to_json(
            &graph.name,
            &gpu.describe(),
            &profile,
            args.repeat,
            wall,
            total,
            &rows,
            &templates,
        );
        if let Some(e) = &exchanged {
            doc["data_parallel"] = e.json();
        }
        let out = serde_json::to_string_pretty(&doc)? + "\n";
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// (template, kernels, seconds, cost), largest time first.
fn per_template(rows: &[Row]) -> Vec<(String, usize, f64, Cost)> {
    let mut by: Vec<(String, usize, f64, Cost)> = Vec::new();
    for r in rows {
        let i = match by.iter().position(|t| t.0 == r.kernel.template) {
            Some(i) => i,
            None => {
                by.push((r.kernel.template.clone(), 0, 0.0, Cost::default()));
                by.len() - 1
            }
        };
        let t = &mut by[i];
        t.1 += 1;
        t.2 += r.seconds;
        t.3.flops += r.cost.flops;
        t.3.bytes += r.cost.bytes;
    }
    by.sort_by(|a, b| b.2.total_cmp(&a.2));
    by
}

/// Achieved rate in units per second / 1e9; 0 for a time too short to measure.
fn giga_per_s(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds * 1e-9
    } else {
        0.0
    }
}

fn share(seconds: f64, total: f64) -> f64 {
    if total > 0.0 {
        seconds / total
    } else {
        0.0
    }
}

fn text(
    (graph, once): (&str, usize),
    timing: &Timing,
    repeat: usize,
    (median_s, min_s): (f64, f64),
    total: f64,
    rows: &[Row],
    templates: &[(String, usize, f64, Cost)],
) -> String {
    let mut s = format!(
        "{graph}: {} kernels; kernel times: {}; {repeat} runs after a warm-up\n\
         wall time per run: median {median_s:.4} s, min {min_s:.4} s; kernels' median times sum to {total:.4} s\n\n",
        rows.len(),
        timing.describe(),
    );
    if once > 0 {
        s += &format!(
            "(and {once} kernels of what frozen parameters and constants alone give, run once before the first run and not timed)\n\n"
        );
    }
    s += "  time ms   share    GFLOP     MB  GFLOP/s    GB/s  kernel: nodes\n";
    for r in rows {
        s += &format!(
            "{:9.3} {:6.1}% {:8.3} {:6.1} {:8.2} {:7.2}  {}: {}\n",
            r.seconds * 1e3,
            100.0 * share(r.seconds, total),
            r.cost.flops as f64 * 1e-9,
            r.cost.bytes as f64 * 1e-6,
            giga_per_s(r.cost.flops, r.seconds),
            giga_per_s(r.cost.bytes, r.seconds),
            r.kernel.name,
            r.kernel.nodes.join(", ")
        );
    }
    s += "\nper template:\n  time ms   share    GFLOP  GFLOP/s  kernels  template\n";
    for (name, count, seconds, cost) in templates {
        s += &format!(
            "{:9.3} {:6.1}% {:8.3} {:8.2} {:8}  {name}\n",
            seconds * 1e3,
            100.0 * share(*seconds, total),
            cost.flops as f64 * 1e-9,
            giga_per_s(cost.flops, *seconds),
            count
        );
    }
    s
}

#[allow(clippy::too_many_arguments)]
fn to_json(
    graph: &str,
    adapter: &str,
    profile: &runtime::profile::Profile,
    repeat: usize,
    (median_s, min_s): (f64, f64),
    total: f64,
    rows: &[Row],
    templates: &[(String, usize, f64, Cost)],
) -> serde_json::Value {
    let kernels: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "index": r.index,
                "name": r.kernel.name,
                "template": r.kernel.template,
                "nodes": r.kernel.nodes,
                "seconds": r.seconds,
                "runs_s": r.runs_s,
                "flops": r.cost.flops,
                "bytes": r.cost.bytes,
                "gflop_per_s": giga_per_s(r.cost.flops, r.seconds),
                "gb_per_s": giga_per_s(r.cost.bytes, r.seconds),
                "share": share(r.seconds, total),
            })
        })
        .collect();
    let templates: Vec<_> = templates
        .iter()
        .map(|(name, count, seconds, cost)| {
            json!({
                "template": name,
                "kernels": count,
                "seconds": seconds,
                "flops": cost.flops,
                "bytes": cost.bytes,
                "share": share(*seconds, total),
            })
        })
        .collect();
    json!({
        "graph": graph,
        "adapter": adapter,
        "timing": match profile.timing {
            Timing::GpuTimestamps => "gpu_timestamps",
            Timing::CpuTimed => "cpu_timed",
        },
        "repeat": repeat,
        "wall_s": { "median": median_s, "min": min_s, "runs": profile.runs_s },
        "kernels_total_s": total,
        "kernels": kernels,
        "templates": templates,
    })
}

pub(super) fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

fn min(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::INFINITY, f64::min)
}
