//! `irdc deblur --checkpoint C INPUT... --out DIR`: run a trained generator on images.
//!
//! INPUTs are images or folders (searched recursively for files with an image extension), of any
//! size and any format the `image` crate reads. Each image is reflect-padded on the bottom and
//! right to the multiple the generator needs, run on the GPU, cropped back and written as
//! `DIR/<stem>.png` (atomically; alpha, 16-bit depth and EXIF orientation kept: see
//! runtime::image_io). An output that would land on an input, or two inputs sharing an output,
//! refuses the whole run before anything is written. An image that cannot be read is reported on
//! stderr, naming the file, and skipped; the others are still written. Decoding, deblurring and
//! writing overlap (`stream`). Exit status: 0 when every image was written, 1 when
//! any failed (or nothing could start: no checkpoint, no GPU).

use super::deblurrer::{sizes_for, Deblurrer, WINDOW};
use anyhow::{bail, Context, Result};
use ir::Tensor;
use runtime::image_io::{read_photo, write_photo, Photo};
use runtime::Gpu;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint written by `irdc train`
    #[arg(long)]
    checkpoint: PathBuf,
    /// Images, or folders of images (searched recursively)
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Where to write the deblurred PNGs (created if missing)
    #[arg(long)]
    out: PathBuf,
    /// Override a model parameter after the checkpoint's own (repeatable)
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Use the trained weights even when the checkpoint has their moving average (`ema`)
    #[arg(long)]
    trained_weights: bool,
    /// Images larger than this on both sides run in windows of this side, stage by stage with
    /// the whole image's statistics: memory bounded by the window, one compiled plan for every
    /// size (0: every image whole)
    #[arg(long, default_value_t = WINDOW, value_name = "PIXELS")]
    window: usize,
    /// The most device memory a compiled plan may take, e.g. 512M or 2G: the window shrinks
    /// until its largest stage fits (default: the window's own need)
    #[arg(long, value_name = "SIZE", value_parser = super::parse_bytes)]
    memory: Option<u64>,
    #[command(flatten)]
    device: super::DeviceArgs,
}

pub fn main(args: Args) -> Result<()> {
    let files = image_files(&args.inputs)?;
    if files.is_empty() {
        bail!("no images found in the inputs given");
    }
    // Every refusal comes before any work, so a refused run writes nothing.
    let outputs = output_paths(&files, &args.out)?;
    let sizes = match args.device.sizes {
        Some(sizes) => sizes,
        None => sizes_for(&files, args.window),
    };
    let (files, outputs, gpu) = share_of_job(files, outputs, &args.device)?;
    let gpu = gpu.with_sizes(sizes);
    let mut deblurrer = Deblurrer::new(&args.checkpoint, &args.set, args.trained_weights, gpu)?
        .with_window(args.window)
        .with_memory(args.memory);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let started = Instant::now();
    let failed = stream(&mut deblurrer, &files, &outputs);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} images in {seconds:.1} s ({:.2} images/s); {} pipelines compiled",
        files.len(),
        files.len() as f64 / seconds.max(1e-9),
        deblurrer.pipelines()
    );
    if failed > 0 {
        bail!("{failed} of {} images failed", files.len());
    }
    Ok(())
}

/// Under `mpirun -np K` (docs/mpi.md): this rank's share of the images, every K-th from its rank,
/// on its own adapter; the ranks need not talk, each deblurs and reports its share. Alone: all.
fn share_of_job(
    files: Vec<PathBuf>,
    outputs: Vec<PathBuf>,
    device: &super::DeviceArgs,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>, Gpu)> {
    use runtime::train::Collective;
    let Some(job) = crate::mpi::start()? else {
        let gpu = device.open()?;
        eprintln!("{}", gpu.describe());
        return Ok((files, outputs, gpu));
    };
    let gpu = device.open_at(job.local())?;
    eprintln!("{}: {}", job.who(), gpu.describe());
    let (rank, ranks) = (job.rank(), job.size());
    let mine = |v: Vec<PathBuf>| v.into_iter().skip(rank).step_by(ranks).collect();
    Ok((mine(files), mine(outputs), gpu))
}

/// An image's index, when the device started it, and its result with the photo it came from.
type Deblurred = (usize, Instant, Result<(Tensor<f32>, Photo)>);

/// Images waiting between two stages: the decoded ones ahead of the device, the deblurred ones
/// ahead of the writer. It bounds the memory a long folder takes.
const QUEUE: usize = 2;

