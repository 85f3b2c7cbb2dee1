//! `irdc train MODEL [--data DIR] [--set NAME=VALUE].. [--out RUN_DIR] [--resume | --overwrite]
//! [--vgg19 FILE] [--steps N] [--validate-every N] [--val-data DIR] [--val-images N]`: train the
//! model's generator and critic as its `training:` section says (docs/spec.md "Training"), on the GPU.
//! The run directory gets `checkpoint.safetensors` (every `checkpoint_every` steps and at the end;
//! the last good one is kept when a loss turns NaN), `best.safetensors` (the best validation
//! PSNR), `metrics.csv`, `losses.png` and `samples/step_NNNNNN.png` (blurred | deblurred |
//! sharp). It is locked for the run (`irdc.lock`), and a run already in it is refused unless
//! continued (`--resume`) or replaced (`--overwrite`). Under `mpirun -np K` (the `mpi` feature,
//! docs/mpi.md) each rank trains on its share of every batch and rank 0 alone writes the run.

use super::ModelArgs;
use crate::mpi::{self, Mpi};
use anyhow::{bail, Context, Result};
use ir::front::{DataDefault, Length};
use runtime::data::DataSpec;
use runtime::train::rundir::{self, RunLock};
use runtime::train::{Collective, DataParallel, Event, RunOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Pairs in an epoch of endless procedural data: GoPro's training set, so a schedule in epochs
/// means the same amount of training on either.
const PROCEDURAL_EPOCH: u64 = 2103;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Training data: a GoPro_Large folder (with train/ and test/) or a folder of sharp images
    /// (blurred on the fly); default: the model's `data` (procedural images)
    #[arg(long)]
    data: Option<PathBuf>,
    /// Length of the synthetic blur's trajectories relative to docs/spec.md's 60 pixels (procedural
    /// data and folders of sharp images; give the same value again with --resume)
    #[arg(long, default_value_t = 1.0)]
    blur_scale: f64,
    /// The run directory (checkpoint, metrics, plot, samples)
    #[arg(long, default_value = "runs/train")]
    out: PathBuf,
    /// Continue the run in --out from its checkpoint, exactly where it stopped
    #[arg(long)]
    resume: bool,
    /// Start over in an --out that holds a run: its checkpoint, metrics, plot and samples are
    /// removed (without this, or --resume, such an --out is refused)
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// VGG19's ImageNet weights (safetensors, torchvision's names: features.0.weight, ..)
    #[arg(long, value_name = "FILE")]
    vgg19: Option<PathBuf>,
    /// Generator steps of the whole run (instead of the model's schedule)
    #[arg(long)]
    steps: Option<u64>,
    /// Validate every N generator steps (default: the model's `validate_every`, else its
    /// `sample_every`): PSNR/SSIM of whole held-out images, into metrics.csv and best.safetensors
    #[arg(long, value_name = "N")]
    validate_every: Option<usize>,
    /// Validation pairs: a GoPro_Large root (its test/), a split, or one sequence (blur/, sharp/);
    /// default: the model's `val_data`, else a seeded slice of the training data's held-out split
    #[arg(long, value_name = "DIR")]
    val_data: Option<PathBuf>,
    /// Images in the validation set (default: the model's `val_images`, 8)
    #[arg(long, value_name = "N")]
    val_images: Option<usize>,
    /// Under mpirun: about how many bytes of gradients each all-reduce takes, e.g. 512K or 16M
    /// (default: 4M on a GPU, all at once on a CPU adapter); the first bucket starts while the
    /// backward pass still runs (docs/mpi.md)
    #[arg(long, value_name = "SIZE", value_parser = super::parse_bytes)]
    bucket: Option<u64>,
    /// Test hook: feed NaN images at this step (1-based), to check that training stops cleanly
    #[arg(long, hide = true)]
    debug_nan_at: Option<u64>,
    /// Test hook: stop after this many steps, as if interrupted (a checkpoint is written)
    #[arg(long, hide = true)]
    stop_after: Option<u64>,
    /// Test hook (MPI): `RANK:STEP`, that rank kills itself (SIGKILL) after that step (1-based)
    #[arg(long, hide = true, value_name = "RANK:STEP")]
    debug_kill: Option<String>,
    #[command(flatten)]
    device: super::DeviceArgs,
}

pub fn main(args: Args) -> Result<()> {
    let job = mpi::start()?;
    let result = train(args, job.clone());
    if let (Err(e), Some(job)) = (&result, &job) {
        job.fail(&crate::chain(e));
    }
    result
}

