//! The training loop around [`Trainer::step`]: data (by index, from the step), the learning-rate
//! schedule, the NaN guard, and the run directory: `checkpoint.safetensors` (the last good one),
//! `metrics.csv`, `losses.png`, `samples/step_NNNNNN.png` (blurred | deblurred | sharp of a
//! held-out pair). Steps are counted from 1 in everything a person reads.

use super::plot::{losses_png, triptych_png};
use super::{StepLosses, TrainError, Trainer};
use crate::checkpoint::{self, Meta};
use crate::data::{self, rng_for, DataSpec, Loader, Split};
use crate::device::Gpu;
use ir::front::TrainingSpec;
use ir::Tensor;
use rand::Rng;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The stream of the WGAN-GP interpolation weights, apart from the data's.
const ALPHA_STREAM: u64 = 0xa1fa;

pub struct RunOptions {
    /// The model file's text, its path and the `--set` overrides (`NAME=VALUE`): the checkpoint
    /// keeps all three, so a run can be rebuilt from its checkpoint alone.
    pub model_source: String,
    pub model_path: String,
    pub sets: Vec<String>,
    pub data: DataSpec,
    pub out: PathBuf,
    /// Generator steps of the whole run (the schedule's length).
    pub total_steps: u64,
    /// Continue from `out/checkpoint.safetensors`.
    pub resume: bool,
    /// Frozen parameters by full name (`vgg19.features.0.weight`).
    pub frozen: HashMap<String, Tensor<f32>>,
    /// Test hook: feed NaN as the blurred and the sharp image of this step (1-based).
    pub debug_nan_at: Option<u64>,
    /// Stop (with a checkpoint) after this many steps of the run, as if interrupted.
    pub stop_after: Option<u64>,
}

