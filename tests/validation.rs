//! Validation during `irdc train` scores what `runtime::metrics` scores: with a generator that is
//! the identity (blurred + 1e-20 * a branch that needs even sizes), on a folder of pairs of odd
//! and even sizes given as `--val-data`, every validated step's `val_psnr`/`val_ssim` equal the
//! blurred baseline, and both equal the mean PSNR/SSIM computed here directly on the same files;
//! the images are deblurred whole (padded to the generator's multiple and cropped back) and the
//! samples are whole triptychs.

use runtime::data::{procedural, DataSpec};
use runtime::image_io::{read_image, write_png};
use runtime::metrics::{psnr, ssim, Rgb8};
use runtime::train::{run, Event, RunOptions, Validation};
use std::collections::HashMap;

const MODEL: &str = r#"Model(
    params: { H: 16, W: 16 },
    graphs: {
        generator: Graph(
            inputs: { blurred: [1, 3, H, W] },
            nodes: {
                // Down by 2 and up again: the size must be even (a multiple of 2).
                down: Conv(in: blurred, out: 3, kernel: 3, stride: 2, pad: 1),
                up: ConvT(in: down, out: 3, kernel: 3, stride: 2, pad: 1, out_pad: 1),
                tiny: Affine(in: up, scale: 1e-20, shift: 0),
                sum: Add(a: blurred, b: tiny),
                sharp: Clamp(in: sum, min: -1, max: 1),
            },
            outputs: { sharp: sharp },
        ),
        content: Graph(
            inputs: { blurred: [1, 3, H, W], sharp: [1, 3, H, W] },
            nodes: {
                out: Call(graph: generator, blurred: blurred),
                diff: Sub(a: sharp, b: out),
                abs_diff: Abs(in: diff),
                l1: Mean(in: abs_diff),
                loss: Affine(in: l1, scale: 1, shift: 0),
            },
            outputs: { loss: loss },
        ),
    },
    training: Training(
        critic: None,
        content_loss: content,
        crop: H,
        schedule: Schedule(steps: 2),
        sample_every: 1,
        validate_every: 1,
    ),
)"#;