fn train(args: Args, job: Option<Rc<Mpi>>) -> Result<()> {
    let out = &args.out;
    let ranks = job.as_ref().map_or(1, |j| j.size());
    let leader = job.as_ref().is_none_or(|j| j.rank() == 0);
    // One run at a time in a directory, for all of this one; a run already there is kept
    // unless --resume continues it or --overwrite says to start over. Rank 0 speaks for the job.
    let _lock = leader.then(|| RunLock::take(out)).transpose()?;
    let held = rundir::held(out).filter(|_| !args.resume && leader);
    if let Some(held) = held.as_ref().filter(|_| !args.overwrite) {
        let resume = match held.checkpoint {
            Some(_) => "continue it with --resume, ",
            None => "",
        };
        bail!(
            "{} already holds a run ({held}): {resume}start over with --overwrite, or choose another --out",
            out.display()
        );
    }
    let ckpt = out.join("checkpoint.safetensors");
    // A resumed run is rebuilt from what its checkpoint recorded, not from today's model file.
    let (source, model_path, sets, recorded_total) = if args.resume {
        let (_, meta) = runtime::checkpoint::load(&ckpt)
            .with_context(|| format!("--resume: reading {}", ckpt.display()))?;
        let today = std::fs::read_to_string(&args.model.model).unwrap_or_default();
        if today != meta.model_source || (!args.model.set.is_empty() && args.model.set != meta.sets)
        {
            eprintln!("warning: --resume uses the model and --set values recorded in {} ({}), not the ones given now", ckpt.display(), meta.sets.join(","));
        }
        let was = runtime::train::run::ranks_of(&ckpt)?;
        if was != ranks && leader {
            eprintln!("{}", other_rank_count(was, ranks, meta.step));
        }
        (
            meta.model_source,
            meta.model_path,
            meta.sets,
            Some(meta.total_steps),
        )
    } else {
        let text = std::fs::read_to_string(&args.model.model).with_context(|| {
            format!("cannot read the model file {}", args.model.model.display())
        })?;
        args.model.load()?; // the model's own errors, with file:line:col
        (
            text,
            args.model.model.display().to_string(),
            args.model.set.clone(),
            None,
        )
    };
    let overrides = sets
        .iter()
        .map(|s| ir::front::parse_set(s))
        .collect::<Result<Vec<_>, _>>()?;
    let model = ir::front::parse(&source, &model_path, &overrides)?;
    let spec = model.training_spec()?;
    let data = match &args.data {
        Some(dir) if dir.join("train").is_dir() => DataSpec::GoPro { dir: dir.clone() },
        Some(dir) => DataSpec::SharpFolder {
            dir: dir.clone(),
            noise: 0.0,
            blur_scale: args.blur_scale,
        },
        None => match &spec.data {
            DataDefault::Procedural => DataSpec::Procedural {
                size: spec.crop,
                noise: 0.0,
                blur_scale: args.blur_scale,
            },
            DataDefault::Folder(p) => DataSpec::SharpFolder {
                dir: p.into(),
                noise: 0.0,
                blur_scale: args.blur_scale,
            },
            DataDefault::GoPro(p) => DataSpec::GoPro { dir: p.into() },
        },
    };
    let total = match (args.steps, recorded_total, spec.length) {
        (Some(n), _, _) => n,
        (None, Some(n), _) => n,
        (None, None, Length::Steps(n)) => n as u64,
        (None, None, Length::Epochs(e)) => {
            let source = runtime::data::open(
                &data,
                runtime::data::Split::Train,
                Some(spec.crop),
                spec.seed,
            )?;
            let per_epoch = source
                .len()
                .unwrap_or(PROCEDURAL_EPOCH)
                .div_ceil((spec.batch * ranks) as u64);
            e as u64 * per_epoch
        }
    };
    if total == 0 {
        bail!("--steps 0: nothing to train");
    }
    let frozen = match &args.vgg19 {
        Some(path) => vgg19(path)?,
        None => HashMap::new(),
    };
    let gpu = match &job {
        Some(j) => args.device.open_at(j.local())?,
        None => args.device.open()?,
    };
    match &job {
        Some(j) => eprintln!("{}: {}", j.who(), gpu.describe()),
        None => eprintln!("{}", gpu.describe()),
    }
    let kill = debug_kill(
        args.debug_kill.as_deref(),
        job.as_ref().map_or(0, |j| j.rank()),
    )?;
    let opts = RunOptions {
        model_source: source,
        model_path,
        sets,
        data,
        out: out.clone(),
        total_steps: total,
        resume: args.resume,
        frozen,
        debug_nan_at: args.debug_nan_at,
        stop_after: args.stop_after,
        validation: runtime::train::Validation {
            every: args.validate_every,
            images: args.val_images,
            size: None,
            data: args.val_data.clone(),
        },
    };
    let mut validation = String::new();
    // Validation and samples use the moving average of the weights when there is one.
    let weights = match spec.ema {
        Some(decay) => format!(" (EMA weights, decay {decay})"),
        None => String::new(),
    };
    if let Some(held) = held {
        // Only now, with the model, data and device known good, is the old run removed.
        eprintln!(
            "--overwrite: starting over in {} (removing its {held}, plot and samples)",
            out.display()
        );
        rundir::clear(out)?;
    }
    let bar = super::training_bar(total, leader);
    let parallel = job.clone().map(|j| DataParallel {
        bucket_bytes: args.bucket,
        ..DataParallel::new(j as Rc<dyn Collective>)
    });
    let run = |on: &mut dyn FnMut(Event)| {
        runtime::train::run::run_parallel(&gpu, &opts, parallel.as_ref(), on)
    };
    let result = run(&mut |e| match e {
        Event::Started {
            first,
            total,
            params,
        } => {
            bar.set_position(first);
            bar.set_message(super::first_step(first + 1));
            bar.println(format!(
                "training {total} steps from step {}: generator {} parameters, critic {}, frozen {}",
                first + 1,
                super::format_count(params[0]),
                super::format_count(params[1]),
                super::format_count(params[2])
            ));
        }
        Event::Step {
            step,
            losses,
            lr,
            steps_per_s,
        } => {
            if kill == Some(step) {
                die();
            }
            bar.set_position(step);
            let critic = match losses.critic.last() {
                Some(c) => format!("critic {c:.4} "),
                None => String::new(),
            };
            bar.set_message(format!(
                "{critic}generator {:.4}{validation} lr {lr:.2e} {steps_per_s:.2} steps/s",
                losses.generator
            ));
        }
        Event::Validating { step } => {
            bar.set_position(step);
            bar.set_message(super::validating(step, validation.is_empty()));
        }
        Event::Validated { step, scores, best } => {
            validation = format!(
                " val {:.2} dB {:.4} (blurred {:.2} dB {:.4})",
                scores.psnr, scores.ssim, scores.psnr_blurred, scores.ssim_blurred
            );
            let best = match best {
                Some(path) => format!("; the best so far: {}", path.display()),
                None => String::new(),
            };
            // Through `suspend`, the line shows with or without a terminal (unlike `println`).
            bar.suspend(|| {
                eprintln!(
                    "step {step}: validation{weights} PSNR {:.2} dB, SSIM {:.4} (blurred inputs: {:.2} dB, {:.4}){best}",
                    scores.psnr, scores.ssim, scores.psnr_blurred, scores.ssim_blurred
                )
            });
        }
        Event::Checkpoint(_) | Event::Sample(_) => {}
    });
    bar.finish();
    result?;
    if !leader {
        return Ok(());
    }
    if let Some(p) = &parallel {
        eprintln!("{ranks} ranks: {}", p.times.get().per_step());
    }
    eprintln!(
        "run directory: {} (checkpoint.safetensors, best.safetensors, metrics.csv, losses.png, samples/)",
        out.display()
    );
    Ok(())
}

