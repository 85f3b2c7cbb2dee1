//! `irdc deblur` and `irdc eval` end to end, on a checkpoint written here by the convention the
//! trainer follows (runtime::checkpoint::save): a seeded N=4 generator, on lavapipe or the GPU.

use ir::Tensor;
use runtime::image_io::{quantize, read_image};
use runtime::metrics::{psnr, ssim, Rgb8};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MODEL: &str = include_str!("../models/ird_gan.ron");

fn irdc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irdc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("irdc-deblur-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn generator(h: usize, w: usize) -> ir::Graph {
    let model = ir::front::parse(MODEL, "models/ird_gan.ron", &[("N".into(), "4".into())]).unwrap();
    model
        .build("generator", &[("blurred".into(), vec![1, 3, h, w])])
        .unwrap()
}

/// A checkpoint as `irdc train` writes one: prefixed generator parameters, a critic tensor that
/// must be ignored, and the model in the metadata.
fn write_checkpoint(path: &Path) -> HashMap<String, Tensor<f32>> {
    let params = ir::init::init_params(&generator(16, 16), 3);
    let mut tensors: Vec<(String, Tensor<f32>)> = params
        .iter()
        .map(|(n, t)| (format!("generator.{n}"), t.clone()))
        .collect();
    tensors.push(("critic.conv1.weight".into(), Tensor::zeros(&[2, 3, 4, 4])));
    let meta = runtime::checkpoint::Meta {
        model_source: MODEL.to_string(),
        model_path: "models/ird_gan.ron".to_string(),
        sets: vec!["N=4".to_string()],
        generator_graph: "generator".to_string(),
        step: 0,
        total_steps: 10,
        seed: 3,
    };
    runtime::checkpoint::save(path, &tensors, &meta).unwrap();
    params.into_iter().collect()
}

/// The generator on the CPU reference (f64): reflect-padded (no edge repeat) at the bottom and
/// right to a multiple of 4, run, cropped back: what `irdc deblur` must give.
fn cpu_deblur(params: &HashMap<String, Tensor<f32>>, img: &Tensor<f32>) -> Tensor<f64> {
    let (h, w) = (img.shape[2], img.shape[3]);
    let (ph, pw) = (h.div_ceil(4) * 4, w.div_ceil(4) * 4);
    let mirror = |i: usize, n: usize| if i < n { i } else { 2 * (n - 1) - i };
    let mut padded = Tensor::<f64>::zeros(&[1, 3, ph, pw]);
    for c in 0..3 {
        for y in 0..ph {
            for x in 0..pw {
                padded.data[(c * ph + y) * pw + x] =
                    img.at4(0, c, mirror(y, h), mirror(x, w)) as f64;
            }
        }
    }
    let graph = generator(ph, pw);
    let mut feeds: HashMap<String, Tensor<f64>> =
        params.iter().map(|(k, v)| (k.clone(), v.cast())).collect();
    feeds.insert("blurred".into(), padded);
    let out = &ir::cpu::evaluate(&graph, &feeds).unwrap()[graph.outputs[0].1];
    let mut cropped = Tensor::<f64>::zeros(&[1, 3, h, w]);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                cropped.data[(c * h + y) * w + x] = out.at4(0, c, y, x);
            }
        }
    }
    cropped
}

fn pattern(x: u32, y: u32, c: u32) -> u8 {
    ((x * 37 + y * 23 + c * 71 + x * y) % 256) as u8
}

