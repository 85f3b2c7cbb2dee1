//! `irdc demo`: the built-in job, on a fresh machine with no GPU and no download. Trains a small
//! IRD-GAN (the model file is built into the binary) on the procedural data with the model's own
//! training section (`runtime::train::run`, as `irdc train` does), then deblurs the held-out
//! procedural pairs with the checkpoint it wrote (as `irdc deblur` does) and prints PSNR/SSIM of
//! the blurred inputs and of the deblurred outputs. Sized to take a few minutes on lavapipe.

use super::deblurrer::Deblurrer;
use anyhow::{bail, Context, Result};
use runtime::data::{DataSpec, Split};
use runtime::metrics::{psnr, ssim, Rgb8};
use runtime::train::rundir::{self, RunLock};
use runtime::train::{Event, RunOptions};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

const MODEL: &str = include_str!("../../models/ird_gan.ron");
const MODEL_PATH: &str = "models/ird_gan.ron";

#[derive(clap::Args)]
pub struct Args {
    /// The run directory: checkpoint, metrics, loss plot, training samples, held-out results
    #[arg(long, default_value = "demo")]
    out: PathBuf,
    /// Generator width (docs/spec.md's N; 64 is the paper's)
    #[arg(long, default_value_t = 8)]
    n: usize,
    /// Size of the procedural training images, trained on whole (a multiple of 4)
    #[arg(long, default_value_t = 32)]
    train_size: usize,
    /// Generator steps
    #[arg(long, default_value_t = 2500)]
    steps: u64,
    /// Adam's learning rate (the model's `lr`; docs/spec.md's 1e-4 needs far more steps than a demo
    /// has, and above about 1e-3 the small generator collapses to the identity)
    #[arg(long, default_value_t = 3e-4)]
    lr: f64,
    /// Images per step (the model's `batch`; docs/spec.md's is 1): at these sizes a step costs about
    /// the same for 1 image or 4, so 4 learn faster
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Decay of the moving average of the generator's weights that the checkpoint keeps and
    /// the held-out images are deblurred with (the model's `ema`; 0: none)
    #[arg(long, default_value_t = 0.99)]
    ema: f64,
    /// Score the held-out pairs every this many steps (metrics.csv, the plot's third panel)
    #[arg(long, default_value_t = 500)]
    validate_every: u64,
    /// Held-out procedural pairs to deblur and score
    #[arg(long, default_value_t = 8)]
    test_images: u64,
    /// Size of the held-out images (a multiple of 4)
    #[arg(long, default_value_t = 128)]
    test_size: usize,
    /// Length of the blur trajectories relative to docs/spec.md's 60 pixels: 60-pixel paths wipe out
    /// a 32-pixel image, so the demo's are shorter
    #[arg(long, default_value_t = 0.2)]
    blur_scale: f64,
}