#[test]
fn validation_of_an_identity_generator_scores_the_blurred_images() {
    let dir = std::env::temp_dir().join(format!("irdc-validation-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let val = dir.join("val");
    for sub in ["blur", "sharp"] {
        std::fs::create_dir_all(val.join(sub)).unwrap();
    }
    // Three pairs: two 30x22, one 17x13 (odd: padded to 18x14 and cropped back).
    let sizes = [("a", 22, 30), ("b", 22, 30), ("c", 13, 17)];
    for (i, (name, h, w)) in sizes.iter().enumerate() {
        let sharp = procedural::image(*h, *w, 3, i as u64);
        let other = procedural::image(*h, *w, 3, 50 + i as u64);
        let mut blurred = sharp.clone();
        for (b, o) in blurred.data.iter_mut().zip(&other.data) {
            *b = 0.6 * *b + 0.4 * o;
        }
        write_png(&val.join(format!("blur/{name}.png")), &blurred).unwrap();
        write_png(&val.join(format!("sharp/{name}.png")), &sharp).unwrap();
    }
    let mut want = [0.0f64; 2];
    for (name, _, _) in &sizes {
        let read = |sub: &str| {
            let t = read_image(&val.join(format!("{sub}/{name}.png"))).unwrap();
            Rgb8::from_tensor(&t).unwrap()
        };
        let (b, s) = (read("blur"), read("sharp"));
        want[0] += psnr(&b, &s).unwrap();
        want[1] += ssim(&b, &s).unwrap();
    }
    let want = want.map(|v| v / sizes.len() as f64);

    let out = dir.join("run");
    let opts = RunOptions {
        model_source: MODEL.into(),
        model_path: "identity.ron".into(),
        sets: vec![],
        data: DataSpec::Procedural {
            size: 16,
            noise: 0.0,
            blur_scale: 1.0,
        },
        out: out.clone(),
        total_steps: 2,
        resume: false,
        frozen: HashMap::new(),
        debug_nan_at: None,
        stop_after: None,
        validation: Validation {
            data: Some(val.clone()),
            ..Default::default()
        },
    };
    let gpu = runtime::Gpu::new().unwrap();
    let (mut seen, mut order) = (Vec::new(), Vec::new());
    run(&gpu, &opts, &mut |e| match e {
        Event::Validating { step } => order.push(format!("validating {step}")),
        Event::Validated { step, scores, best } => {
            order.push(format!("validated {step}"));
            seen.push((step, *scores, best.is_some()));
        }
        Event::Step { step, .. } => order.push(format!("step {step}")),
        _ => {}
    })
    .unwrap();
    // The progress line learns of a validation before it runs (the first one compiles).
    assert_eq!(
        order,
        [
            "validating 1",
            "validated 1",
            "step 1",
            "validating 2",
            "validated 2",
            "step 2"
        ]
    );
    assert_eq!(seen.len(), 2);
    for (step, s, _) in &seen {
        assert_eq!([s.psnr, s.ssim], want, "step {step}: deblurred");
        assert_eq!(
            [s.psnr_blurred, s.ssim_blurred],
            want,
            "step {step}: blurred"
        );
    }
    // The first validation is the best; the second only ties it.
    assert_eq!(seen.iter().map(|s| s.2).collect::<Vec<_>>(), [true, false]);
    let meta = runtime::checkpoint::metadata(&out.join("best.safetensors")).unwrap();
    assert_eq!(meta["step"], "1");

    // metrics.csv: a fixed header, the same numbers as text.
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "step,critic_loss,generator_loss,l1,val_psnr,val_ssim,val_psnr_blurred,val_ssim_blurred,lr,seconds"
    );
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), 10, "{line}");
        assert_eq!(cells[1], "", "no critic: {line}");
        let nums: Vec<f64> = cells[4..8].iter().map(|c| c.parse().unwrap()).collect();
        assert_eq!(nums, [want[0], want[1], want[0], want[1]], "{line}");
    }
    // Samples: the first validation image whole, blurred | deblurred | sharp.
    let sample = image::open(out.join("samples/step_000002.png")).unwrap();
    assert_eq!((sample.width(), sample.height()), (3 * 30 + 4, 22));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wrong_validation_settings_stop_before_training_and_say_what_to_do() {
    let gpu = runtime::Gpu::new().unwrap();
    let dir = std::env::temp_dir().join(format!("irdc-validation-bad-{}", std::process::id()));
    let missing = dir.join("no_such_folder");
    let opts = |validation: Validation| RunOptions {
        model_source: MODEL.into(),
        model_path: "identity.ron".into(),
        sets: vec![],
        data: DataSpec::Procedural {
            size: 16,
            noise: 0.0,
            blur_scale: 1.0,
        },
        out: dir.join("run"),
        total_steps: 2,
        resume: false,
        frozen: HashMap::new(),
        debug_nan_at: None,
        stop_after: None,
        validation,
    };
    let err = |v: Validation| {
        let mut steps = 0;
        let r = run(&gpu, &opts(v), &mut |e| {
            if let Event::Step { .. } = e {
                steps += 1;
            }
        });
        assert_eq!(steps, 0);
        r.unwrap_err().to_string()
    };
    assert_eq!(
        err(Validation {
            images: Some(0),
            ..Default::default()
        }),
        "--val-images 0: it must be at least 1"
    );
    assert_eq!(
        err(Validation {
            data: Some(missing.clone()),
            ..Default::default()
        }),
        format!(
            "the validation data (val_data, --val-data): {}: no such directory; give a folder of pairs in GoPro's layout",
            missing.display()
        )
    );
    // Procedural validation images too small for SSIM's 11x11 window.
    let small = err(Validation {
        size: Some(8),
        ..Default::default()
    });
    assert!(
        small.contains("is 8x8; SSIM needs at least 11x11"),
        "{small}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_default_set_is_a_seeded_slice_of_the_held_out_split_at_full_size() {
    use runtime::train::validate::validation_pairs;
    let mut spec = ir::front::TrainingSpec {
        val_size: 40,
        ..Default::default()
    };
    let procedural = DataSpec::Procedural {
        size: 16,
        noise: 0.0,
        blur_scale: 1.0,
    };
    // Procedural: val_size images from the held-out stream, the same 8 of 32 for one seed.
    let names = |spec: &ir::front::TrainingSpec| -> Vec<String> {
        let pairs = validation_pairs(&procedural, spec, None, 8).unwrap();
        assert!(pairs.iter().all(|p| p.sharp.shape == [1, 3, 40, 40]));
        pairs.into_iter().map(|p| p.name).collect()
    };
    let first = names(&spec);
    assert_eq!(first.len(), 8);
    assert_eq!(names(&spec), first);
    spec.seed = 1;
    assert_ne!(names(&spec), first, "another seed, another slice");

    // GoPro: its test/ split, whole images (not the training crop).
    let dir = std::env::temp_dir().join(format!("irdc-validation-gopro-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (split, h, w) in [("train", 20, 24), ("test", 26, 34)] {
        for sub in ["blur", "sharp"] {
            let folder = dir.join(split).join("seq").join(sub);
            std::fs::create_dir_all(&folder).unwrap();
            write_png(&folder.join("000000.png"), &procedural::image(h, w, 1, 0)).unwrap();
        }
    }
    let gopro = DataSpec::GoPro { dir: dir.clone() };
    let pairs = validation_pairs(&gopro, &spec, None, 8).unwrap();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].blurred.shape, [1, 3, 26, 34]);
    assert_eq!(pairs[0].name, "seq/000000.png");
    let _ = std::fs::remove_dir_all(&dir);
}
