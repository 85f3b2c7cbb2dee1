//! `irdc plan MODEL --graph G --window PIXELS [--input NAME=1x3xHxW]`: the streamed plan
//! `irdc deblur` runs images larger than the window with: its stages, each one's halo, kernels
//! and device memory, and for the input's size the windows and the bytes the host keeps; with
//! `--verbose`, each stage's plan.

use anyhow::{anyhow, bail, Result};
use compiler::stream::StreamPlan;

/// Print the stream plan of `graph_name` for windows of `side` (or the least its halos allow),
/// for an image of the input's size.
pub fn main(
    model: &ir::front::Model,
    graph_name: &str,
    inputs: &[(String, Vec<usize>)],
    side: usize,
    target: &compiler::Target,
    options: &compiler::Options,
    verbose: bool,
) -> Result<()> {
    let declared = model.input_shapes(graph_name)?;
    let [(input, shape)] = &declared[..] else {
        bail!(
            "--window plans a graph of one input (an image); {graph_name} has {}",
            declared.len()
        );
    };
    if let Some((name, _)) = inputs.iter().find(|(name, _)| name != input) {
        bail!("--input {name}: graph {graph_name} has no input `{name}`; its image is `{input}`");
    }
    let image = inputs.first().map_or(shape.clone(), |(_, s)| s.clone());
    let build = |s: usize| {
        let shapes = [(input.clone(), vec![image[0], image[1], s, s])];
        (model.build_with(graph_name, &shapes, &compiler::differentiate::Autodiff))
            .map_err(|e| e.to_string())
    };
    let plan = compiler::stream::plan_fitted(&build, side).map_err(|e| anyhow!(e))?;
    let compiled = (plan.stages.iter())
        .map(|s| Ok(compiler::compile_with(&s.graph, target, options)?.0))
        .collect::<Result<Vec<_>>>()?;
    // As `irdc deblur` does, the image is padded to the sides the windows need.
    let padded = [image[2], image[3]].map(|side| side.next_multiple_of(plan.align));
    print!("{}", text(&plan, &compiled, padded));
    if verbose {
        for (k, p) in compiled.iter().enumerate() {
            println!("\nstage {k}:\n{}", compiler::print::text(p, false));
        }
    }
    Ok(())
}

fn text(plan: &StreamPlan, compiled: &[compiler::Plan], [h, w]: [usize; 2]) -> String {
    let mb = |b: u64| b as f64 / 1e6;
    let fits = plan.fits(h, w);
    let mut out = format!(
        "stream plan `{}`: windows of {}x{} (sides multiples of {}), {} stages, {} kernels\n",
        plan.graph.name,
        plan.window[1],
        plan.window[0],
        plan.align,
        plan.stages.len(),
        compiled.iter().map(|p| p.kernels.len()).sum::<usize>()
    );
    out += &match fits {
        true => format!(
            "for a {w}x{h} image (padded to multiples of {}):\n",
            plan.align
        ),
        false => format!(
            "a {w}x{h} image does not fit these windows (it runs whole); windows per stage are \
             not shown\n"
        ),
    };
    out += "stage  nodes  kernels  halo  windows  device MB  writes\n";
    for (k, (s, p)) in plan.stages.iter().zip(compiled).enumerate() {
        let windows = match fits {
            true => plan.windows(k, h, w).to_string(),
            false => "-".into(),
        };
        let writes: Vec<&str> = (s.writes.iter())
            .map(|&v| plan.graph.nodes[v].name.as_str())
            .collect();
        out += &format!(
            "{k:>5}  {:>5}  {:>7}  {:>4}  {windows:>7}  {:>9.1}  {}\n",
            s.graph.nodes.len(),
            p.kernels.len(),
            s.halo,
            mb(p.memory.peak_bytes),
            writes.join(", ")
        );
    }
    let planes = (0..=plan.stages.len())
        .map(|k| plan.planes_before(k).count())
        .sum::<usize>();
    let device = compiled
        .iter()
        .map(|p| p.memory.peak_bytes)
        .max()
        .unwrap_or(0);
    out += &format!(
        "plane ops on the host between stages: {planes}\ndevice memory at a time: {:.1} MB (the \
         largest stage)\n",
        mb(device)
    );
    if fits {
        out += &format!(
            "host memory at most: {:.1} MB (values kept between stages)\n",
            mb(plan.host_bytes(h, w))
        );
    }
    out
}
