//! `irdc eval --checkpoint C --data DIR [--json FILE] [--limit N]`: PSNR and SSIM on a GoPro-style
//! test set, of the deblurred images and, as the baseline, of the blurred inputs, against sharp.
//!
//! DIR is the dataset root (`DIR/test/<sequence>/{blur,sharp}`), a split (`DIR/<sequence>/...`)
//! or one sequence (`DIR/{blur,sharp}`); which one is detected. Images are deblurred at full
//! size (padded as `irdc deblur` does). Metrics are those of `runtime::metrics` (RGB 8-bit, as
//! the literature reports them). In the JSON, an infinite PSNR (identical images) is `null`.

use super::deblurrer::{sizes_for, Deblurrer, WINDOW};
use anyhow::{bail, Context, Result};
use runtime::image_io::read_image;
use runtime::metrics::{psnr, ssim, Rgb8};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint written by `irdc train`
    #[arg(long)]
    checkpoint: PathBuf,
    /// GoPro layout: the root (with test/), a split, or one sequence (with blur/ and sharp/)
    #[arg(long)]
    data: PathBuf,
    /// Write per-image and mean values to this JSON file
    #[arg(long)]
    json: Option<PathBuf>,
    /// Evaluate only the first N pairs (sorted by sequence, then file name)
    #[arg(long)]
    limit: Option<usize>,
    /// Override a model parameter after the checkpoint's own (repeatable)
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Use the trained weights even when the checkpoint has their moving average (`ema`)
    #[arg(long)]
    trained_weights: bool,
    #[command(flatten)]
    device: super::DeviceArgs,
}

/// The four numbers of one pair.
#[derive(Clone, Copy, Default)]
struct Scores {
    psnr: f64,
    ssim: f64,
    blurred_psnr: f64,
    blurred_ssim: f64,
}

pub fn main(args: Args) -> Result<()> {
    let mut pairs = runtime::data::pairs::pair_files(&args.data)?;
    if let Some(n) = args.limit {
        pairs.truncate(n);
    }
    if pairs.is_empty() {
        bail!("{}: no blurred/sharp pairs found", args.data.display());
    }
    let blurred: Vec<_> = pairs.iter().map(|(blur, _)| blur.clone()).collect();
    let sizes = (args.device.sizes).unwrap_or_else(|| sizes_for(&blurred, WINDOW));
    let gpu = args.device.open()?.with_sizes(sizes);
    eprintln!("{}", gpu.describe());
    let mut deblurrer = Deblurrer::new(&args.checkpoint, &args.set, args.trained_weights, gpu)?;
    let mut rows = Vec::new();
    let mut sum = Scores::default();
    for (i, (blur, sharp)) in pairs.iter().enumerate() {
        let started = Instant::now();
        let blurred = read_image(blur)?;
        let sharp_img = Rgb8::from_tensor(&read_image(sharp)?)?;
        let deblurred = Rgb8::from_tensor(&deblurrer.deblur(&blurred)?)?;
        let blurred = Rgb8::from_tensor(&blurred)?;
        let what = || format!("{} against {}", blur.display(), sharp.display());
        let s = Scores {
            psnr: psnr(&deblurred, &sharp_img).with_context(what)?,
            ssim: ssim(&deblurred, &sharp_img).with_context(what)?,
            blurred_psnr: psnr(&blurred, &sharp_img).with_context(what)?,
            blurred_ssim: ssim(&blurred, &sharp_img).with_context(what)?,
        };
        eprintln!(
            "[{}/{}] {}: PSNR {:.2} dB, SSIM {:.4} (blurred: {:.2} dB, {:.4}) in {:.2} s",
            i + 1,
            pairs.len(),
            blur.display(),
            s.psnr,
            s.ssim,
            s.blurred_psnr,
            s.blurred_ssim,
            started.elapsed().as_secs_f64()
        );
        sum.psnr += s.psnr;
        sum.ssim += s.ssim;
        sum.blurred_psnr += s.blurred_psnr;
        sum.blurred_ssim += s.blurred_ssim;
        rows.push(json!({
            "blur": blur.display().to_string(),
            "sharp": sharp.display().to_string(),
            "scores": scores_json(&s),
        }));
    }
    let n = pairs.len() as f64;
    let mean = Scores {
        psnr: sum.psnr / n,
        ssim: sum.ssim / n,
        blurred_psnr: sum.blurred_psnr / n,
        blurred_ssim: sum.blurred_ssim / n,
    };
    println!(
        "{} images: PSNR {:.2} dB, SSIM {:.4} (blurred inputs: {:.2} dB, {:.4})",
        pairs.len(),
        mean.psnr,
        mean.ssim,
        mean.blurred_psnr,
        mean.blurred_ssim
    );
    if let Some(path) = &args.json {
        let doc = json!({
            "checkpoint": args.checkpoint.display().to_string(),
            "data": args.data.display().to_string(),
            "count": pairs.len(),
            "mean": scores_json(&mean),
            "images": rows,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Non-finite values (an infinite PSNR) become `null`: JSON has no infinity.
fn scores_json(s: &Scores) -> Value {
    let num = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    json!({
        "psnr": num(s.psnr),
        "ssim": num(s.ssim),
        "blurred_psnr": num(s.blurred_psnr),
        "blurred_ssim": num(s.blurred_ssim),
    })
}
