//! The training step of SPEC.md on the GPU: fake = G(blurred); `critic_steps` critic updates on
//! that batch and that fake (no gradient into G); one generator update. Three graphs compiled
//! once; parameters, Adam moments and gradients never leave the GPU; only the losses are read.

use super::adam::GpuAdam;
use super::bound::{loss_graph, Bound, Net, PARTS};
use super::params::{copy_in, copy_out, read_buffer, ParamSet, Tie, Which};
use super::TrainError;
use crate::device::Gpu;
use crate::pipeline_cache::PipelineCache;
use ir::front::{Model, TrainingSpec};
use ir::ops::DROPOUT_SEED;
use ir::{NodeId, Tensor};
use rand::{RngCore, SeedableRng};
use std::collections::HashMap;

/// The trainer's networks, in this order.
pub const GENERATOR: usize = 0;
pub const CRITIC: usize = 1;
pub const FROZEN: usize = 2;

/// The losses of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLosses {
    /// Each critic step's loss, in order.
    pub critic: Vec<f32>,
    pub generator: f32,
    /// Named parts of both losses ([`PARTS`]) that the loss graphs have.
    pub parts: Vec<(String, f32)>,
}

impl StepLosses {
    /// The first loss that is not finite, named: (`critic step 3` / `generator` / a part, value).
    pub fn non_finite(&self) -> Option<(String, f32)> {
        let critic = (self.critic.iter().enumerate())
            .map(|(k, &l)| (format!("critic loss (critic step {})", k + 1), l));
        let all = critic
            .chain([("generator loss".to_string(), self.generator)])
            .chain(self.parts.iter().cloned());
        all.into_iter().find(|(_, l)| !l.is_finite())
    }
}

pub struct Trainer {
    gpu: Gpu,
    pub spec: TrainingSpec,
    nets: Vec<Net>,
    adam: [GpuAdam; 2],
    forward: Bound,
    critic_step: Bound,
    generator_step: Bound,
    forward_in: String,
    forward_out: Tie,
    /// G(blurred) on its way from the forward graph into the critic's loss.
    fake: wgpu::Buffer,
    /// Each critic step's alpha vector, written once per step and copied in before its run.
    alphas: wgpu::Buffer,
    /// The step's scalars, gathered on the GPU and read back once: each critic step's loss, the
    /// generator's, then the parts ([`Trainer::readback_layout`]).
    losses: wgpu::Buffer,
    /// Loss parts of the last critic step and of the generator step: (name, node).
    critic_parts: Vec<(String, NodeId)>,
    generator_parts: Vec<(String, NodeId)>,
}

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

impl Trainer {
    /// Build, compile and initialise everything: the generator and the critic from `seed`
    /// (SPEC.md's N(0, 0.02)), the frozen parameters (VGG19) from `frozen` by full name
    /// (`vgg19.features.0.weight`). A frozen parameter missing from `frozen` while the model's
    /// `per_weight` is not 0 stops here, with how to supply it.
    pub fn new(
        gpu: &Gpu,
        model: &Model,
        spec: &TrainingSpec,
        frozen: &HashMap<String, Tensor<f32>>,
    ) -> Result<Trainer, TrainError> {
        let (b, c) = (spec.batch, spec.crop);
        let diff = &compiler::differentiate::Autodiff;
        let build = |g: &str| -> Result<ir::Graph, TrainError> {
            // Training mode: every Dropout draws its mask from the `dropout_seed` input.
            Ok(model.build_training(g, &shapes(model, g, b, c)?, diff)?)
        };
        let g_graph = build(&spec.generator)?;
        let c_graph = build(&spec.critic)?;
        let trained = |g: &str| spec.trained_prefix(g).unwrap_or_default();
        let (gp, cp) = (trained(&spec.generator_loss), trained(&spec.critic_loss));
        let critic_loss = loss_graph(&build(&spec.critic_loss)?, &cp)?;
        let generator_loss = loss_graph(&build(&spec.generator_loss)?, &gp)?;

        // Frozen: every parameter of the loss graphs that is neither G's nor D's.
        let mut frozen_init = Vec::new();
        for g in [&critic_loss, &generator_loss] {
            for (name, t) in ir::init::init_params(g, spec.seed.wrapping_add(2)) {
                if !name.starts_with(&gp)
                    && !name.starts_with(&cp)
                    && !frozen_init.iter().any(|(n, _): &(String, _)| *n == name)
                {
                    frozen_init.push((name, t));
                }
            }
        }
        let missing: Vec<&str> = (frozen_init.iter())
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
        for (name, t) in frozen_init.iter_mut() {
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
                prefix: cp.clone(),
                set: ParamSet::new(
                    gpu,
                    "critic",
                    &ir::init::init_params(&c_graph, spec.seed.wrapping_add(1)),
                    true,
                )?,
            },
            Net {
                prefix: String::new(),
                set: ParamSet::new(gpu, "frozen", &frozen_init, false)?,
            },
        ];
        let mut cache = PipelineCache::new();
        let forward = Bound::new(gpu, &mut cache, &g_graph, &nets, &gp, None)?;
        let critic_step = Bound::new(gpu, &mut cache, &critic_loss, &nets, "", Some(CRITIC))?;
        let generator_step =
            Bound::new(gpu, &mut cache, &generator_loss, &nets, "", Some(GENERATOR))?;
        let adam = [
            GpuAdam::new(gpu, &mut cache, &nets[GENERATOR].set, 1)?,
            GpuAdam::new(gpu, &mut cache, &nets[CRITIC].set, spec.critic_steps)?,
        ];
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
        for (bound, names) in [
            (&critic_step, ["fake", "sharp", "alpha"].as_slice()),
            (&generator_step, ["blurred", "sharp"].as_slice()),
        ] {
            for n in names {
                bound.input(n)?;
            }
        }
        let buffer = |label: &str, floats: usize| {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: floats.max(1) as u64 * 4,
                usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let fake = buffer("irdc.train.fake", numel);
        let alpha_len = ir::numel(&critic_step.exe.value(critic_step.input("alpha")?)?.shape);
        let alphas = buffer("irdc.train.alphas", alpha_len * spec.critic_steps);
        let critic_parts = parts_of(&critic_step);
        let generator_parts = parts_of(&generator_step);
        let losses = buffer(
            "irdc.train.losses",
            spec.critic_steps + 1 + critic_parts.len() + generator_parts.len(),
        );
        Ok(Trainer {
            gpu: gpu.clone(),
            spec: spec.clone(),
            nets,
            adam,
            forward,
            critic_step,
            generator_step,
            forward_in,
            forward_out: Tie {
                at: 0,
                node: out_node,
            },
            fake,
            alphas,
            losses,
            critic_parts,
            generator_parts,
        })
    }

