//! `irdc train` end to end on a tiny IRD-GAN (N = 4, ndf = 4, 16x16 crops, no perceptual loss):
//! a resumed run computes exactly the losses of an uninterrupted one; a planted NaN stops the run
//! with the step named and the last good checkpoint intact; without VGG19 weights and with the
//! perceptual loss on, training stops before the first step and says what to do.

use runtime::data::DataSpec;
use runtime::train::{run, RunOptions, StepLosses, TrainError};
use std::collections::HashMap;

const SETS: [&str; 5] = ["N=4", "ndf=4", "per_weight=0", "H=16", "W=16"];

fn options(out: &str, total: u64) -> RunOptions {
    let dir = std::env::temp_dir().join(format!("irdc-train-{}-{out}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    RunOptions {
        // Two critic steps instead of five: the same code path at less than half the time.
        model_source: std::fs::read_to_string("models/ird_gan.ron")
            .unwrap()
            .replace("critic_steps: 5", "critic_steps: 2"),
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
    }
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
    let straight = options("straight", 4);
    let (r, all) = train(&gpu, &straight);
    r.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all
        .iter()
        .all(|l| l.non_finite().is_none() && l.critic.len() == 2));
    // Losses move from step to step (the weights are being updated).
    assert_ne!(all[0].generator, all[3].generator);

    let mut parted = options("parted", 4);
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
    let csv = std::fs::read_to_string(parted.out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.starts_with(
            // per_weight=0 folds the perceptual term (and VGG19) away: no column for it.
            "step,critic_loss,generator_loss,wasserstein,gp,adversarial,l1,lr,seconds\n"
        ),
        "{csv}"
    );
    for f in [
        "losses.png",
        "samples/step_000004.png",
        "checkpoint.safetensors",
    ] {
        assert!(parted.out.join(f).exists(), "{f}");
    }

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
