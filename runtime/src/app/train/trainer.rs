//! The training step of docs/spec.md on the GPU: fake = G(blurred); `critic_steps` critic updates on
//! that batch and that fake (no gradient into G); one generator update. Or, in a warm-up step
//! (`warmup`) and in every step of a run without a critic (`critic: None`), a content step: one
//! generator update on the content loss alone, no critic. After each generator update, the
//! moving average of its weights (`ema`) follows. Graphs are compiled once ([`Trainer::new`],
//! in `setup.rs`); parameters, Adam moments and gradients never leave the GPU; only the losses
//! are read.

use super::adam::GpuAdam;
use super::bound::{Bound, Net, PARTS};
use super::collective::{DataParallel, Rec, SyncTimes};
use super::ema::GpuEma;
use super::params::{copy_in, copy_out, read_buffer, Tie};
use super::TrainError;
use crate::device::Gpu;
use ir::front::TrainingSpec;
use ir::ops::DROPOUT_SEED;
use ir::NodeId;
use rand::{RngCore, SeedableRng};

/// The trainer's networks, in this order.
pub const GENERATOR: usize = 0;
pub const CRITIC: usize = 1;
pub const FROZEN: usize = 2;

/// The losses of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLosses {
    /// Each critic step's loss, in order (none in a content step).
    pub critic: Vec<f32>,
    /// The loss the generator was updated on: `generator_loss`, or in a content step the content loss.
    pub generator: f32,
    /// Named parts of the step's losses ([`PARTS`]) that its loss graphs have.
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

/// The graphs and buffers of the adversarial step (present with a critic).
pub(super) struct Adversarial {
    pub critic_step: Bound,
    pub generator_step: Bound,
    /// G(blurred) as the generator step's first phase writes it, when it does (`reuse.rs`):
    /// then the forward graph does not run in the step.
    pub fake_in_step: Option<NodeId>,
    pub adam: GpuAdam,
    /// G(blurred) on its way from the forward graph into the critic's loss.
    pub fake: wgpu::Buffer,
    /// Each critic step's alpha vector, written once per step and copied in before its run.
    pub alphas: wgpu::Buffer,
    /// Loss parts of the last critic step and of the generator step: (name, node).
    pub critic_parts: Vec<(String, NodeId)>,
    pub generator_parts: Vec<(String, NodeId)>,
}

/// The content step's graph (warm-up, or training without a critic).
pub(super) struct Content {
    pub step: Bound,
    pub parts: Vec<(String, NodeId)>,
}

pub struct Trainer {
    pub(super) gpu: Gpu,
    pub spec: TrainingSpec,
    pub(super) nets: Vec<Net>,
    pub(super) adam: GpuAdam,
    pub(super) ema: Option<GpuEma>,
    pub(super) forward: Bound,
    pub(super) adversarial: Option<Adversarial>,
    pub(super) content: Option<Content>,
    pub(super) forward_in: String,
    pub(super) forward_out: Tie,
    /// The step's scalars, gathered on the GPU and read back once: each critic step's loss, the
    /// generator's, then the parts (see [`Trainer::step`]).
    pub(super) losses: wgpu::Buffer,
    /// In a data-parallel run, the ranks that average their gradients (`collective.rs`).
    pub(super) sync: Option<DataParallel>,
}

impl Trainer {
    /// Parameters per network.
    pub fn counts(&self) -> [usize; 3] {
        [
            self.nets[GENERATOR].set.len,
            self.nets[CRITIC].set.len,
            self.nets[FROZEN].set.len,
        ]
    }

    /// Whether the trainer has a critic (`critic: None` trains without one).
    pub fn has_critic(&self) -> bool {
        self.adversarial.is_some()
    }

    /// Whether 0-based `step` is a content step (warm-up, or no critic): no critic updates, and
    /// no alphas needed.
    pub fn is_content_step(&self, step: u64) -> bool {
        self.adversarial.is_none() || step < self.spec.warmup as u64
    }

    /// The names of every loss part any step reports, in [`PARTS`] order (the metrics' columns).
    pub fn part_names(&self) -> Vec<String> {
        let mut have: Vec<&str> = Vec::new();
        if let Some(a) = &self.adversarial {
            have.extend(a.critic_parts.iter().map(|p| p.0.as_str()));
            have.extend(a.generator_parts.iter().map(|p| p.0.as_str()));
        }
        if let Some(c) = &self.content {
            have.extend(c.parts.iter().map(|p| p.0.as_str()));
        }
        (PARTS.iter())
            .filter(|p| have.contains(p))
            .map(|p| p.to_string())
            .collect()
    }

    /// Train as one rank of a data-parallel run: this rank's batch is its share of the whole
    /// (samples `rank * batch..` of it), and every gradient is averaged over the ranks before
    /// its update.
    pub fn set_parallel(&mut self, parallel: DataParallel) {
        self.sync = Some(parallel);
    }

