//! `irdc params MODEL --graph G`: one line per parameter, then the total.

use super::format_count;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    on: super::GraphArgs,
}

pub fn main(args: Args) -> Result<()> {
    let (_, graph) = args.on.build(&[])?;
    let width = graph.params().map(|(_, n)| n.name.len()).max().unwrap_or(0);
    let mut total = 0;
    for (_, node) in graph.params() {
        let count = ir::numel(&node.shape);
        total += count;
        let shape = node
            .shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x");
        println!(
            "{:<width$}  {:<16} {:>12}",
            node.name,
            shape,
            format_count(count)
        );
    }
    println!(
        "total: {} parameters in {} tensors",
        format_count(total),
        graph.params().count()
    );
    Ok(())
}
