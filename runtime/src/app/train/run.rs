//! The training loop around [`Trainer::step`]: data (by index, from the step), the learning-rate
//! schedule, the NaN guard, validation, and the run directory: `checkpoint.safetensors` (the last
//! good one), `best.safetensors` (the one of the best validation PSNR), `metrics.csv`,
//! `losses.png`, `samples/step_NNNNNN.png` (blurred | deblurred | sharp of a whole held-out
//! image). Steps are counted from 1 in everything a person reads. In a data-parallel run
//! ([`run_parallel`]) every rank trains on its share of each batch, and rank 0 alone writes the
//! run directory and validates.

use super::collective::{DataParallel, Share};
use super::metrics_file::{number, MetricsFile, Row};
use super::plot::{panels_png, triptych_png, Panel};
use super::validate::{validation_pairs, ValScores, Validator};
use super::{StepLosses, TrainError, Trainer};
use crate::checkpoint::{self, Meta};
use crate::data::{self, rng_for, DataSpec, Loader, Split};
use crate::device::Gpu;
use ir::front::TrainingSpec;
use ir::Tensor;
use rand::Rng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The stream of the WGAN-GP interpolation weights, apart from the data's.
const ALPHA_STREAM: u64 = 0xa1fa;
/// The metadata key of `best.safetensors`' validation PSNR.
const BEST_PSNR: &str = "val_psnr";
/// The checkpoint metadata key of the run's rank count (absent: 1).
pub const RANKS: &str = "ranks";

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
    /// The command line's validation settings, over the training section's.
    pub validation: Validation,
}

