//! `irdc train` end to end on a tiny IRD-GAN (N = 4, ndf = 4, 16x16 crops, no perceptual loss):
//! a resumed run (with a warm-up step, the generator's moving average and validation) computes
//! exactly the losses, weights, average and metrics of an uninterrupted one; a planted NaN stops
//! the run with the step named and the last good checkpoint intact; without VGG19 weights and
//! with the perceptual loss on, training stops before the first step and says what to do.

use runtime::data::DataSpec;
use runtime::train::{run, RunOptions, StepLosses, TrainError};
use std::collections::HashMap;

const SETS: [&str; 5] = ["N=4", "ndf=4", "per_weight=0", "H=16", "W=16"];

fn options(out: &str, total: u64) -> RunOptions {
    let dir = std::env::temp_dir().join(format!("irdc-train-{}-{out}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    RunOptions {
        // Two critic steps instead of five: the same code path at less than half the time.
        // Validation on 32x32 procedural images: big enough for SSIM, quick to compile.
        model_source: std::fs::read_to_string("models/ird_gan.ron")
            .unwrap()
            .replace("critic_steps: 5", "critic_steps: 2")
            .replace("val_size: 128", "val_size: 32")
            .replace("val_images: 8", "val_images: 2"),
        model_path: "models/ird_gan.ron".into(),
        sets: SETS.iter().map(|s| s.to_string()).collect(),
        data: DataSpec::Procedural {
            size: 24,
            noise: 0.0,
            blur_scale: 1.0,
        },
        out: dir,
        total_steps: total,
        resume: false,
        frozen: HashMap::new(),
        debug_nan_at: None,
        stop_after: None,
        validation: Default::default(),
    }
}

/// A run with recipes: one warm-up step, the generator's moving average, validation every 2 steps.
fn with_recipes(mut o: RunOptions) -> RunOptions {
    o.model_source = (o.model_source)
        .replace("warmup: 0,", "warmup: 1,")
        .replace("ema: 0,", "ema: 0.9,")
        .replace("validate_every: 500", "validate_every: 2");
    o
}

/// metrics.csv without its `seconds` column (the only one that depends on the clock).
fn metrics_without_seconds(dir: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "seconds").unwrap();
    (text.lines())
        .map(|l| {
            let mut cells: Vec<&str> = l.split(',').collect();
            cells.remove(at);
            cells.join(",")
        })
        .collect()
}

/// Run and collect every step's losses.
fn train(gpu: &runtime::Gpu, o: &RunOptions) -> (Result<(), TrainError>, Vec<StepLosses>) {
    let mut seen = Vec::new();
    let r = run(gpu, o, &mut |e| {
        if let runtime::train::Event::Step { losses, .. } = e {
            seen.push(losses.clone());
        }
    });
    (r.map(drop), seen)
}

