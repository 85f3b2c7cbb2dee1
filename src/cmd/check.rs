//! `irdc check MODEL`: validate the model (its graphs and its training section) and summarise
//! each graph.

use super::{format_count, ModelArgs};
use anyhow::Result;
use std::fmt::Write;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
}

pub fn main(args: Args) -> Result<()> {
    let model = args.model.load()?;
    // The training section as `irdc train` reads it, so what train would refuse, check does.
    model.training_spec()?;
    // Every graph builds before anything is printed: `ok` means the whole file.
    let mut summary = String::new();
    for name in model.graph_names() {
        let graph = super::build_graph(&model, &args.model.model, &name, &[])?;
        let params: usize = graph.params().map(|(_, n)| ir::numel(&n.shape)).sum();
        let _ = writeln!(
            summary,
            "  {name}: {} nodes, {} parameter tensors, {} parameters",
            graph.nodes.len(),
            graph.params().count(),
            format_count(params)
        );
        for (_, node) in graph.inputs() {
            let _ = writeln!(summary, "    input  {:<12} {:?}", node.name, node.shape);
        }
        for (out, id) in &graph.outputs {
            let _ = writeln!(
                summary,
                "    output {:<12} {:?}",
                out, graph.nodes[*id].shape
            );
        }
    }
    print!("{}: ok\n{summary}", args.model.model.display());
    Ok(())
}