/// Validation settings that replace the training section's (`irdc train --validate-every N
/// --val-images N --val-data DIR`); `None` keeps the section's.
#[derive(Debug, Clone, Default)]
pub struct Validation {
    pub every: Option<usize>,
    pub images: Option<usize>,
    pub size: Option<usize>,
    pub data: Option<PathBuf>,
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
    /// Sent when a step's update is done and its validation starts (before `Validated`).
    Validating {
        step: u64,
    },
    /// Sent before the step's `Step` event, on steps that validate.
    Validated {
        step: u64,
        scores: &'a ValScores,
        /// `best.safetensors` when this step's PSNR is the best so far (it was just written).
        best: Option<&'a Path>,
    },
    Checkpoint(&'a Path),
    Sample(&'a Path),
}

/// The learning rate at 0-based `step` of `total`: constant for the first `decay_after` of the
/// run, then linear to 0 (docs/spec.md: 150 epochs constant, 150 decaying).
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

/// The training section with the command line's validation settings applied.
fn with_validation(mut spec: TrainingSpec, v: &Validation) -> Result<TrainingSpec, TrainError> {
    for (flag, value) in [("--validate-every", v.every), ("--val-images", v.images)] {
        if value == Some(0) {
            return Err(TrainError::Setup(format!(
                "{flag} 0: it must be at least 1"
            )));
        }
    }
    spec.validate_every = v.every.unwrap_or(spec.validate_every);
    spec.val_images = v.images.unwrap_or(spec.val_images);
    spec.val_size = v.size.unwrap_or(spec.val_size);
    if let Some(d) = &v.data {
        spec.val_data = Some(d.display().to_string());
    }
    Ok(spec)
}

/// Train; returns the losses of the last step run.
pub fn run(
    gpu: &Gpu,
    opts: &RunOptions,
    on: &mut dyn FnMut(Event),
) -> Result<Option<StepLosses>, TrainError> {
    run_parallel(gpu, opts, None, on)
}

/// [`run`] as one rank of a data-parallel run (`None`: the only process). The training section's
/// `batch` is each rank's; the ranks' shares make up a global batch of `ranks * batch`, drawn
/// from the data stream, the alphas and the dropout masks exactly as one process with that batch
/// would draw them. A resumed run continues the data stream after the pairs its checkpoint's
/// steps used, whatever rank count wrote it.
pub fn run_parallel(
    gpu: &Gpu,
    opts: &RunOptions,
    parallel: Option<&DataParallel>,
    on: &mut dyn FnMut(Event),
) -> Result<Option<StepLosses>, TrainError> {
    let (rank, ranks) = parallel.map_or((0, 1), |p| (p.comm.rank(), p.comm.size()));
    let leader = rank == 0;
    let overrides = (opts.sets.iter())
        .map(|s| ir::front::parse_set(s))
        .collect::<Result<Vec<_>, _>>()?;
    let model = ir::front::parse(&opts.model_source, &opts.model_path, &overrides)?;
    let mut spec = with_validation(model.training_spec()?, &opts.validation)?;
    // A warm-up as long as the run leaves the critic untrained: it is not even compiled.
    if spec.warmup as u64 >= opts.total_steps {
        spec.critic = None;
    }
    // The validation set first: a wrong folder stops the run before anything is compiled.
    let val_data = spec.val_data.as_ref().map(PathBuf::from);
    let pairs = validation_pairs(&opts.data, &spec, val_data.as_deref(), spec.val_images)?;
    let mut trainer = Trainer::new(gpu, &model, &spec, &opts.frozen)?;
    if let Some(p) = parallel {
        trainer.set_parallel(p.clone());
    }
    if leader {
        std::fs::create_dir_all(opts.out.join("samples")).map_err(|e| io_err(&opts.out, e))?;
    }
    let ckpt = opts.out.join("checkpoint.safetensors");
    let best_path = opts.out.join("best.safetensors");
    let (mut first, mut seen_ranks) = (0, 1);
    if opts.resume {
        let (tensors, meta) = checkpoint::load(&ckpt)?;
        trainer.load_state(&tensors)?;
        first = meta.step;
        seen_ranks = ranks_of(&ckpt)?;
    }
    let header = MetricsFile::header(&trainer.part_names());
    let (metrics, kept) = match leader {
        true => {
            let (m, kept) = MetricsFile::open(&opts.out.join("metrics.csv"), header, first)?;
            (Some(m), kept)
        }
        false => (None, Vec::new()),
    };
    let mut history: Vec<Row> = kept;
    // The best validation so far: that of best.safetensors if it is from before the resume point
    // (a later one is recomputed exactly by the resumed run).
    let mut best = f64::NEG_INFINITY;
    if opts.resume {
        if let Ok(m) = checkpoint::metadata(&best_path) {
            let step = m.get("step").and_then(|s| s.parse::<u64>().ok());
            let psnr = m.get(BEST_PSNR).and_then(|s| s.parse::<f64>().ok());
            if let (Some(s), Some(p)) = (step, psnr) {
                if s <= first {
                    best = p;
                }
            }
        }
    }
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
    let source = Box::new(Share {
        inner: data::open(&opts.data, Split::Train, Some(c), spec.seed)?,
        base: first * (seen_ranks * b) as u64,
        batch: b as u64,
        ranks: ranks as u64,
        rank: rank as u64,
    });
    let validator = match leader {
        true => Some(Validator::new(&trainer, &model, pairs)?),
        false => None,
    };
    let mut loader = Loader::spawn(source, 0, None, 2 * b);
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
        // One stream per step: a step without critic updates draws none, and changes no other.
        let critic_steps = match trainer.is_content_step(step) {
            true => 0,
            false => spec.critic_steps,
        };
        // The whole batch's alphas, of which this rank takes its share.
        let mut rng = rng_for(spec.seed ^ ALPHA_STREAM, step);
        let alphas: Vec<Vec<f32>> = (0..critic_steps)
            .map(|_| {
                let all: Vec<f32> = (0..ranks * b).map(|_| rng.random::<f32>()).collect();
                all[rank * b..(rank + 1) * b].to_vec()
            })
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
        let steps_per_s = (step + 1 - first) as f64 / started.elapsed().as_secs_f64();
        // The other ranks write nothing: they only train.
        let (Some(metrics), Some(validator)) = (&metrics, &validator) else {
            on(Event::Step {
                step: human,
                losses: &losses,
                lr,
                steps_per_s,
            });
            last = Some(losses);
            continue;
        };
        let validates = human % spec.validate_every as u64 == 0 || human == end;
        if validates {
            on(Event::Validating { step: human });
        }
        let validated = match validates {
            true => Some(validator.run(&trainer)?),
            false => None,
        };
        let seconds = started.elapsed().as_secs_f64();
        let row = row(
            human,
            &losses,
            lr,
            seconds,
            validated.as_ref().map(|v| &v.0),
        );
        metrics.append(&row)?;
        history.push(row);
        if let Some((scores, _)) = &validated {
            let improved = scores.psnr > best;
            if improved {
                best = scores.psnr;
                let extra = [
                    (BEST_PSNR, scores.psnr.to_string()),
                    ("val_ssim", scores.ssim.to_string()),
                ];
                checkpoint::save_with(&best_path, &trainer.state()?, &meta(human), &extra)?;
            }
            on(Event::Validated {
                step: human,
                scores,
                best: improved.then_some(best_path.as_path()),
            });
        }
        on(Event::Step {
            step: human,
            losses: &losses,
            lr,
            steps_per_s,
        });
        if human % spec.sample_every as u64 == 0 || human == end {
            let path = opts.out.join(format!("samples/step_{human:06}.png"));
            let deblurred = match validated {
                Some((_, first)) => first,
                None => validator.deblur(&trainer, 0)?,
            };
            let pair = validator.pair(0);
            triptych_png(&path, [&pair.blurred, &deblurred, &pair.sharp])
                .map_err(|e| io_err(&path, e))?;
            plot(&opts.out.join("losses.png"), &history, trainer.has_critic())?;
            on(Event::Sample(&path));
        }
        if human % spec.checkpoint_every as u64 == 0 || human == end {
            let extra = [(RANKS, ranks.to_string())];
            checkpoint::save_with(&ckpt, &trainer.state()?, &meta(human), &extra)?;
            on(Event::Checkpoint(&ckpt));
        }
        last = Some(losses);
    }
    Ok(last)
}

/// How many ranks trained the run of checkpoint `path` (1 when it does not say).
pub fn ranks_of(path: &Path) -> Result<usize, TrainError> {
    let m = checkpoint::metadata(path)?;
    match m.get(RANKS) {
        None => Ok(1),
        Some(v) => v.parse().map_err(|_| {
            TrainError::Setup(format!(
            "{}: its `{RANKS}` metadata is {v:?}, not a rank count; was the file changed by hand?",
            path.display()
        ))
        }),
    }
}

/// A step's row of the metrics file.
fn row(step: u64, l: &StepLosses, lr: f64, seconds: f64, v: Option<&ValScores>) -> Row {
    let mut row = Row::new();
    let mut put = |k: &str, v: String| {
        row.insert(k.to_string(), v);
    };
    put("step", step.to_string());
    if let Some(c) = l.critic.last() {
        put("critic_loss", c.to_string());
    }
    put("generator_loss", l.generator.to_string());
    for (name, v) in &l.parts {
        put(name, v.to_string());
    }
    put("lr", format!("{lr:e}"));
    put("seconds", format!("{seconds:.3}"));
    if let Some(v) = v {
        put("val_psnr", v.psnr.to_string());
        put("val_ssim", v.ssim.to_string());
        put("val_psnr_blurred", v.psnr_blurred.to_string());
        put("val_ssim_blurred", v.ssim_blurred.to_string());
    }
    row
}

/// losses.png: the critic's loss (with a critic), the generator's, and the validation PSNR of
/// the deblurred images against that of the blurred ones.
fn plot(path: &Path, history: &[Row], critic: bool) -> Result<(), TrainError> {
    let series = |column: &str| -> Vec<(u64, f32)> {
        (history.iter())
            .filter_map(|r| Some((r.get("step")?.parse().ok()?, number(r, column))))
            .collect()
    };
    let mut panels = Vec::new();
    if critic {
        panels.push(Panel {
            title: "critic",
            lines: vec![("critic", series("critic_loss"))],
        });
    }
    panels.push(Panel {
        title: "generator",
        lines: vec![("generator", series("generator_loss"))],
    });
    panels.push(Panel {
        title: "validation PSNR (dB)",
        lines: vec![
            ("deblurred", series("val_psnr")),
            ("blurred", series("val_psnr_blurred")),
        ],
    });
    panels_png(path, &panels).map_err(|e| io_err(path, e))
}