/// Deblur `files` into `outputs` in three overlapping stages, so the device need not wait for
/// files: a thread decodes the next images, this one deblurs, a thread encodes and writes. Each
/// image's line (or error) is printed in order, above a progress bar of images per second and
/// the time left where stderr is a terminal. Returns how many images failed.
fn stream(deblurrer: &mut Deblurrer, files: &[PathBuf], outputs: &[PathBuf]) -> usize {
    let n = files.len();
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{wide_bar} {pos}/{len} images, {per_sec}, {eta} left{msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (read_tx, read_rx) = std::sync::mpsc::sync_channel(QUEUE);
    let (write_tx, write_rx) = std::sync::mpsc::sync_channel::<Deblurred>(QUEUE);
    std::thread::scope(|s| {
        s.spawn(move || {
            for file in files {
                // The receiver is gone only if deblurring stopped; nothing more to read then.
                if read_tx.send(read_photo(file)).is_err() {
                    break;
                }
            }
        });
        let bar = &bar;
        let writer = s.spawn(move || {
            let mut failed = 0;
            for (i, started, result) in write_rx {
                let out: &PathBuf = &outputs[i];
                let written = result.and_then(|(sharp, photo)| {
                    write_photo(out, &sharp, photo.alpha.as_deref(), photo.depth)?;
                    Ok((sharp.shape[3], sharp.shape[2]))
                });
                let line = match written {
                    Ok((w, h)) => format!(
                        "[{}/{n}] {} ({w}x{h}) -> {} in {:.2} s",
                        i + 1,
                        files[i].display(),
                        out.display(),
                        started.elapsed().as_secs_f64()
                    ),
                    Err(e) => {
                        failed += 1;
                        format!("[{}/{n}] error: {e:#}; skipped", i + 1)
                    }
                };
                bar.suspend(|| eprintln!("{line}"));
                bar.inc(1);
            }
            failed
        });
        for (i, photo) in read_rx.into_iter().enumerate() {
            let started = Instant::now();
            let result = photo.map_err(anyhow::Error::from).and_then(|photo| {
                let windows = |done: usize, total: usize| {
                    bar.set_message(format!("; image {}: window {done}/{total}", i + 1));
                };
                let sharp = deblurrer.deblur_with(&photo.rgb, &mut { windows })?;
                bar.set_message("");
                Ok((sharp, photo))
            });
            if write_tx.send((i, started, result)).is_err() {
                break;
            }
        }
        drop(write_tx);
        let failed = writer.join().unwrap_or(n);
        bar.finish_and_clear();
        failed
    })
}

/// `OUT/<stem>.png` for each file, refused when an output would land on an input (the same
/// file after resolving links and `..`) or two inputs share an output: the originals are never
/// written over, and no output silently replaces another. An existing output that is not an
/// input is replaced (atomically), as a rerun expects.
pub fn output_paths(files: &[PathBuf], out: &Path) -> Result<Vec<PathBuf>> {
    let outputs: Vec<PathBuf> = files
        .iter()
        .map(|f| {
            let stem = f.file_stem().unwrap_or_default().to_string_lossy();
            out.join(format!("{stem}.png"))
        })
        .collect();
    let over = landing_on_inputs(files, &outputs)?;
    if !over.is_empty() {
        bail!(
            "nothing written: outputs would write over inputs; choose an --out that holds none of \
             them:\n{}",
            over.join("\n")
        );
    }
    let shared = shared_outputs(files, &outputs);
    if !shared.is_empty() {
        bail!(
            "nothing written: inputs with the same name would write the same output; rename one, \
             or deblur them into different --out folders:\n{}",
            shared.join("\n")
        );
    }
    Ok(outputs)
}

/// A line for each output that is an input file.
fn landing_on_inputs(files: &[PathBuf], outputs: &[PathBuf]) -> Result<Vec<String>> {
    let mut inputs = HashMap::new();
    for f in files {
        let real = f
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", f.display()))?;
        inputs.insert(real, f);
    }
    // Only an existing path can be an input; its canonical form sees through links and `..`.
    Ok(files
        .iter()
        .zip(outputs)
        .filter_map(|(file, output)| {
            let input = inputs.get(&output.canonicalize().ok()?)?;
            Some(format!(
                "  {} -> {}, which is the input {}",
                file.display(),
                output.display(),
                input.display()
            ))
        })
        .collect())
}

/// A line for each input whose output an earlier input already has.
fn shared_outputs(files: &[PathBuf], outputs: &[PathBuf]) -> Vec<String> {
    let mut first: HashMap<&Path, &Path> = HashMap::new();
    let mut shared = Vec::new();
    for (file, output) in files.iter().zip(outputs) {
        match first.get(output.as_path()) {
            Some(earlier) => shared.push(format!(
                "  {} and {} -> {}",
                earlier.display(),
                file.display(),
                output.display()
            )),
            None => {
                first.insert(output, file);
            }
        }
    }
    shared
}

/// The image files among `inputs`: files as given, folders searched recursively (sorted) for
/// files with an image extension.
pub fn image_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            bail!("{}: no such file or folder", p.display());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if is_image_name(&p) {
            out.push(p);
        }
    }
    Ok(())
}

fn is_image_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| image::ImageFormat::from_extension(e).is_some())
}