    /// Parameters per network.
    pub fn counts(&self) -> [usize; 3] {
        [
            self.nets[0].set.len,
            self.nets[1].set.len,
            self.nets[2].set.len,
        ]
    }

    fn submit(
        &self,
        context: &str,
        f: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<(), TrainError>,
    ) -> Result<(), TrainError> {
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        f(&mut enc)?;
        self.gpu
            .checked(context, || self.gpu.queue.submit([enc.finish()]))?;
        Ok(())
    }

    /// One training step (0-based `step`, learning rate `lr`) on `blurred`/`sharp` ([b, 3, c, c])
    /// with one alpha vector ([b] values in [0, 1)) per critic step.
    ///
    /// The whole step is one command buffer: inputs go in through the queue before it, every
    /// graph run, copy and Adam update is recorded in order, and the losses are gathered on the
    /// GPU and read back once at the end (on lavapipe a submit-and-wait round trip costs as much
    /// as a small graph).
    pub fn step(
        &mut self,
        step: u64,
        blurred: &[f32],
        sharp: &[f32],
        alphas: &[Vec<f32>],
        lr: f64,
    ) -> Result<StepLosses, TrainError> {
        let k_steps = self.spec.critic_steps;
        if alphas.len() != k_steps {
            return Err(TrainError::Setup(format!(
                "{} alpha vectors for {k_steps} critic steps",
                alphas.len()
            )));
        }
        // Inputs: the same for every graph run of the step. The generator's dropout masks come
        // from one seed per step, the same in the forward graph and in the generator's loss, so
        // the critic judges the very G(blurred) that the generator step differentiates.
        let seed = [dropout_seed(self.spec.seed, step)];
        for b in [&self.forward, &self.generator_step] {
            if b.inputs.contains_key(DROPOUT_SEED) {
                b.write(DROPOUT_SEED, &seed)?;
            }
        }
        self.forward.write(&self.forward_in, blurred)?;
        self.critic_step.write("sharp", sharp)?;
        self.generator_step.write("blurred", blurred)?;
        self.generator_step.write("sharp", sharp)?;
        let flat_alphas: Vec<f32> = alphas.concat();
        self.gpu
            .queue
            .write_buffer(&self.alphas, 0, bytemuck::cast_slice(&flat_alphas));
        let adam = self.spec.adam;
        let critic_updates: Vec<(f64, u64)> = (0..k_steps as u64)
            .map(|k| (lr, step * k_steps as u64 + k + 1))
            .collect();
        self.adam[CRITIC].stage(&self.gpu, &adam, &critic_updates)?;
        self.adam[GENERATOR].stage(&self.gpu, &adam, &[(lr, step + 1)])?;

        let alpha_node = self.critic_step.input("alpha")?;
        let alpha_len = flat_alphas.len() / k_steps.max(1);
        let critic_loss = self.critic_step.output("loss")?;
        let generator_loss = self.generator_step.output("loss")?;
        let (first_part, _) = self.readback_layout();
        self.submit("running the training step", |enc| {
            // fake = G(blurred) with the current weights, into the critic's input.
            self.forward.feed_params(enc, &self.nets)?;
            self.forward.exe.record(enc);
            let fake_in = Tie {
                at: 0,
                node: self.critic_step.input("fake")?,
            };
            copy_out(enc, &self.forward.exe, &self.fake, &[self.forward_out])?;
            copy_in(enc, &self.critic_step.exe, &self.fake, &[fake_in])?;
            for k in 0..k_steps {
                let alpha = Tie {
                    at: k * alpha_len,
                    node: alpha_node,
                };
                copy_in(enc, &self.critic_step.exe, &self.alphas, &[alpha])?;
                self.critic_step.feed_params(enc, &self.nets)?;
                self.critic_step.exe.record(enc);
                let mut out = vec![Tie {
                    at: k,
                    node: critic_loss,
                }];
                if k + 1 == k_steps {
                    out.extend(ties_at(&self.critic_parts, first_part));
                }
                copy_out(enc, &self.critic_step.exe, &self.losses, &out)?;
                self.critic_step.take_grads(enc, &self.nets[CRITIC])?;
                self.adam[CRITIC].record(enc, k);
            }
            self.generator_step.feed_params(enc, &self.nets)?;
            self.generator_step.exe.record(enc);
            let mut out = vec![Tie {
                at: k_steps,
                node: generator_loss,
            }];
            let at = first_part + self.critic_parts.len();
            out.extend(ties_at(&self.generator_parts, at));
            copy_out(enc, &self.generator_step.exe, &self.losses, &out)?;
            self.generator_step.take_grads(enc, &self.nets[GENERATOR])?;
            self.adam[GENERATOR].record(enc, 0);
            Ok(())
        })?;
        let (_, len) = self.readback_layout();
        let read = read_buffer(&self.gpu, &self.losses, len)?;
        let names = (self.critic_parts.iter()).chain(&self.generator_parts);
        Ok(StepLosses {
            critic: read[..k_steps].to_vec(),
            generator: read[k_steps],
            parts: (names.zip(&read[first_part..]))
                .map(|((n, _), &v)| (n.clone(), v))
                .collect(),
        })
    }