/// What the loop tells its caller (the progress bar).
pub enum Event<'a> {
    Started {
        first: u64,
        total: u64,
        params: [usize; 3],
    },
    Step {
        step: u64,
        losses: &'a StepLosses,
        lr: f64,
        steps_per_s: f64,
    },
    Checkpoint(&'a Path),
    Sample(&'a Path),
}

/// The learning rate at 0-based `step` of `total`: constant for the first `decay_after` of the
/// run, then linear to 0 (SPEC.md: 150 epochs constant, 150 decaying).
pub fn lr_at(spec: &TrainingSpec, step: u64, total: u64) -> f64 {
    let start = (total as f64 * spec.decay_after).floor() as u64;
    if step < start || total <= start {
        return spec.adam.lr;
    }
    spec.adam.lr * (total - step) as f64 / (total - start) as f64
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Train; returns the losses of the last step run.
pub fn run(
    gpu: &Gpu,
    opts: &RunOptions,
    on: &mut dyn FnMut(Event),
) -> Result<Option<StepLosses>, TrainError> {
    let overrides = (opts.sets.iter())
        .map(|s| ir::front::parse_set(s))
        .collect::<Result<Vec<_>, _>>()?;
    let model = ir::front::parse(&opts.model_source, &opts.model_path, &overrides)?;
    let spec = model.training_spec()?;
    let mut trainer = Trainer::new(gpu, &model, &spec, &opts.frozen)?;
    std::fs::create_dir_all(opts.out.join("samples")).map_err(|e| io_err(&opts.out, e))?;
    let ckpt = opts.out.join("checkpoint.safetensors");
    let csv = opts.out.join("metrics.csv");
    let mut first = 0;
    if opts.resume {
        let (tensors, meta) = checkpoint::load(&ckpt)?;
        trainer.load_state(&tensors)?;
        first = meta.step;
    }
    let mut history = read_history(&csv, first)?;
    let total = opts.total_steps;
    let meta = |step: u64| Meta {
        model_source: opts.model_source.clone(),
        model_path: opts.model_path.clone(),
        sets: opts.sets.clone(),
        generator_graph: spec.generator.clone(),
        step,
        total_steps: total,
        seed: spec.seed,
    };
    let (b, c) = (spec.batch, spec.crop);
    let source = data::open(&opts.data, Split::Train, Some(c), spec.seed)?;
    let held_out = data::open(&opts.data, Split::Test, Some(c), spec.seed)?.pair(0)?;
    let mut loader = Loader::spawn(source, first * b as u64, None, 2 * b);
    on(Event::Started {
        first,
        total,
        params: trainer.counts(),
    });
    let started = Instant::now();
    let mut last = None;
    let end = opts.stop_after.map_or(total, |n| total.min(first + n));
    for step in first..end {
        let human = step + 1;
        let (mut blurred, mut sharp) = (Vec::new(), Vec::new());
        for _ in 0..b {
            let (_, pair) = loader
                .next()
                .ok_or_else(|| TrainError::Setup("the data loader stopped".into()))??;
            blurred.extend_from_slice(&pair.blurred.data);
            sharp.extend_from_slice(&pair.sharp.data);
        }
        if opts.debug_nan_at == Some(human) {
            blurred.fill(f32::NAN);
            sharp.fill(f32::NAN);
        }
        let mut rng = rng_for(spec.seed ^ ALPHA_STREAM, step);
        let alphas: Vec<Vec<f32>> = (0..spec.critic_steps)
            .map(|_| (0..b).map(|_| rng.random::<f32>()).collect())
            .collect();
        let lr = lr_at(&spec, step, total);
        let losses = trainer.step(step, &blurred, &sharp, &alphas, lr)?;
        if let Some((what, value)) = losses.non_finite() {
            let kept = ckpt.exists().then(|| ckpt.display().to_string());
            return Err(TrainError::NonFinite {
                step: human,
                what,
                value,
                checkpoint: kept,
            });
        }
        append_metrics(&csv, human, &losses, lr, started.elapsed().as_secs_f64())?;
        history.push((
            human,
            *losses.critic.last().unwrap_or(&f32::NAN),
            losses.generator,
        ));
        let steps_per_s = (step + 1 - first) as f64 / started.elapsed().as_secs_f64();
        on(Event::Step {
            step: human,
            losses: &losses,
            lr,
            steps_per_s,
        });
        if human % spec.sample_every as u64 == 0 || human == end {
            let path = opts.out.join(format!("samples/step_{human:06}.png"));
            sample(&trainer, &held_out, b, &path)?;
            let series = [
                ("critic", history.iter().map(|h| (h.0, h.1)).collect()),
                ("generator", history.iter().map(|h| (h.0, h.2)).collect()),
            ];
            let plot = opts.out.join("losses.png");
            losses_png(&plot, &series).map_err(|e| io_err(&plot, e))?;
            on(Event::Sample(&path));
        }
        if human % spec.checkpoint_every as u64 == 0 || human == end {
            checkpoint::save(&ckpt, &trainer.state()?, &meta(human))?;
            on(Event::Checkpoint(&ckpt));
        }
        last = Some(losses);
    }
    Ok(last)
}

fn sample(
    trainer: &Trainer,
    pair: &data::Pair,
    batch: usize,
    path: &Path,
) -> Result<(), TrainError> {
    let input: Vec<f32> = (0..batch)
        .flat_map(|_| pair.blurred.data.iter().copied())
        .collect();
    let out = trainer.generate(&input)?;
    let n = pair.blurred.data.len();
    let deblurred = Tensor::new(&pair.blurred.shape, out[..n].to_vec());
    triptych_png(path, [&pair.blurred, &deblurred, &pair.sharp]).map_err(|e| io_err(path, e))
}

/// The (step, critic, generator) rows of an existing metrics file up to `upto`, and the file cut
/// there (a resumed run rewrites what came after its checkpoint), through a temporary file and a
/// rename so an interruption leaves the old file whole.
fn read_history(csv: &Path, upto: u64) -> Result<Vec<(u64, f32, f32)>, TrainError> {
    let text = match std::fs::read_to_string(csv) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(csv, e)),
    };
    let mut kept = String::new();
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split(',').collect();
        let parsed = (cols.first().and_then(|s| s.parse::<u64>().ok()))
            .zip(cols.get(1).and_then(|s| s.parse::<f32>().ok()))
            .zip(cols.get(2).and_then(|s| s.parse::<f32>().ok()));
        match parsed {
            Some(((s, c), g)) if s <= upto => rows.push((s, c, g)),
            Some(_) => continue,
            None if i > 0 => continue,
            None => {}
        }
        kept.push_str(line);
        kept.push('\n');
    }
    if kept != text {
        crate::autotune::write_atomic(csv, kept.as_bytes()).map_err(|e| io_err(csv, e))?;
    }
    Ok(rows)
}

fn append_metrics(
    csv: &Path,
    step: u64,
    l: &StepLosses,
    lr: f64,
    seconds: f64,
) -> Result<(), TrainError> {
    let new = !csv.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(csv)
        .map_err(|e| io_err(csv, e))?;
    let mut text = String::new();
    if new {
        text.push_str("step,critic_loss,generator_loss");
        for (name, _) in &l.parts {
            text.push_str(&format!(",{name}"));
        }
        text.push_str(",lr,seconds\n");
    }
    text.push_str(&format!(
        "{step},{},{}",
        l.critic.last().unwrap_or(&f32::NAN),
        l.generator
    ));
    for (_, v) in &l.parts {
        text.push_str(&format!(",{v}"));
    }
    text.push_str(&format!(",{lr:e},{seconds:.3}\n"));
    f.write_all(text.as_bytes()).map_err(|e| io_err(csv, e))
}