#[test]
fn deblur_writes_every_readable_image_and_reports_the_corrupt_one() {
    let dir = scratch("cli");
    let ck = dir.join("ck.safetensors");
    let params = write_checkpoint(&ck);
    let inputs = dir.join("in");
    std::fs::create_dir_all(inputs.join("sub")).unwrap();
    // Grey 37x53 (pads to 40x56); RGBA in a subfolder (found recursively); 16-bit; a second
    // image of the 16-bit one's size (compiled once for both); a corrupt file.
    image::GrayImage::from_fn(37, 53, |x, y| image::Luma([pattern(x, y, 0)]))
        .save(inputs.join("grey.png"))
        .unwrap();
    image::RgbaImage::from_fn(18, 22, |x, y| {
        image::Rgba([
            pattern(x, y, 0),
            pattern(x, y, 1),
            pattern(x, y, 2),
            (x * 9) as u8,
        ])
    })
    .save(inputs.join("sub/rgba.png"))
    .unwrap();
    image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(13, 11, |x, y| {
        image::Rgb([0, 1, 2].map(|c| pattern(x, y, c) as u16 * 251 + (x * 13) as u16))
    })
    .save(inputs.join("deep.png"))
    .unwrap();
    image::RgbImage::from_fn(14, 12, |x, y| {
        image::Rgb([0, 1, 2].map(|c| pattern(y, x, c)))
    })
    .save(inputs.join("same_size.png"))
    .unwrap();
    // Same stem as grey.png: its output would overwrite grey's, so it is refused.
    let clash = inputs.join("sub/grey.bmp");
    image::RgbImage::new(12, 12).save(&clash).unwrap();
    let corrupt = inputs.join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\ntruncated").unwrap();
    let out = dir.join("out");

    let o = irdc(&[
        "deblur",
        "--checkpoint",
        ck.to_str().unwrap(),
        inputs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("error: cannot read image {}: ", corrupt.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "error: {}: {} is already the output of {}; skipped",
            clash.display(),
            out.join("grey.png").display(),
            inputs.join("grey.png").display()
        )),
        "{err}"
    );
    assert!(
        err.trim_end().ends_with("error: 2 of 6 images failed"),
        "{err}"
    );
    assert_eq!(
        err.matches("compiling the generator for ").count(),
        3,
        "{err}"
    );
    assert!(!out.join("corrupt.png").exists());

    for (name, input) in [
        ("grey", inputs.join("grey.png")),
        ("rgba", inputs.join("sub/rgba.png")),
        ("deep", inputs.join("deep.png")),
        ("same_size", inputs.join("same_size.png")),
    ] {
        let img = read_image(&input).unwrap();
        let written = image::open(out.join(format!("{name}.png"))).unwrap();
        assert_eq!(written.color(), image::ColorType::Rgb8, "{name}");
        let written = written.to_rgb8();
        assert_eq!(
            (written.height() as usize, written.width() as usize),
            (img.shape[2], img.shape[3]),
            "{name}"
        );
        let expected = cpu_deblur(&params, &img);
        let (h, w) = (img.shape[2], img.shape[3]);
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let want = quantize(expected.data[(c * h + y) * w + x] as f32) as i32;
                    let got = written.get_pixel(x as u32, y as u32).0[c] as i32;
                    assert!(
                        (want - got).abs() <= 1,
                        "{name} ({c}, {y}, {x}): {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn eval_reports_the_metrics_of_the_deblurred_and_blurred_images() {
    let dir = scratch("eval");
    let ck = dir.join("ck.safetensors");
    write_checkpoint(&ck);
    let root = dir.join("GOPRO");
    let seqs = [("seqA", "000001.png"), ("seqB", "000002.png")];
    for ((seq, file), (w, h)) in seqs.into_iter().zip([(24, 20), (30, 26)]) {
        for part in ["blur", "sharp"] {
            std::fs::create_dir_all(root.join("test").join(seq).join(part)).unwrap();
        }
        let sharp =
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([0, 1, 2].map(|c| pattern(x, y, c))));
        let blur = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([0, 1, 2].map(|c| pattern(x / 2 * 2, y, c) / 2 + 60))
        });
        sharp
            .save(root.join(format!("test/{seq}/sharp/{file}")))
            .unwrap();
        blur.save(root.join(format!("test/{seq}/blur/{file}")))
            .unwrap();
    }
    let json = dir.join("eval.json");
    let o = irdc(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--data",
        root.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["count"], 2);

    // A split folder (no test/ above it) is detected too; --limit keeps the first pairs.
    let json1 = dir.join("eval1.json");
    let split = root.join("test");
    let o = irdc(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--data",
        split.to_str().unwrap(),
        "--limit",
        "1",
        "--json",
        json1.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc1: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json1).unwrap()).unwrap();
    assert_eq!(doc1["count"], 1);
    assert_eq!(doc1["images"][0], doc["images"][0]);
    assert_eq!(doc1["mean"], doc["images"][0]["scores"]);

    // The same images deblurred by `irdc deblur` (same device, same plan: the same pixels).
    let out = dir.join("deblurred");
    let blur_paths = seqs.map(|(seq, file)| root.join(format!("test/{seq}/blur/{file}")));
    let o = irdc(&[
        "deblur",
        "--checkpoint",
        ck.to_str().unwrap(),
        blur_paths[0].to_str().unwrap(),
        blur_paths[1].to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut sums = [0.0; 4];
    for (i, ((seq, file), blur_path)) in seqs.into_iter().zip(&blur_paths).enumerate() {
        let load = |p: &Path| Rgb8::from_tensor(&read_image(p).unwrap()).unwrap();
        let sharp = load(&root.join(format!("test/{seq}/sharp/{file}")));
        let blurred = load(blur_path);
        let deblurred = load(&out.join(file));
        let want = [
            psnr(&deblurred, &sharp).unwrap(),
            ssim(&deblurred, &sharp).unwrap(),
            psnr(&blurred, &sharp).unwrap(),
            ssim(&blurred, &sharp).unwrap(),
        ];
        let row = &doc["images"][i];
        assert_eq!(row["blur"], blur_path.display().to_string());
        for (key, want) in ["psnr", "ssim", "blurred_psnr", "blurred_ssim"]
            .into_iter()
            .zip(want)
        {
            let got = row["scores"][key].as_f64().unwrap();
            assert!((got - want).abs() < 1e-9, "{seq} {key}: {got} vs {want}");
        }
        for (s, w) in sums.iter_mut().zip(want) {
            *s += w;
        }
    }
    for (key, sum) in ["psnr", "ssim", "blurred_psnr", "blurred_ssim"]
        .into_iter()
        .zip(sums)
    {
        let got = doc["mean"][key].as_f64().unwrap();
        assert!(
            (got - sum / 2.0).abs() < 1e-9,
            "mean {key}: {got} vs {}",
            sum / 2.0
        );
    }
}

/// Whether `out` is the CPU reference of `params` on `img`, within one level of rounding.
fn matches(out: &Path, params: &HashMap<String, Tensor<f32>>, img: &Tensor<f32>) -> bool {
    let written = image::open(out).unwrap().to_rgb8();
    let expected = cpu_deblur(params, img);
    let (h, w) = (img.shape[2], img.shape[3]);
    (0..3).all(|c| {
        (0..h).all(|y| {
            (0..w).all(|x| {
                let want = quantize(expected.data[(c * h + y) * w + x] as f32) as i32;
                let got = written.get_pixel(x as u32, y as u32).0[c] as i32;
                (want - got).abs() <= 1
            })
        })
    })
}

#[test]
fn deblur_uses_the_moving_average_when_the_checkpoint_has_one() {
    let dir = scratch("ema");
    let ck = dir.join("ck.safetensors");
    let trained = write_checkpoint(&ck);
    // The same checkpoint with a moving average (`ema: ..` in training): other weights.
    let (mut tensors, meta) = runtime::checkpoint::load(&ck).unwrap();
    let ema: HashMap<String, Tensor<f32>> = ir::init::init_params(&generator(16, 16), 4)
        .into_iter()
        .collect();
    for (n, t) in &ema {
        tensors.insert(format!("ema.generator.{n}"), t.clone());
    }
    let tensors: Vec<(String, Tensor<f32>)> = tensors.into_iter().collect();
    runtime::checkpoint::save(&ck, &tensors, &meta).unwrap();
    let input = dir.join("in.png");
    image::RgbImage::from_fn(12, 10, |x, y| {
        image::Rgb([0, 1, 2].map(|c| pattern(x, y, c)))
    })
    .save(&input)
    .unwrap();
    let img = read_image(&input).unwrap();
    for (flag, weights, params) in [
        (None, "EMA", &ema),
        (Some("--trained-weights"), "trained", &trained),
    ] {
        let out = dir.join(weights);
        let mut args = vec!["deblur", "--checkpoint", ck.to_str().unwrap()];
        args.extend([input.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        args.extend(flag);
        let o = irdc(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(
            err.contains(&format!(
                "generator `generator` at step 0, {weights} weights"
            )),
            "{err}"
        );
        let other = if weights == "EMA" { &trained } else { &ema };
        assert!(matches(&out.join("in.png"), params, &img), "{weights}");
        assert!(!matches(&out.join("in.png"), other, &img), "{weights}");
    }
}