    /// The batch index of this rank's first sample.
    fn first_sample(&self) -> usize {
        self.sync.as_ref().map_or(0, |s| s.comm.rank()) * self.spec.batch
    }

    pub(super) fn submit(
        &self,
        context: &str,
        f: impl FnOnce(&mut Rec) -> Result<(), TrainError>,
    ) -> Result<(), TrainError> {
        let mut rec = Rec {
            enc: self.gpu.device.create_command_encoder(&Default::default()),
            gpu: &self.gpu,
            sync: self.sync.as_ref(),
        };
        f(&mut rec)?;
        self.gpu
            .checked(context, || self.gpu.queue.submit([rec.enc.finish()]))?;
        Ok(())
    }

    /// The step's `len` scalars; in a data-parallel run, their mean over the ranks.
    fn read_losses(&self, len: usize) -> Result<Vec<f32>, TrainError> {
        let mut read = read_buffer(&self.gpu, &self.losses, len)?;
        if let Some(sync) = &self.sync {
            sync.mean(&mut read)?;
            sync.add(|t| match t.warm {
                true => t.steps += 1,
                false => {
                    *t = SyncTimes {
                        warm: true,
                        ..Default::default()
                    }
                }
            });
        }
        Ok(read)
    }

    /// One training step (0-based `step`, learning rate `lr`) on `blurred`/`sharp` ([b, 3, c, c])
    /// with one alpha vector ([b] values in [0, 1)) per critic step; a content step
    /// ([`Trainer::is_content_step`]) takes none.
    ///
    /// The whole step is one command buffer: inputs go in through the queue before it, every
    /// graph run, copy, Adam and EMA update is recorded in order, and the losses are gathered on
    /// the GPU and read back once at the end (on lavapipe a submit-and-wait round trip costs as
    /// much as a small graph).
    pub fn step(
        &mut self,
        step: u64,
        blurred: &[f32],
        sharp: &[f32],
        alphas: &[Vec<f32>],
        lr: f64,
    ) -> Result<StepLosses, TrainError> {
        // The generator's dropout masks come from one seed per step, the same in the forward
        // graph and in the generator's loss, so the critic judges the very G(blurred) that the
        // generator step differentiates.
        let seed = [
            dropout_seed(self.spec.seed, step),
            self.first_sample() as f32,
        ];
        let graphs = [Some(&self.forward)]
            .into_iter()
            .chain([self.adversarial.as_ref().map(|a| &a.generator_step)])
            .chain([self.content.as_ref().map(|c| &c.step)]);
        for b in graphs.flatten() {
            if b.inputs.contains_key(DROPOUT_SEED) {
                b.write(DROPOUT_SEED, &seed)?;
            }
        }
        self.adam
            .stage(&self.gpu, &self.spec.adam, &[(lr, step + 1)])?;
        if self.is_content_step(step) {
            self.content_step(blurred, sharp)
        } else {
            self.adversarial_step(step, blurred, sharp, alphas, lr)
        }
    }

    fn content_step(&self, blurred: &[f32], sharp: &[f32]) -> Result<StepLosses, TrainError> {
        let Some(c) = &self.content else {
            return Err(TrainError::Setup(
                "a content step without a content loss graph".into(),
            ));
        };
        c.step.write("blurred", blurred)?;
        c.step.write("sharp", sharp)?;
        let loss = c.step.output("loss")?;
        self.submit("running the training step", |enc| {
            c.step.feed_params(enc, &self.nets)?;
            enc.gradients(&c.step, &self.nets[GENERATOR], 0)?;
            let mut out = vec![Tie { at: 0, node: loss }];
            out.extend(ties_at(&c.parts, 1));
            copy_out(enc, &c.step.exe, &self.losses, &out)?;
            self.adam.record(enc, 0);
            if let Some(e) = &self.ema {
                e.record(enc);
            }
            Ok(())
        })?;
        let read = self.read_losses(1 + c.parts.len())?;
        Ok(StepLosses {
            critic: Vec::new(),
            generator: read[0],
            parts: (c.parts.iter().zip(&read[1..]))
                .map(|((n, _), &v)| (n.clone(), v))
                .collect(),
        })
    }

