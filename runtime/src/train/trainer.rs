//! The training step of SPEC.md on the GPU: fake = G(blurred); `critic_steps` critic updates on
//! that batch and that fake (no gradient into G); one generator update. Three graphs compiled
//! once; parameters, Adam moments and gradients never leave the GPU; only the losses are read.

use super::adam::GpuAdam;
use super::bound::{loss_graph, Bound, Net, PARTS};
use super::params::{ParamSet, Tie, Which};
use super::TrainError;
use crate::device::Gpu;
use crate::pipeline_cache::PipelineCache;
use ir::front::{Model, TrainingSpec};
use ir::Tensor;
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
            Ok(model.build_with(g, &shapes(model, g, b, c)?, diff)?)
        };
        let g_graph = build(&spec.generator)?;
        let c_graph = build(&spec.critic)?;
        let gp = format!("{}.", spec.generator);
        let cp = format!("{}.", spec.critic);
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
            GpuAdam::new(gpu, &mut cache, &nets[GENERATOR].set)?,
            GpuAdam::new(gpu, &mut cache, &nets[CRITIC].set)?,
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
        let fake = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("irdc.train.fake"),
            size: numel as u64 * 4,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
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
        // fake = G(blurred) with the current weights.
        self.forward.write(&self.forward_in, blurred)?;
        self.submit("feeding the generator", |enc| {
            self.forward.feed_params(enc, &self.nets)
        })?;
        self.forward.exe.run()?;
        let fake_in = Tie {
            at: 0,
            node: self.critic_step.input("fake")?,
        };
        self.submit("passing G(blurred) to the critic", |enc| {
            super::params::copy_out(enc, &self.forward.exe, &self.fake, &[self.forward_out])?;
            super::params::copy_in(enc, &self.critic_step.exe, &self.fake, &[fake_in])?;
            Ok(())
        })?;
        self.critic_step.write("sharp", sharp)?;
        let adam = self.spec.adam;
        let mut critic = Vec::with_capacity(k_steps);
        let mut parts = Vec::new();
        for (k, alpha) in alphas.iter().enumerate() {
            self.critic_step.write("alpha", alpha)?;
            self.submit("feeding the critic", |enc| {
                self.critic_step.feed_params(enc, &self.nets)
            })?;
            self.critic_step.exe.run()?;
            critic.push(self.critic_step.scalar("loss")?);
            if k + 1 == k_steps {
                parts.extend(self.parts(&self.critic_step)?);
            }
            let t = step * k_steps as u64 + k as u64 + 1;
            self.submit("updating the critic", |enc| {
                self.critic_step.take_grads(enc, &self.nets[CRITIC])?;
                self.adam[CRITIC].record(&self.gpu, enc, &adam, lr, t);
                Ok(())
            })?;
        }
        self.generator_step.write("blurred", blurred)?;
        self.generator_step.write("sharp", sharp)?;
        self.submit("feeding the generator's loss", |enc| {
            self.generator_step.feed_params(enc, &self.nets)
        })?;
        self.generator_step.exe.run()?;
        let generator = self.generator_step.scalar("loss")?;
        parts.extend(self.parts(&self.generator_step)?);
        self.submit("updating the generator", |enc| {
            self.generator_step.take_grads(enc, &self.nets[GENERATOR])?;
            self.adam[GENERATOR].record(&self.gpu, enc, &adam, lr, step + 1);
            Ok(())
        })?;
        self.gpu.wait("updating the generator")?;
        Ok(StepLosses {
            critic,
            generator,
            parts,
        })
    }

    fn parts(&self, b: &Bound) -> Result<Vec<(String, f32)>, TrainError> {
        PARTS
            .iter()
            .filter(|p| b.outputs.contains_key(**p))
            .map(|p| Ok((p.to_string(), b.scalar(p)?)))
            .collect()
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
