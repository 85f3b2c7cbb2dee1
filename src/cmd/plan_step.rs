//! `irdc plan MODEL --train` without `--graph`: the kernels of one whole training step as
//! `irdc train` runs it (`runtime::train::StepGraphs`): with a critic, G's forward, the critic's
//! `critic_steps` updates and the generator's; on the content loss (a warm-up step, or training
//! without a critic), that loss's graph; and one optimizer dispatch per update, plus the moving
//! average's. Each graph's plan passes the plan checker first. Kernels that depend only on frozen
//! parameters (`compiler::prologue`) run once, not every step, and are counted apart.

use anyhow::{bail, Result};
use compiler::{Options, Target};
use ir::front::Model;
use runtime::train::StepGraphs;

/// One line of the table: what runs, the graph, how often per step, its kernels per run, and
/// those it runs only once (its prologue).
struct Row {
    what: &'static str,
    graph: String,
    runs: usize,
    kernels: usize,
    once: usize,
}

pub fn main(model: &Model, target: &Target, options: &Options) -> Result<()> {
    let spec = model.training_spec()?;
    let graphs = StepGraphs::build(model, &spec)?;
    // Compiled as the trainer compiles them (`runtime::train::bound::step_options`): per run,
    // the kernels that run every time, those that run once, and whether the plan's first phase
    // gives G(blurred) (the generator's step then replaces the forward graph).
    let kernels = |g: &ir::Graph, loss: Option<bool>| -> Result<((usize, usize), bool)> {
        let options = match loss {
            Some(late) => Options {
                fuse: options.fuse,
                ..runtime::train::bound::step_options(&spec, g, late)
            },
            None => options.clone(),
        };
        let (plan, planned) = compiler::compile_with(g, target, &options)?;
        if let Err(errors) = compiler::verify::verify(&plan, &planned) {
            bail!(
                "the plan of {} fails the plan checker (a compiler bug): {}",
                g.name,
                errors.join("; ")
            );
        }
        let fake = (plan.outputs.iter()).find(|(n, _)| n == runtime::train::reuse::FAKE);
        let early_fake = fake.is_some_and(|&(_, v)| {
            let at = plan.values[v].live.0;
            !plan.values[v].pieces.is_empty() && at < plan.split
        });
        Ok((
            (plan.kernels.len() - plan.prologue, plan.prologue),
            early_fake,
        ))
    };
    let ema = usize::from(spec.ema.is_some());
    println!(
        "training step of the model's `training` section: batch {}, crop {}x{}",
        spec.batch, spec.crop, spec.crop
    );
    if let Some((_, critic_loss, generator_loss)) = &graphs.adversarial {
        let (gen, early_fake) = kernels(generator_loss, Some(true))?;
        let mut table = Vec::new();
        if !early_fake {
            table.push(row(
                "G(blurred)",
                &graphs.forward,
                1,
                kernels(&graphs.forward, None)?.0,
            ));
        }
        let critic = kernels(critic_loss, Some(false))?.0;
        table.push(row("critic step", critic_loss, spec.critic_steps, critic));
        table.push(row("generator step", generator_loss, 1, gen));
        table.push(optimizer(spec.critic_steps + 1, ema));
        print_table("adversarial step", &table);
        if early_fake {
            println!(
                "  G(blurred) for the critic steps: the generator step's first phase, before them \
                 (it reads no critic parameter); the forward graph does not run"
            );
        }
    }
    if let Some(content) = &graphs.content {
        let what = match graphs.adversarial {
            Some(_) => "warm-up step (content loss alone)",
            None => "step (content loss alone, no critic)",
        };
        let table = [
            row(
                "generator step",
                content,
                1,
                kernels(content, Some(false))?.0,
            ),
            optimizer(1, ema),
        ];
        print_table(what, &table);
    }
    Ok(())
}

fn row(what: &'static str, g: &ir::Graph, runs: usize, (kernels, once): (usize, usize)) -> Row {
    Row {
        what,
        graph: g.name.clone(),
        runs,
        kernels,
        once,
    }
}

/// Adam's updates (one dispatch each) and the moving average's.
fn optimizer(updates: usize, ema: usize) -> Row {
    Row {
        what: "optimizer",
        graph: match ema {
            0 => "adam".into(),
            _ => "adam, ema".into(),
        },
        runs: updates + ema,
        kernels: 1,
        once: 0,
    }
}

fn print_table(title: &str, rows: &[Row]) {
    let total: usize = rows.iter().map(|r| r.runs * r.kernels).sum();
    let once: usize = rows.iter().map(|r| r.once).sum();
    match once {
        0 => println!("\n{title}: {total} kernels"),
        _ => println!("\n{title}: {total} kernels, and {once} on the first step only (what frozen parameters alone give)"),
    }
    println!(
        "  {:<16} {:<24} {:>5} {:>8} {:>8}",
        "", "graph", "runs", "kernels", "in all"
    );
    for r in rows {
        let once = match r.once {
            0 => String::new(),
            n => format!("  (+{n} once)"),
        };
        println!(
            "  {:<16} {:<24} {:>5} {:>8} {:>8}{once}",
            r.what,
            r.graph,
            r.runs,
            r.kernels,
            r.runs * r.kernels
        );
    }
}
