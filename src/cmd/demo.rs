//! `irdc demo`: the built-in job, on a fresh machine with no GPU and no download. Trains a small
//! IRD-GAN (the model file is built into the binary) on the procedural data with the model's own
//! training section (`runtime::train::run`, as `irdc train` does), then deblurs the held-out
//! procedural pairs with the checkpoint it wrote (as `irdc deblur` does) and prints PSNR/SSIM of
//! the blurred inputs and of the deblurred outputs. Sized to take a few minutes on lavapipe.

use super::deblur::Deblurrer;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
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
    /// Generator width (SPEC.md's N; 64 is the paper's)
    #[arg(long, default_value_t = 4)]
    n: usize,
    /// Critic width (the model's ndf; 64 is the paper's)
    #[arg(long, default_value_t = 4)]
    ndf: usize,
    /// Training crop (a multiple of 4; 16 keeps a step near 0.25 s on lavapipe)
    #[arg(long, default_value_t = 16)]
    crop: usize,
    /// Generator steps (each with the model's critic steps)
    #[arg(long, default_value_t = 100)]
    steps: u64,
    /// Adam's learning rate (the model's `lr`; SPEC.md's 1e-4 needs far more steps than a demo has)
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Images per step (the model's `batch`; SPEC.md's is 1): at these sizes a step costs about
    /// the same for 1 image or 4, so 4 learn faster
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Critic steps per generator step (the model's `critic_steps`; SPEC.md's is 5)
    #[arg(long, default_value_t = 1)]
    critic_steps: usize,
    /// Held-out procedural pairs to deblur and score
    #[arg(long, default_value_t = 8)]
    test_images: u64,
    /// Size of the held-out images (a multiple of 4); training crops come from images this size
    #[arg(long, default_value_t = 32)]
    test_size: usize,
    /// Length of the blur trajectories relative to SPEC.md's 60 pixels: 60-pixel paths wipe out
    /// a 32-pixel image, so the demo's are shorter
    #[arg(long, default_value_t = 0.2)]
    blur_scale: f64,
}

pub fn main(args: Args) -> Result<()> {
    for (flag, v) in [("--crop", args.crop), ("--test-size", args.test_size)] {
        if v == 0 || v % 4 != 0 {
            bail!("{flag} {v}: the generator needs a positive multiple of 4");
        }
    }
    if args.steps == 0 || args.test_images == 0 {
        bail!("--steps and --test-images must be at least 1");
    }
    let started = Instant::now();
    // No VGG19 weights ship with irdc, so the demo trains without the perceptual loss.
    let sets: Vec<String> = [
        format!("N={}", args.n),
        format!("ndf={}", args.ndf),
        "per_weight=0".into(),
        format!("H={}", args.crop),
        format!("W={}", args.crop),
        format!("lr={}", args.lr),
        format!("critic_steps={}", args.critic_steps),
        format!("batch={}", args.batch),
    ]
    .into();
    println!(
        "training IRD-GAN ({MODEL_PATH}, built in) with {} on {1}x{1} procedural images blurred by \
         {2}x-length trajectories: {3} steps; the perceptual loss is off (per_weight=0) since \
         VGG19's ImageNet weights do not ship with irdc",
        sets.join(" "),
        args.test_size.max(args.crop),
        args.blur_scale,
        args.steps
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
            size: args.test_size.max(args.crop),
            noise: 0.0,
            blur_scale: args.blur_scale,
        },
        out: args.out.clone(),
        total_steps: args.steps,
        resume: false,
        frozen: HashMap::new(),
        debug_nan_at: None,
        stop_after: None,
        // Validation (at the end) on the same held-out pairs as below.
        validation: runtime::train::Validation {
            images: Some(args.test_images as usize),
            size: Some(args.test_size),
            ..Default::default()
        },
    };
    let bar = ProgressBar::new(args.steps);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}")
            .expect("a valid template"),
    );
    runtime::train::run(&gpu, &opts, &mut |e| match e {
        // Lines through `suspend` show with or without a terminal (the bar alone is hidden in logs).
        Event::Started { params, .. } => bar.suspend(|| {
            println!(
                "generator {} parameters, critic {}",
                super::format_count(params[0]),
                super::format_count(params[1])
            )
        }),
        Event::Step {
            step,
            losses,
            steps_per_s,
            ..
        } => {
            let line = format!(
                "critic {:.3} generator {:.3} {steps_per_s:.2} steps/s",
                losses.critic.last().copied().unwrap_or(f32::NAN),
                losses.generator
            );
            bar.set_position(step);
            if step % 25 == 0 {
                bar.suspend(|| println!("step {step}/{}: {line}", args.steps));
            }
            bar.set_message(line);
        }
        Event::Validated { .. } | Event::Checkpoint(_) | Event::Sample(_) => {}
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
        "{count} held-out {0}x{0} procedural pairs:\n  blurred inputs: PSNR {1:.2} dB, SSIM {2:.4}\n  deblurred:      PSNR {3:.2} dB, SSIM {4:.4}",
        args.test_size, m[0], m[1], m[2], m[3]
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