    fn adversarial_step(
        &self,
        step: u64,
        blurred: &[f32],
        sharp: &[f32],
        alphas: &[Vec<f32>],
        lr: f64,
    ) -> Result<StepLosses, TrainError> {
        let Some(a) = &self.adversarial else {
            return Err(TrainError::Setup(
                "an adversarial step without a critic".into(),
            ));
        };
        let k_steps = self.spec.critic_steps;
        if alphas.len() != k_steps {
            return Err(TrainError::Setup(format!(
                "{} alpha vectors for {k_steps} critic steps",
                alphas.len()
            )));
        }
        self.forward.write(&self.forward_in, blurred)?;
        a.critic_step.write("sharp", sharp)?;
        a.generator_step.write("blurred", blurred)?;
        a.generator_step.write("sharp", sharp)?;
        let flat_alphas: Vec<f32> = alphas.concat();
        self.gpu
            .queue
            .write_buffer(&a.alphas, 0, bytemuck::cast_slice(&flat_alphas));
        // The critic's updates count from its first step, after the warm-up.
        let critic_step = step - self.spec.warmup as u64;
        let critic_updates: Vec<(f64, u64)> = (0..k_steps as u64)
            .map(|k| (lr, critic_step * k_steps as u64 + k + 1))
            .collect();
        a.adam.stage(&self.gpu, &self.spec.adam, &critic_updates)?;

        let alpha_node = a.critic_step.input("alpha")?;
        let alpha_len = flat_alphas.len() / k_steps.max(1);
        let critic_loss = a.critic_step.output("loss")?;
        let generator_loss = a.generator_step.output("loss")?;
        let first_part = k_steps + 1;
        self.submit("running the training step", |enc| {
            // fake = G(blurred) with the current weights, into the critic's input: from the
            // generator step's first phase (which reads no critic parameter), or else from the
            // forward graph.
            let fake_in = Tie {
                at: 0,
                node: a.critic_step.input("fake")?,
            };
            let gen = &a.generator_step;
            match a.fake_in_step {
                Some(node) => {
                    gen.feed_params(enc, &self.nets)?;
                    gen.exe.record_first(enc);
                    copy_out(enc, &gen.exe, &a.fake, &[Tie { at: 0, node }])?;
                }
                None => {
                    self.forward.feed_params(enc, &self.nets)?;
                    self.forward.exe.record(enc);
                    copy_out(enc, &self.forward.exe, &a.fake, &[self.forward_out])?;
                }
            }
            copy_in(enc, &a.critic_step.exe, &a.fake, &[fake_in])?;
            for k in 0..k_steps {
                let alpha = Tie {
                    at: k * alpha_len,
                    node: alpha_node,
                };
                copy_in(enc, &a.critic_step.exe, &a.alphas, &[alpha])?;
                a.critic_step.feed_params(enc, &self.nets)?;
                enc.gradients(&a.critic_step, &self.nets[CRITIC], 0)?;
                let mut out = vec![Tie {
                    at: k,
                    node: critic_loss,
                }];
                if k + 1 == k_steps {
                    out.extend(ties_at(&a.critic_parts, first_part));
                }
                copy_out(enc, &a.critic_step.exe, &self.losses, &out)?;
                a.adam.record(enc, k);
            }
            // The critic's parameters as its updates left them, then the rest of the step.
            gen.feed_params(enc, &self.nets)?;
            let from = match a.fake_in_step {
                Some(_) => gen.exe.split(),
                None => 0,
            };
            enc.gradients(gen, &self.nets[GENERATOR], from)?;
            let mut out = vec![Tie {
                at: k_steps,
                node: generator_loss,
            }];
            let at = first_part + a.critic_parts.len();
            out.extend(ties_at(&a.generator_parts, at));
            copy_out(enc, &gen.exe, &self.losses, &out)?;
            self.adam.record(enc, 0);
            if let Some(e) = &self.ema {
                e.record(enc);
            }
            Ok(())
        })?;
        let len = first_part + a.critic_parts.len() + a.generator_parts.len();
        let read = self.read_losses(len)?;
        let names = (a.critic_parts.iter()).chain(&a.generator_parts);
        Ok(StepLosses {
            critic: read[..k_steps].to_vec(),
            generator: read[k_steps],
            parts: (names.zip(&read[first_part..]))
                .map(|((n, _), &v)| (n.clone(), v))
                .collect(),
        })
    }

    /// G(blurred) ([b, 3, c, c] in, the same out) with the weights validation uses: the moving
    /// average when the training section has `ema`, else the current weights.
    pub fn generate(&self, blurred: &[f32]) -> Result<Vec<f32>, TrainError> {
        self.forward.write(&self.forward_in, blurred)?;
        self.submit("feeding the generator", |enc| {
            self.forward
                .feed_params_with(enc, &self.nets, self.inference_weights())
        })?;
        self.forward.exe.run()?;
        Ok(self.forward.exe.read(self.forward_out.node)?)
    }

    /// Where inference takes the generator's weights from: its moving average, when there is
    /// one (`None`: its current weights).
    pub(super) fn inference_weights(&self) -> Option<(usize, &wgpu::Buffer)> {
        self.ema.as_ref().map(|e| (GENERATOR, &e.e))
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
pub(super) fn parts_of(b: &Bound) -> Vec<(String, NodeId)> {
    (PARTS.iter())
        .filter_map(|p| b.outputs.get(*p).map(|&n| (p.to_string(), n)))
        .collect()
}

/// Ties of consecutive scalars from element `at` of a flat buffer.
fn ties_at(parts: &[(String, NodeId)], at: usize) -> impl Iterator<Item = Tie> + '_ {
    (parts.iter().enumerate()).map(move |(i, &(_, node))| Tie { at: at + i, node })
}