    /// Where the parts start in the losses buffer, and its length.
    fn readback_layout(&self) -> (usize, usize) {
        let first = self.spec.critic_steps + 1;
        (
            first,
            first + self.critic_parts.len() + self.generator_parts.len(),
        )
    }

    /// G(blurred) with the current weights ([b, 3, c, c] in, the same out).
    pub fn generate(&self, blurred: &[f32]) -> Result<Vec<f32>, TrainError> {
        self.forward.write(&self.forward_in, blurred)?;
        self.submit("feeding the generator", |enc| {
            self.forward.feed_params(enc, &self.nets)
        })?;
        self.forward.exe.run()?;
        Ok(self.forward.exe.read(self.forward_out.node)?)
    }

    /// Everything a checkpoint holds: `generator.<p>`, `critic.<p>`, `adam.<net>.m.<p>`,
    /// `adam.<net>.v.<p>` (p without the net's prefix).
    pub fn state(&self) -> Result<Vec<(String, Tensor<f32>)>, TrainError> {
        let mut out = Vec::new();
        for i in [GENERATOR, CRITIC] {
            let net = &self.nets[i];
            let name = net.prefix.trim_end_matches('.');
            out.extend(net.set.read(&self.gpu, Which::Params, &net.prefix)?);
            out.extend(
                net.set
                    .read(&self.gpu, Which::M, &format!("adam.{name}.m."))?,
            );
            out.extend(
                net.set
                    .read(&self.gpu, Which::V, &format!("adam.{name}.v."))?,
            );
        }
        Ok(out)
    }

    /// Load what [`Trainer::state`] wrote.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor<f32>>) -> Result<(), TrainError> {
        for i in [GENERATOR, CRITIC] {
            let net = &self.nets[i];
            let name = net.prefix.trim_end_matches('.');
            let get = |n: &str| tensors.get(n).cloned();
            for (which, prefix) in [
                (Which::Params, net.prefix.clone()),
                (Which::M, format!("adam.{name}.m.")),
                (Which::V, format!("adam.{name}.v.")),
            ] {
                net.set
                    .load(&self.gpu, which, &prefix, &get)
                    .map_err(|m| TrainError::Setup(format!("checkpoint: {m}")))?;
            }
        }
        self.gpu.wait("loading the checkpoint")?;
        Ok(())
    }
}

/// Step `step`'s dropout seed: an integer below 2^24 (exact in f32), from the run's seed.
fn dropout_seed(seed: u64, step: u64) -> f32 {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ DROPOUT_STREAM);
    rng.set_stream(step);
    (rng.next_u32() >> 8) as f32
}

/// Keeps the dropout seeds' stream apart from the initialisers' and the data's.
const DROPOUT_STREAM: u64 = 0xd40f_0a75_5eed_0001;

/// The loss parts ([`PARTS`]) a loss graph outputs, in [`PARTS`] order.
fn parts_of(b: &Bound) -> Vec<(String, NodeId)> {
    (PARTS.iter())
        .filter_map(|p| b.outputs.get(*p).map(|&n| (p.to_string(), n)))
        .collect()
}

/// Ties of consecutive scalars from element `at` of a flat buffer.
fn ties_at(parts: &[(String, NodeId)], at: usize) -> impl Iterator<Item = Tie> + '_ {
    (parts.iter().enumerate()).map(move |(i, &(_, node))| Tie { at: at + i, node })
}
