//! [`Trainer::new`]: build, compile and initialise the graphs and networks of the training
//! section: the forward G, the critic's and the generator's losses (with a critic), the content
//! loss (warm-up, or no critic), Adam for each trained network and the moving average.

use super::adam::GpuAdam;
use super::bound::{loss_graph, step_options, Bound, Net};
use super::ema::GpuEma;
use super::params::{ParamSet, Tie};
use super::reuse::{forward_in_loss, FAKE};
use super::trainer::{parts_of, Adversarial, Content, Trainer, CRITIC, GENERATOR};
use super::TrainError;
use crate::device::Gpu;
use crate::pipeline_cache::PipelineCache;
use ir::front::{Model, TrainingSpec};
use ir::Tensor;
use std::collections::HashMap;

/// The input shapes of a graph for batch `b` and crop `c`: images become [b, C, c, c], per-sample
/// scalars (alpha) [b, 1, 1, 1].
fn shapes(
    model: &Model,
    graph: &str,
    b: usize,
    c: usize,
) -> Result<Vec<(String, Vec<usize>)>, TrainError> {
    Ok(model
        .input_shapes(graph)?
        .into_iter()
        .map(|(n, s)| {
            let s = match s.as_slice() {
                [_, ch, h, w] if *h > 1 || *w > 1 => vec![b, *ch, c, c],
                [_, rest @ ..] => [&[b], rest].concat(),
                [] => s,
            };
            (n, s)
        })
        .collect())
}

/// The graphs a training step runs, differentiated as the trainer runs them.
pub struct StepGraphs {
    /// G(blurred), in training mode (dropout draws its masks).
    pub forward: ir::Graph,
    /// With a critic: the critic itself (for its parameters), its loss with the gradients of
    /// the critic's parameters, and the generator's loss with those of the generator's.
    pub adversarial: Option<(ir::Graph, ir::Graph, ir::Graph)>,
    /// The content loss with the generator's gradients (warm-up, or no critic).
    pub content: Option<ir::Graph>,
}

impl StepGraphs {
    pub fn build(model: &Model, spec: &TrainingSpec) -> Result<StepGraphs, TrainError> {
        let (b, c) = (spec.batch, spec.crop);
        let diff = &compiler::differentiate::Autodiff;
        let build = |g: &str| -> Result<ir::Graph, TrainError> {
            // Training mode: every Dropout draws its mask from the `dropout_seed` input.
            Ok(model.build_training(g, &shapes(model, g, b, c)?, diff)?)
        };
        let gp = format!("{}.", spec.generator);
        // With a critic: its loss and the generator's; without: neither is built (the
        // generator's loss may call the critic).
        let forward = build(&spec.generator)?;
        let adversarial = match &spec.critic {
            Some(critic) => Some((
                build(critic)?,
                loss_graph(&build(&spec.critic_loss)?, &format!("{critic}."))?,
                loss_graph(
                    &with_fake_output(build(&spec.generator_loss)?, &forward, &gp),
                    &gp,
                )?,
            )),
            None => None,
        };
        let content = match spec.content_step_loss() {
            Some(name) => {
                let g = loss_graph(&build(name)?, &gp)?;
                if spec.critic.is_none() {
                    reads_no_critic(&g, name)?;
                }
                Some(g)
            }
            None => None,
        };
        Ok(StepGraphs {
            forward,
            adversarial,
            content,
        })
    }
}

/// The generator's loss graph with G(blurred) as its output [`FAKE`], where it computes it
/// (`reuse.rs`).
fn with_fake_output(mut loss: ir::Graph, forward: &ir::Graph, gp: &str) -> ir::Graph {
    let input = forward.inputs().next().map(|(_, n)| n.name.clone());
    let found = input.and_then(|i| forward_in_loss(&loss, forward, &i, gp));
    if let Some(node) = found {
        loss.outputs.push((FAKE.to_string(), node));
    }
    loss
}

