//! `irdc deblur` and `irdc eval` end to end, on a checkpoint written here by the convention the
//! trainer follows (runtime::checkpoint::save): a seeded N=4 generator, on lavapipe or the GPU.

mod deblur_support;

use deblur_support::*;
use ir::Tensor;
use runtime::image_io::{quantize, read_image};
use runtime::metrics::{psnr, ssim, Rgb8};
use std::collections::HashMap;
use std::path::Path;

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
        err.trim_end().ends_with("error: 1 of 5 images failed"),
        "{err}"
    );
    // Decoding, deblurring and writing overlap, yet each image's line comes in input order,
    // then the throughput.
    let order: Vec<usize> = (1..=5)
        .map(|i| err.find(&format!("[{i}/5] ")).expect("a line per image"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{err}");
    let summary = err
        .lines()
        .find(|l| l.starts_with("5 images in "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(summary.contains(" images/s); "), "{summary}");
    assert!(summary.ends_with(" pipelines compiled"), "{summary}");
    assert_eq!(
        err.matches("compiling the generator for ").count(),
        3,
        "{err}"
    );
    // Four sizes (the corrupt file has none): kernels that take sizes as data.
    assert!(
        err.contains(
            "4 image sizes: kernels take sizes as data, one set of pipelines for all \
             (--sizes specialised compiles each size's own)"
        ),
        "{err}"
    );
    assert!(!out.join("corrupt.png").exists());

    // Grey is written as RGB; alpha and 16 bits are kept (tests/deblur_inputs.rs checks them).
    use image::ColorType::{Rgb16, Rgb8, Rgba8};
    for (name, input, color) in [
        ("grey", inputs.join("grey.png"), Rgb8),
        ("rgba", inputs.join("sub/rgba.png"), Rgba8),
        ("deep", inputs.join("deep.png"), Rgb16),
        ("same_size", inputs.join("same_size.png"), Rgb8),
    ] {
        let img = read_image(&input).unwrap();
        let written = image::open(out.join(format!("{name}.png"))).unwrap();
        assert_eq!(written.color(), color, "{name}");
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
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // Two sizes: one set of pipelines, as deblur chooses.
    assert!(
        err.contains("2 image sizes: kernels take sizes as data"),
        "{err}"
    );
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

/// The pipelines compiled, from the summary line of `irdc deblur`.
fn pipelines(stderr: &str) -> usize {
    let line = (stderr.lines())
        .find(|l| l.ends_with(" pipelines compiled"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let count = line.rsplit("; ").next().unwrap();
    count.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn images_of_many_sizes_share_one_set_of_pipelines() {
    let dir = scratch("sizes");
    let ck = dir.join("ck.safetensors");
    let params = write_checkpoint(&ck);
    let (one, many) = (dir.join("one"), dir.join("many"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&many).unwrap();
    let sizes = [(20, 24), (28, 16), (33, 41), (12, 36), (45, 21)];
    for (i, &(w, h)) in sizes.iter().enumerate() {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([0, 1, 2].map(|c| pattern(x, y, c + i as u32)))
        });
        img.save(many.join(format!("{i}.png"))).unwrap();
        if i == 0 {
            img.save(one.join("0.png")).unwrap();
        }
    }
    let run = |input: &Path, out: &str, sizes: &[&str]| {
        let out = dir.join(out);
        let mut args = vec![
            "deblur",
            "--checkpoint",
            ck.to_str().unwrap(),
            input.to_str().unwrap(),
        ];
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend(sizes);
        let o = irdc(&args);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "{err}");
        (pipelines(&err), out)
    };
    // The same pipelines for one image as for five sizes, each deblurred right.
    let (alone, _) = run(&one, "out_one", &["--sizes", "data"]);
    let (all, out) = run(&many, "out_many", &[]);
    assert_eq!(all, alone);
    for i in 0..sizes.len() {
        let img = read_image(&many.join(format!("{i}.png"))).unwrap();
        assert!(
            matches(&out.join(format!("{i}.png")), &params, &img),
            "image {i}"
        );
    }
    // Specialised, every size compiles its own.
    let (specialised, _) = run(&many, "out_specialised", &["--sizes", "specialised"]);
    assert!(specialised > 2 * alone, "{specialised} against {alone}");
}