#[test]
fn resume_continues_exactly_and_nan_stops_with_the_checkpoint_kept() {
    let gpu = runtime::Gpu::new().unwrap();
    let straight = with_recipes(options("straight", 4));
    let (r, all) = train(&gpu, &straight);
    r.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|l| l.non_finite().is_none()));
    // Step 1 is the warm-up (no critic step), then two critic steps per step.
    let critic_steps: Vec<usize> = all.iter().map(|l| l.critic.len()).collect();
    assert_eq!(critic_steps, [0, 2, 2, 2]);
    // Losses move from step to step (the weights are being updated).
    assert_ne!(all[1].generator, all[3].generator);

    let mut parted = with_recipes(options("parted", 4));
    parted.stop_after = Some(2);
    let (r, first) = train(&gpu, &parted);
    r.unwrap();
    parted.stop_after = None;
    parted.resume = true;
    let (r, second) = train(&gpu, &parted);
    r.unwrap();
    let joined: Vec<StepLosses> = first.into_iter().chain(second).collect();
    assert_eq!(
        joined, all,
        "2 steps + resume 2 must equal 4 steps straight, bit for bit"
    );
    // The same weights, moments and moving average, bit for bit.
    let ckpt = |o: &RunOptions| runtime::checkpoint::load(&o.out.join("checkpoint.safetensors"));
    let (a, b) = (ckpt(&straight).unwrap().0, ckpt(&parted).unwrap().0);
    assert!(a.contains_key("ema.generator.head_conv.weight"));
    assert_ne!(
        a["ema.generator.head_conv.weight"],
        a["generator.head_conv.weight"]
    );
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        assert_eq!(Some(t), b.get(name), "{name}");
    }
    let csv = std::fs::read_to_string(parted.out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.starts_with(
            // per_weight=0 folds the perceptual term (and VGG19) away: no column for it.
            "step,critic_loss,generator_loss,wasserstein,gp,adversarial,l1,\
             val_psnr,val_ssim,val_psnr_blurred,val_ssim_blurred,lr,seconds\n"
        ),
        "{csv}"
    );
    assert_eq!(
        metrics_without_seconds(&parted.out),
        metrics_without_seconds(&straight.out)
    );
    // Validation at steps 2 and 4 only; the warm-up step has no critic loss.
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(rows.iter().all(|r| r.len() == 13), "{csv}");
    assert_eq!(rows[0][1], "");
    let validated: Vec<bool> = rows.iter().map(|r| !r[7].is_empty()).collect();
    assert_eq!(validated, [false, true, false, true], "{csv}");
    for f in [
        "losses.png",
        "samples/step_000004.png",
        "checkpoint.safetensors",
        "best.safetensors",
    ] {
        assert!(parted.out.join(f).exists(), "{f}");
    }
    // The plot has a third panel: validation PSNR.
    let plot = image::open(parted.out.join("losses.png")).unwrap();
    assert_eq!(plot.height(), 3 * runtime::train::plot::PANEL_H);
    // Samples are whole validation images (32x32), not training crops.
    let sample = image::open(parted.out.join("samples/step_000004.png")).unwrap();
    assert_eq!((sample.width(), sample.height()), (3 * 32 + 4, 32));

    // A NaN fed at step 3 of a run that checkpoints every step: stops at step 3, naming it; the
    // checkpoint is step 2's and loads.
    let mut nan = options("nan", 4);
    let ckpt = nan.out.join("checkpoint.safetensors");
    nan.model_source = nan
        .model_source
        .replace("checkpoint_every: 1000", "checkpoint_every: 1");
    nan.debug_nan_at = Some(3);
    let (r, seen) = train(&gpu, &nan);
    let err = r.unwrap_err().to_string();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        err,
        format!("step 3: the critic loss (critic step 1) is NaN; training stopped, the last good checkpoint ({}) is kept", ckpt.display())
    );
    let (tensors, meta) = runtime::checkpoint::load(&ckpt).unwrap();
    assert_eq!(meta.step, 2);
    assert_eq!(meta.sets, SETS);
    assert!(tensors
        .values()
        .all(|t| t.data.iter().all(|x| x.is_finite())));
    assert!(tensors.contains_key("generator.head_conv.weight"));
    assert!(tensors.contains_key("adam.critic.v.conv1.weight"));
    for o in [&straight.out, &parted.out, &nan.out] {
        let _ = std::fs::remove_dir_all(o);
    }
}

#[test]
fn perceptual_loss_without_vgg_weights_stops_before_the_first_step() {
    let gpu = runtime::Gpu::new().unwrap();
    let mut o = options("novgg", 1);
    o.sets.retain(|s| !s.starts_with("per_weight"));
    let (r, seen) = train(&gpu, &o);
    assert!(seen.is_empty());
    let err = r.unwrap_err().to_string();
    assert!(
        err.starts_with("the perceptual loss needs VGG19's ImageNet weights (14 tensors, e.g. `vgg19.features.0.weight`)"),
        "{err}"
    );
    assert!(
        err.ends_with(
            "or train without the perceptual loss with --set per_weight=0 (it is 100 now)"
        ),
        "{err}"
    );
}
