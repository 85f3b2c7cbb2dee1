//! `irdc train models/deblurgan.ron` end to end at a tiny size (N = 2, one residual block,
//! ndf = 2, 16x16 crops, no perceptual loss, 2 critic steps, 2 steps): the baseline trains as IRD-GAN does, its losses are
//! DeblurGAN's (adversarial + per_weight x perceptual, no L1; WGAN-GP for the critic), and
//! `irdc deblur` runs the checkpoint it writes, giving what the CPU reference gives.

use ir::Tensor;
use runtime::image_io::{quantize, read_image};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};

const SETS: [&str; 7] = [
    "N=2",
    "n_blocks=1",
    "ndf=2",
    "per_weight=0",
    "H=16",
    "W=16",
    "critic_steps=2",
];

fn irdc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irdc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("irdc-train-deblurgan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn deblurgan_trains_and_its_checkpoint_deblurs() {
    let dir = scratch();
    let run = dir.join("run");
    let mut args = vec!["train", "models/deblurgan.ron", "--steps", "2", "--out"];
    args.push(run.to_str().unwrap());
    for s in SETS {
        args.extend(["--set", s]);
    }
    let o = irdc(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");

    // metrics.csv: a row per step, DeblurGAN's loss parts and no L1 column.
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    // (`perceptual` is not required: with per_weight = 0 the compiler may fold it away.)
    for part in ["wasserstein", "gp", "adversarial"] {
        assert!(header.contains(&part), "{part} missing: {csv}");
    }
    assert!(!header.contains(&"l1"), "DeblurGAN has no L1 term: {csv}");
    for row in &lines[1..] {
        // (Empty cells: the validation columns of a step without validation.)
        let v: HashMap<&str, f64> = header
            .iter()
            .zip(row.split(','))
            .filter(|(_, x)| !x.is_empty())
            .map(|(&h, x)| (h, x.parse().unwrap()))
            .collect();
        assert!(v.values().all(|x| x.is_finite()), "{row}");
        // per_weight = 0: the generator's loss is its adversarial part alone.
        assert_eq!(v["generator_loss"], v["adversarial"], "{row}");
        // WGAN-GP with gp_weight 10.
        let critic = v["wasserstein"] + 10.0 * v["gp"];
        assert!(
            (v["critic_loss"] - critic).abs() <= 1e-4 * critic.abs().max(1.0),
            "{row}"
        );
    }
    for f in ["losses.png", "samples/step_000002.png"] {
        assert!(run.join(f).exists(), "{f}");
    }

    // The checkpoint: step 2, DeblurGAN's generator and critic with their Adam moments.
    let ckpt = run.join("checkpoint.safetensors");
    let (tensors, meta) = runtime::checkpoint::load(&ckpt).unwrap();
    assert_eq!(meta.step, 2);
    assert_eq!(meta.sets, SETS);
    for name in [
        "generator.res.0.conv2.weight",
        "critic.score.weight",
        "adam.critic.v.conv1.weight",
    ] {
        assert!(tensors.contains_key(name), "{name}");
    }
    assert!(tensors
        .values()
        .all(|t| t.data.iter().all(|x| x.is_finite())));

    // `irdc deblur` with that checkpoint, on a 12x8 image (a multiple of 4: no padding), against
    // the generator on the CPU reference with the checkpoint's weights.
    let input = dir.join("in.png");
    image::RgbImage::from_fn(12, 8, |x, y| {
        image::Rgb([0, 1, 2].map(|c| ((x * 37 + y * 23 + c * 71 + x * y) % 256) as u8))
    })
    .save(&input)
    .unwrap();
    let out = dir.join("out");
    let o = irdc(&[
        "deblur",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let written = image::open(out.join("in.png")).unwrap().to_rgb8();
    assert_eq!(written.dimensions(), (12, 8));

    let img = read_image(&input).unwrap();
    let sets: Vec<(String, String)> = SETS
        .iter()
        .map(|s| {
            let (k, v) = s.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let model = ir::front::parse(&meta.model_source, "models/deblurgan.ron", &sets).unwrap();
    let graph = model
        .build("generator", &[("blurred".into(), vec![1, 3, 8, 12])])
        .unwrap();
    let mut feeds: HashMap<String, Tensor<f64>> = tensors
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("generator.")?.to_string(), v.cast())))
        .collect();
    feeds.insert("blurred".into(), img.cast());
    let expected = &ir::cpu::evaluate(&graph, &feeds).unwrap()[graph.outputs[0].1];
    for c in 0..3 {
        for y in 0..8 {
            for x in 0..12 {
                let want = quantize(expected.data[(c * 8 + y) * 12 + x] as f32) as i32;
                let got = written.get_pixel(x as u32, y as u32).0[c] as i32;
                assert!((want - got).abs() <= 1, "({c}, {y}, {x}): {got} vs {want}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