/// What `--resume` does with a checkpoint that `was` ranks wrote, resumed on `now` ranks.
fn other_rank_count(was: usize, now: usize, step: u64) -> String {
    format!(
        "note: --resume: the checkpoint is from a {was}-rank run, resumed on {now}: the global batch becomes {now} x the model's batch (was {was} x), the weights, Adam moments and step count carry over and the data continues after the pairs its {step} steps used, but the run no longer computes what the {was}-rank run would have; resume on {was} ranks for that"
    )
}

/// The step after which this rank (`--debug-kill RANK:STEP`) kills itself, if it is this one.
fn debug_kill(arg: Option<&str>, rank: usize) -> Result<Option<u64>> {
    let Some(arg) = arg else { return Ok(None) };
    let parsed = arg
        .split_once(':')
        .and_then(|(r, s)| Some((r.parse::<usize>().ok()?, s.parse::<u64>().ok()?)));
    match parsed {
        Some((r, step)) => Ok((r == rank).then_some(step)),
        None => bail!("--debug-kill {arg}: expected RANK:STEP, e.g. 1:3"),
    }
}

/// Die as a crashed process does, without unwinding or flushing anything.
fn die() -> ! {
    #[cfg(unix)]
    // SAFETY: kill(2) on this process's own id; it does not return for SIGKILL.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

/// torchvision's VGG19 state dict (`features.N.weight`) as the model's frozen `vgg19.*` tensors.
fn vgg19(path: &Path) -> Result<HashMap<String, ir::Tensor<f32>>> {
    let file = runtime::io::read_tensors(path)?;
    let out: HashMap<_, _> = file
        .tensors
        .into_iter()
        .filter(|(n, _)| n.starts_with("features."))
        .map(|(n, t)| (format!("vgg19.{n}"), t))
        .collect();
    if out.is_empty() {
        bail!(
            "{}: no tensors named features.N.weight / features.N.bias (torchvision's VGG19 names)",
            path.display()
        );
    }
    Ok(out)
}