pub fn main(args: Args) -> Result<()> {
    for (flag, v) in [
        ("--train-size", args.train_size),
        ("--test-size", args.test_size),
    ] {
        if v == 0 || v % 4 != 0 {
            bail!("{flag} {v}: the generator needs a positive multiple of 4");
        }
    }
    if args.steps == 0 || args.test_images == 0 || args.validate_every == 0 {
        bail!("--steps, --test-images and --validate-every must be at least 1");
    }
    if !(0.0..1.0).contains(&args.ema) {
        bail!(
            "--ema {}: a decay in [0, 1), e.g. 0.999 (0: none)",
            args.ema
        );
    }
    let started = Instant::now();
    // The recipe that makes a small IRD-GAN deblur in minutes (benches/README.md, "demo"): the
    // content loss alone, as a warm-up the length of the run (the critic is never built), on
    // the squared error rather than L1 (no VGG19 weights ship with irdc), without dropout, from
    // weights 10x smaller than docs/spec.md's 0.02, scored with a moving average of the weights. Each
    // of the first four made the difference between a generator that collapses to its skip
    // connection and one that sharpens.
    let sets: Vec<String> = [
        format!("N={}", args.n),
        format!("H={}", args.train_size),
        format!("W={}", args.train_size),
        format!("lr={}", args.lr),
        format!("batch={}", args.batch),
        format!("warmup={}", args.steps),
        format!("ema={}", args.ema),
        format!("validate_every={}", args.validate_every),
        "per_weight=0".into(),
        "l1_weight=0".into(),
        "l2_weight=100".into(),
        "dropout=0".into(),
        "init_std=0.002".into(),
    ]
    .into();
    println!(
        "training IRD-GAN's generator ({MODEL_PATH}, built in) with {} on whole {1}x{1} procedural \
         images blurred by {2}x-length trajectories: {3} steps on the content loss alone (the \
         warm-up recipe; the critic joins after `warmup` steps in `irdc train`), the squared \
         error in place of docs/spec.md's L1 and perceptual terms (VGG19's ImageNet weights do not ship \
         with irdc), no dropout, weights initialised at std 0.002, a moving average of the weights \
         (decay {4}) for the checkpoint and the held-out pairs",
        sets.join(" "),
        args.train_size,
        args.blur_scale,
        args.steps,
        args.ema
    );
    let gpu = runtime::Gpu::new()?;
    println!("{}", gpu.describe());
    // The demo's directory is its own product: a second demo starts over in it, and says so.
    let _lock = RunLock::take(&args.out)?;
    if let Some(held) = rundir::held(&args.out) {
        println!(
            "starting over in {}: replacing the run there ({held}, plot and samples)",
            args.out.display()
        );
        rundir::clear(&args.out)?;
    }
    let opts = RunOptions {
        model_source: MODEL.into(),
        model_path: MODEL_PATH.into(),
        sets,
        data: DataSpec::Procedural {
            size: args.train_size,
            noise: 0.0,
            blur_scale: args.blur_scale,
        },
        out: args.out.clone(),
        total_steps: args.steps,
        resume: false,
        frozen: HashMap::new(),
        debug_nan_at: None,
        stop_after: None,
        // Validation every --validate-every steps on a seeded slice of the held-out split, of
        // the size of the pairs scored below.
        validation: runtime::train::Validation {
            images: Some(args.test_images as usize),
            size: Some(args.test_size),
            ..Default::default()
        },
    };
    let bar = super::training_bar(args.steps, true);
    let validated = std::cell::Cell::new(false);
    runtime::train::run(&gpu, &opts, &mut |e| match e {
        // Lines through `suspend` show with or without a terminal (the bar alone is hidden in logs).
        Event::Started { params, .. } => {
            bar.suspend(|| {
                println!(
                    "generator {} parameters, critic {}",
                    super::format_count(params[0]),
                    super::format_count(params[1])
                )
            });
            bar.set_message(super::first_step(1));
        }
        Event::Step {
            step,
            losses,
            steps_per_s,
            ..
        } => {
            let critic = match losses.critic.last() {
                Some(c) => format!("critic {c:.3} "),
                None => String::new(),
            };
            let line = format!(
                "{critic}generator {:.4} {steps_per_s:.2} steps/s",
                losses.generator
            );
            bar.set_position(step);
            if step % 100 == 0 {
                bar.suspend(|| println!("step {step}/{}: {line}", args.steps));
            }
            bar.set_message(line);
        }
        Event::Validating { step } => {
            bar.set_position(step);
            bar.set_message(super::validating(step, !validated.get()));
        }
        Event::Validated { step, scores, .. } => bar.suspend(|| {
            validated.set(true);
            println!(
                "step {step}: held-out PSNR {:.2} dB deblurred, {:.2} dB blurred ({:+.2} dB)",
                scores.psnr,
                scores.psnr_blurred,
                scores.psnr - scores.psnr_blurred
            )
        }),
        Event::Checkpoint(_) | Event::Sample(_) => {}
    })?;
    bar.finish();
    let trained = started.elapsed().as_secs_f64();
    let ckpt = args.out.join("checkpoint.safetensors");
    println!("trained in {trained:.0} s; checkpoint: {}", ckpt.display());

    // The held-out procedural pairs: never seen in training (another stream of the same seed).
    let held_out = runtime::data::open(
        &DataSpec::Procedural {
            size: args.test_size,
            noise: 0.0,
            blur_scale: args.blur_scale,
        },
        Split::Test,
        None,
        0,
    )?;
    let count = held_out
        .len()
        .map_or(args.test_images, |n| n.min(args.test_images));
    let mut deblurrer = Deblurrer::new(&ckpt, &[], false, gpu.clone())?;
    let samples = args.out.join("held_out");
    std::fs::create_dir_all(&samples)
        .with_context(|| format!("cannot create {}", samples.display()))?;
    let mut sum = [0.0f64; 4];
    for i in 0..count {
        let pair = held_out.pair(i)?;
        let deblurred = deblurrer.deblur(&pair.blurred)?;
        let (b, d, s) = (
            Rgb8::from_tensor(&pair.blurred)?,
            Rgb8::from_tensor(&deblurred)?,
            Rgb8::from_tensor(&pair.sharp)?,
        );
        let scores = [psnr(&b, &s)?, ssim(&b, &s)?, psnr(&d, &s)?, ssim(&d, &s)?];
        for (acc, v) in sum.iter_mut().zip(scores) {
            *acc += v;
        }
        let path = samples.join(format!("{i:02}.png"));
        runtime::train::plot::triptych_png(&path, [&pair.blurred, &deblurred, &pair.sharp])
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let m: Vec<f64> = sum.iter().map(|v| v / count as f64).collect();
    println!(
        "{count} held-out {0}x{0} procedural pairs:\n  blurred inputs: PSNR {1:.2} dB, SSIM {2:.4}\n  deblurred:      PSNR {3:.2} dB, SSIM {4:.4} ({5:+.2} dB)",
        args.test_size,
        m[0],
        m[1],
        m[2],
        m[3],
        m[2] - m[0]
    );
    println!(
        "wrote {0}/held_out/NN.png (blurred | deblurred | sharp), {0}/samples/, {0}/losses.png, {0}/metrics.csv; \
         try `irdc deblur --checkpoint {1} IMAGE --out DIR`; total {2:.0} s",
        args.out.display(),
        ckpt.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
