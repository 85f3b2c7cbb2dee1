//! `irdc demo`: the built-in default job. Compiles IRD-GAN's generator (the model file is built
//! into the binary), runs it on the GPU or lavapipe on a procedural image, checks every output
//! value against the CPU reference and writes the images. No GPU, no download, under a minute.

use anyhow::{bail, Result};
use ir::Tensor;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

const MODEL: &str = include_str!("../../models/ird_gan.ron");

#[derive(clap::Args)]
pub struct Args {
    /// Where to write input.png and output.png
    #[arg(long, default_value = "demo")]
    out: PathBuf,
    /// Generator width (SPEC.md's N; 64 is the paper's)
    #[arg(long, default_value_t = 8)]
    n: usize,
    /// Image size (a multiple of 4)
    #[arg(long, default_value_t = 64)]
    size: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn main(args: Args) -> Result<()> {
    if args.size == 0 || args.size % 4 != 0 {
        bail!(
            "--size {}: the generator needs a positive multiple of 4",
            args.size
        );
    }
    let model = ir::front::parse(
        MODEL,
        "models/ird_gan.ron",
        &[("N".into(), args.n.to_string())],
    )?;
    let s = args.size;
    let graph = model.build("generator", &[("blurred".into(), vec![1, 3, s, s])])?;
    let image = procedural_image(s);
    let params = ir::init::init_params(&graph, args.seed);

    let gpu = runtime::Gpu::new()?;
    println!("{}", gpu.describe());
    let started = Instant::now();
    let (plan, _) = compiler::compile(&graph, &gpu.target())?;
    let mut feeds: HashMap<String, Tensor<f32>> = params.iter().cloned().collect();
    feeds.insert("blurred".into(), image.clone());
    let compiled = Instant::now();
    let outputs = runtime::execute(&gpu, &plan, &feeds)?;
    let ran = Instant::now();
    let sharp = &outputs[0].1;
    println!(
        "generator at N={} on {s}x{s}: {} parameters, {} kernels, {} planned (one buffer per value: {}); compile {:.2} s, run {:.2} s",
        args.n,
        super::format_count(graph.params().map(|(_, n)| ir::numel(&n.shape)).sum()),
        plan.kernels.len(),
        compiler::print::bytes(plan.memory.peak_bytes),
        compiler::print::bytes(plan.memory.naive_bytes),
        (compiled - started).as_secs_f64(),
        (ran - compiled).as_secs_f64()
    );

    // The CPU reference in f64 is the oracle: every output value must agree.
    let feeds64: HashMap<String, Tensor<f64>> =
        feeds.iter().map(|(k, v)| (k.clone(), v.cast())).collect();
    let reference = ir::cpu::evaluate(&graph, &feeds64).map_err(anyhow::Error::msg)?;
    let expected = &reference[graph.outputs[0].1];
    let worst = sharp
        .data
        .iter()
        .zip(&expected.data)
        .map(|(&g, &c)| (g as f64 - c).abs())
        .fold(0.0, f64::max);
    println!("largest difference from the CPU reference: {worst:.2e}");

    std::fs::create_dir_all(&args.out)?;
    for (name, t) in [("input.png", &image), ("output.png", sharp)] {
        to_rgb8(t).save(args.out.join(name))?;
    }
    println!("wrote {}/input.png and {}/output.png (an untrained generator: `irdc train` makes it deblur)", args.out.display(), args.out.display());
    if worst > 1e-3 {
        bail!("the GPU result differs from the CPU reference by {worst:.2e}");
    }
    Ok(())
}

/// Discs, stripes and a gradient: edges in every direction, in [-1, 1].
fn procedural_image(s: usize) -> Tensor<f32> {
    let mut t = Tensor::zeros(&[1, 3, s, s]);
    let f = s as f32;
    for y in 0..s {
        for x in 0..s {
            let (u, v) = (x as f32 / f, y as f32 / f);
            let disc = ((u - 0.35).powi(2) + (v - 0.4).powi(2)).sqrt() < 0.22;
            let stripes = ((u + v) * 12.0).floor() as i32 % 2 == 0;
            let rgb = [
                if disc { 0.9 } else { u * 1.6 - 0.8 },
                if stripes { 0.6 } else { -0.6 },
                if disc { -0.7 } else { v - 0.5 },
            ];
            for (c, value) in rgb.into_iter().enumerate() {
                t.data[(c * s + y) * s + x] = value;
            }
        }
    }
    t
}

fn to_rgb8(t: &Tensor<f32>) -> image::RgbImage {
    let (h, w) = (t.shape[2], t.shape[3]);
    image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let px = |c: usize| {
            ((t.data[(c * h + y as usize) * w + x as usize] + 1.0) * 127.5)
                .round()
                .clamp(0.0, 255.0) as u8
        };
        image::Rgb([px(0), px(1), px(2)])
    })
}
