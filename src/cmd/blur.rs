//! `irdc blur`: make a GoPro-style data set from a folder of sharp images with the synthetic
//! motion blur of docs/spec.md.
//!
//! Writes `OUT/<name of the sharp folder>/{blur,sharp,kernel}/NNNNNN.png`: the blurred image, the
//! sharp image re-encoded as RGB 8-bit PNG, and the kernel for viewing (its largest weight white).
//! `NNNNNN` numbers the images in sorted path order from 000000 (an unreadable one leaves a gap,
//! so the number, and with it the kernel drawn from `(seed, number)`, never shifts), and
//! `names.txt` beside them says which source file each number came from. The result reads back
//! with `DataSpec::GoPro` once placed under `train/` or `test/`.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use runtime::data::{blur, rng_for, source::image_files};
use runtime::image_io::{read_image, write_png};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A folder of sharp images, searched recursively (any format the `image` crate reads)
    #[arg(long)]
    pub sharp: PathBuf,
    /// Where to write `<name of the sharp folder>/{blur,sharp,kernel}/NNNNNN.png`
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the random kernels: image NNNNNN gets the kernel of (seed, NNNNNN)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Standard deviation of Gaussian noise added after the blur, on the [0, 1] pixel scale
    #[arg(long, default_value_t = 0.0)]
    pub noise: f32,
}

pub fn main(args: Args) -> Result<()> {
    let files = image_files(&args.sharp)?;
    if files.is_empty() {
        anyhow::bail!(
            "{}: no images found (searched recursively)",
            args.sharp.display()
        );
    }
    let name = args
        .sharp
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_owned()))
        .unwrap_or_else(|| "sharp".into());
    let root = args.out.join(name);
    for sub in ["blur", "sharp", "kernel"] {
        let d = root.join(sub);
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let bar = ProgressBar::new(files.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed_precise} {msg}")
            .expect("a valid progress template"),
    );
    let (mut written, mut skipped, mut names) = (0usize, Vec::new(), String::new());
    for (i, path) in files.iter().enumerate() {
        let file = format!("{i:06}.png");
        bar.set_message(path.display().to_string());
        let sharp = match read_image(path) {
            Ok(t) => t,
            Err(e) => {
                bar.suspend(|| eprintln!("warning: {e}; skipped"));
                skipped.push(path.clone());
                bar.inc(1);
                continue;
            }
        };
        let mut rng = rng_for(args.seed, i as u64);
        let k = blur::Kernel::random(&mut rng);
        let mut blurred = blur::blur(&sharp, &k);
        blur::add_noise(&mut blurred, args.noise, &mut rng);
        write_png(&root.join("blur").join(&file), &blurred)?;
        write_png(&root.join("sharp").join(&file), &sharp)?;
        let kpath = root.join("kernel").join(&file);
        k.to_gray8()
            .save(&kpath)
            .with_context(|| format!("cannot write {}", kpath.display()))?;
        let rel = path.strip_prefix(&args.sharp).unwrap_or(path);
        names.push_str(&format!("{file} {}\n", rel.display()));
        written += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let list = root.join("names.txt");
    std::fs::write(&list, names).with_context(|| format!("cannot write {}", list.display()))?;
    println!(
        "{written} pairs written to {} (blur/, sharp/, kernel/, names.txt); seed {}, noise {}",
        root.display(),
        args.seed,
        args.noise
    );
    if !skipped.is_empty() {
        println!("{} unreadable images skipped:", skipped.len());
        for p in &skipped {
            println!("  {}", p.display());
        }
    }
    Ok(())
}