impl Trainer {
    /// Build, compile and initialise everything: the generator and the critic from `seed`
    /// (docs/spec.md's N(0, 0.02)), the frozen parameters (VGG19) from `frozen` by full name
    /// (`vgg19.features.0.weight`). A frozen parameter missing from `frozen` while the model's
    /// `per_weight` is not 0 stops here, with how to supply it.
    pub fn new(
        gpu: &Gpu,
        model: &Model,
        spec: &TrainingSpec,
        frozen: &HashMap<String, Tensor<f32>>,
    ) -> Result<Trainer, TrainError> {
        let StepGraphs {
            forward: g_graph,
            adversarial: adversarial_graphs,
            content: content_graph,
        } = StepGraphs::build(model, spec)?;
        let gp = format!("{}.", spec.generator);
        let cp = spec.critic.as_ref().map(|c| format!("{c}."));
        let losses_graphs: Vec<&ir::Graph> = (adversarial_graphs.iter())
            .flat_map(|(_, c, g)| [c, g])
            .chain(content_graph.iter())
            .collect();
        let frozen_init = frozen_params(model, spec, &losses_graphs, frozen)?;

        let critic_init = match &adversarial_graphs {
            Some((c_graph, _, _)) => ir::init::init_params(c_graph, spec.seed.wrapping_add(1)),
            None => Vec::new(),
        };
        let nets = vec![
            Net {
                prefix: gp.clone(),
                set: ParamSet::new(
                    gpu,
                    "generator",
                    &ir::init::init_params(&g_graph, spec.seed),
                    true,
                )?,
            },
            Net {
                prefix: cp.clone().unwrap_or_default(),
                set: ParamSet::new(gpu, "critic", &critic_init, cp.is_some())?,
            },
            Net {
                prefix: String::new(),
                set: ParamSet::new(gpu, "frozen", &frozen_init, false)?,
            },
        ];
        let mut cache = PipelineCache::new();
        let forward = Bound::new(
            gpu,
            &mut cache,
            &g_graph,
            &nets,
            (&gp, None),
            &Default::default(),
        )?;
        let adam = GpuAdam::new(gpu, &mut cache, &nets[GENERATOR].set, 1)?;
        let ema = match spec.ema {
            Some(decay) => Some(GpuEma::new(gpu, &mut cache, &nets[GENERATOR].set, decay)?),
            None => None,
        };
        let (forward_in, _) = g_graph
            .inputs()
            .next()
            .map(|(_, n)| (n.name.clone(), ()))
            .ok_or_else(|| TrainError::Setup(format!("graph {} has no input", g_graph.name)))?;
        let [(_, out)] = g_graph.outputs.as_slice() else {
            return Err(TrainError::Setup(format!(
                "graph {} must have one output, G(blurred)",
                g_graph.name
            )));
        };
        let out_name = g_graph.outputs[0].0.clone();
        let out_node = *forward.outputs.get(&out_name).unwrap_or(out);
        let numel = ir::numel(&g_graph.nodes[*out].shape);
        let buffer = |label: &str, floats: usize| {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: floats.max(1) as u64 * 4,
                usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let mut readback = 0;
        let adversarial = match adversarial_graphs {
            Some((_, critic_loss, generator_loss)) => {
                let options = step_options(spec, &critic_loss, false);
                let critic_step = Bound::new(
                    gpu,
                    &mut cache,
                    &critic_loss,
                    &nets,
                    ("", Some(CRITIC)),
                    &options,
                )?;
                let options = step_options(spec, &generator_loss, true);
                let generator_step = Bound::new(
                    gpu,
                    &mut cache,
                    &generator_loss,
                    &nets,
                    ("", Some(GENERATOR)),
                    &options,
                )?;
                // G(blurred) from the generator step's first phase, where it has one (reuse.rs).
                let fake_in_step = (generator_step.outputs.get(FAKE).copied())
                    .filter(|&n| generator_step.exe.first_phase_writes(n));
                for n in ["fake", "sharp", "alpha"] {
                    critic_step.input(n)?;
                }
                for n in ["blurred", "sharp"] {
                    generator_step.input(n)?;
                }
                let alpha_len =
                    ir::numel(&critic_step.exe.value(critic_step.input("alpha")?)?.shape);
                let critic_parts = parts_of(&critic_step);
                let generator_parts = parts_of(&generator_step);
                readback = spec.critic_steps + 1 + critic_parts.len() + generator_parts.len();
                Some(Adversarial {
                    adam: GpuAdam::new(gpu, &mut cache, &nets[CRITIC].set, spec.critic_steps)?,
                    fake: buffer("irdc.train.fake", numel),
                    alphas: buffer("irdc.train.alphas", alpha_len * spec.critic_steps),
                    critic_step,
                    generator_step,
                    fake_in_step,
                    critic_parts,
                    generator_parts,
                })
            }
            None => None,
        };
        let content = match content_graph {
            Some(g) => {
                let options = step_options(spec, &g, false);
                let step = Bound::new(gpu, &mut cache, &g, &nets, ("", Some(GENERATOR)), &options)?;
                for n in ["blurred", "sharp"] {
                    step.input(n)?;
                }
                let parts = parts_of(&step);
                readback = readback.max(1 + parts.len());
                Some(Content { step, parts })
            }
            None => None,
        };
        Ok(Trainer {
            gpu: gpu.clone(),
            spec: spec.clone(),
            nets,
            adam,
            ema,
            forward,
            adversarial,
            content,
            forward_in,
            forward_out: Tie {
                at: 0,
                node: out_node,
            },
            losses: buffer("irdc.train.losses", readback),
            sync: None,
        })
    }
}

/// Without a critic, a content loss that reads the model's critic would train against a random,
/// never-trained one: refuse it.
fn reads_no_critic(g: &ir::Graph, name: &str) -> Result<(), TrainError> {
    let default = TrainingSpec::default().critic.unwrap_or_default();
    let prefix = format!("{default}.");
    if let Some((_, p)) = g.params().find(|(_, n)| n.name.starts_with(&prefix)) {
        return Err(TrainError::Setup(format!(
            "graph `{name}` reads the critic's parameter `{}`, but the training section has \
             `critic: None`: train on a content loss that does not call the critic \
             (`content_loss: ..`, e.g. per_weight * L_per + l1_weight * L_1)",
            p.name
        )));
    }
    Ok(())
}

/// Frozen: every parameter of the loss graphs that is neither G's nor D's, from `frozen` by full
/// name; one missing while the model's `per_weight` is not 0 stops here, with how to supply it.
fn frozen_params(
    model: &Model,
    spec: &TrainingSpec,
    graphs: &[&ir::Graph],
    frozen: &HashMap<String, Tensor<f32>>,
) -> Result<Vec<(String, Tensor<f32>)>, TrainError> {
    let mut out: Vec<(String, Tensor<f32>)> = Vec::new();
    for g in graphs {
        for (name, t) in ir::init::init_params(g, spec.seed.wrapping_add(2)) {
            if spec.is_frozen(&name) && !out.iter().any(|(n, _)| *n == name) {
                out.push((name, t));
            }
        }
    }
    let missing: Vec<&str> = (out.iter())
        .filter(|(n, _)| !frozen.contains_key(n))
        .map(|(n, _)| n.as_str())
        .collect();
    let per_weight = model.params().get("per_weight").copied().unwrap_or(0.0);
    if !missing.is_empty() && per_weight != 0.0 {
        return Err(TrainError::MissingFrozen {
            first: missing[0].to_string(),
            count: missing.len(),
            per_weight,
        });
    }
    for (name, t) in out.iter_mut() {
        if let Some(given) = frozen.get(name) {
            if given.shape != t.shape {
                return Err(TrainError::Setup(format!(
                    "`{name}` has shape {:?}; the model's is {:?}",
                    given.shape, t.shape
                )));
            }
            *t = given.clone();
        }
    }
    Ok(out)
}
