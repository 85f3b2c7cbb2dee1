//! Validation during training: the generator (its moving average, with `ema`) deblurs whole
//! held-out images, reflect-padded to the multiple it needs and cropped back as `irdc deblur`
//! does, and PSNR/SSIM ([`crate::metrics`], on RGB 8-bit) of the deblurred and of the blurred
//! images against sharp are averaged over the set. Each image size is compiled once, when the
//! validator is made; images of one size share that graph, and a set of several sizes runs on
//! kernels that take sizes as data, so all its sizes share one set of pipelines.
//!
//! The set: a folder of pairs (`val_data`, `--val-data`: GoPro's root, a split or a sequence),
//! or the training data's held-out split (GoPro's `test/`, a folder's last tenth, procedural
//! images of `val_size`), whole images; `val_images` of them, a slice fixed by the seed.

use super::bound::Bound;
use super::trainer::Trainer;
use super::TrainError;
use crate::data::{self, pairs::pair_files, rng_for, DataSpec, Pair, Split};
use crate::image_io::read_image;
use crate::metrics::{psnr, ssim, Rgb8};
use crate::pad::{crop, reflect_pad, size_multiple};
use crate::pipeline_cache::PipelineCache;
use ir::front::{Model, TrainingSpec};
use ir::{NodeId, Tensor};
use rand::seq::SliceRandom;
use std::collections::HashMap;
use std::path::Path;

/// Keeps the choice of validation images apart from the data's other streams.
const VAL_STREAM: u64 = 0x7a1d_a7e5;
/// SSIM's window: smaller images cannot be scored.
const MIN_SIDE: usize = 11;

/// Mean scores over the validation set: of the deblurred images, and of the blurred inputs (the
/// baseline a deblurrer must beat), against sharp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValScores {
    pub psnr: f64,
    pub ssim: f64,
    pub psnr_blurred: f64,
    pub ssim_blurred: f64,
}

/// The validation pairs (see the module comment): `n` of them, whole images.
pub fn validation_pairs(
    data: &DataSpec,
    spec: &TrainingSpec,
    val_data: Option<&Path>,
    n: usize,
) -> Result<Vec<Pair>, TrainError> {
    if let Some(dir) = val_data {
        let files = pair_files(dir).map_err(|e| {
            TrainError::Setup(format!(
                "the validation data (val_data, --val-data): {e}; give a folder of pairs in GoPro's layout"
            ))
        })?;
        let mut out = Vec::new();
        for i in seeded_slice(files.len() as u64, n, spec.seed) {
            let (b, s) = &files[i as usize];
            let read = |p: &Path| read_image(p).map_err(data::DataError::from);
            let (blurred, sharp) = (read(b)?, read(s)?);
            if blurred.shape != sharp.shape {
                return Err(TrainError::Setup(format!(
                    "validation pair {}: its size {:?} differs from its sharp image's {:?}",
                    b.display(),
                    &blurred.shape[2..],
                    &sharp.shape[2..]
                )));
            }
            let name = b.strip_prefix(dir).unwrap_or(b).display().to_string();
            out.push(Pair {
                blurred,
                sharp,
                name,
            });
        }
        return Ok(out);
    }
    let held_out = match data {
        DataSpec::Procedural {
            noise, blur_scale, ..
        } => DataSpec::Procedural {
            size: spec.val_size,
            noise: *noise,
            blur_scale: *blur_scale,
        },
        other => other.clone(),
    };
    let source = data::open(&held_out, Split::Test, None, spec.seed)?;
    let len = source.len().unwrap_or(n as u64);
    (seeded_slice(len, n, spec.seed).into_iter())
        .map(|i| Ok(source.pair(i)?))
        .collect()
}

/// `n` of `0..len` (all when `n >= len`), chosen by the seed, in ascending order.
fn seeded_slice(len: u64, n: usize, seed: u64) -> Vec<u64> {
    let mut all: Vec<u64> = (0..len).collect();
    if (n as u64) < len {
        all.shuffle(&mut rng_for(seed ^ VAL_STREAM, 0));
        all.truncate(n);
        all.sort();
    }
    all
}

/// The validation set and the generator compiled for each of its image sizes.
pub struct Validator {
    pairs: Vec<Pair>,
    sharp: Vec<Rgb8>,
    /// Mean PSNR and SSIM of the blurred images against sharp (they never change).
    baseline: [f64; 2],
    multiple: usize,
    input: String,
    /// Per padded size (h, w): the generator at that size, its input and output.
    compiled: HashMap<(usize, usize), (Bound, NodeId, NodeId)>,
}

impl Validator {
    /// Score the blurred images and compile the trainer's generator for every image size.
    pub fn new(
        trainer: &Trainer,
        model: &Model,
        pairs: Vec<Pair>,
    ) -> Result<Validator, TrainError> {
        if pairs.is_empty() {
            return Err(TrainError::Setup("the validation set is empty".into()));
        }
        let graph = &trainer.spec.generator;
        let declared = model.input_shapes(graph)?;
        let [(input, _)] = &declared[..] else {
            return Err(TrainError::Setup(format!(
                "graph {graph} has {} inputs; a generator takes one image",
                declared.len()
            )));
        };
        let multiple = size_multiple(model, graph, input).ok_or_else(|| {
            TrainError::Setup(format!(
                "graph {graph} changes the size of every image tried; it is not an image-to-image generator"
            ))
        })?;
        let mut sharp = Vec::new();
        let mut baseline = [0.0; 2];
        let mut cache = PipelineCache::new();
        // Held-out images of several sizes run on kernels that take sizes as data: one set of
        // pipelines for all of them, as `irdc deblur` chooses.
        let padded = |p: &Pair| {
            let s = ir::shape4(&p.sharp.shape);
            (
                s[2].next_multiple_of(multiple),
                s[3].next_multiple_of(multiple),
            )
        };
        let sizes: std::collections::HashSet<_> = pairs.iter().map(padded).collect();
        let mut gpu = trainer.gpu.clone();
        if compiler::Sizes::for_images(sizes.len()) == compiler::Sizes::Data {
            gpu = gpu.with_sizes(compiler::Sizes::Data);
        }
        let mut compiled = HashMap::new();
        let prefix = format!("{graph}.");
        for p in &pairs {
            let [1, 3, h, w] = p.sharp.shape[..] else {
                return Err(TrainError::Setup(format!(
                    "validation image {} has shape {:?}; an image is [1, 3, H, W]",
                    p.name, p.sharp.shape
                )));
            };
            if h < MIN_SIDE || w < MIN_SIDE {
                return Err(TrainError::Setup(format!(
                    "validation image {} is {w}x{h}; SSIM needs at least {MIN_SIDE}x{MIN_SIDE} (use larger images, or a larger `val_size`)",
                    p.name
                )));
            }
            let (b8, s8) = (Rgb8::from_tensor(&p.blurred), Rgb8::from_tensor(&p.sharp));
            let (b8, s8) = (b8.map_err(metric)?, s8.map_err(metric)?);
            baseline[0] += psnr(&b8, &s8).map_err(metric)?;
            baseline[1] += ssim(&b8, &s8).map_err(metric)?;
            sharp.push(s8);
            let size = (h.next_multiple_of(multiple), w.next_multiple_of(multiple));
            if let std::collections::hash_map::Entry::Vacant(slot) = compiled.entry(size) {
                let shape = vec![1, 3, size.0, size.1];
                let g = model.build_with(
                    graph,
                    &[(input.clone(), shape)],
                    &compiler::differentiate::Autodiff,
                )?;
                let bound = Bound::new(
                    &gpu,
                    &mut cache,
                    &g,
                    &trainer.nets,
                    (&prefix, None),
                    &Default::default(),
                )?;
                let (inp, out) = (bound.input(input)?, single_output(&bound, &g)?);
                slot.insert((bound, inp, out));
            }
        }
        let n = pairs.len() as f64;
        Ok(Validator {
            pairs,
            sharp,
            baseline: baseline.map(|v| v / n),
            multiple,
            input: input.clone(),
            compiled,
        })
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn pair(&self, i: usize) -> &Pair {
        &self.pairs[i]
    }

    /// Validation image `i` deblurred by the trainer's generator (its moving average with `ema`).
    pub fn deblur(&self, trainer: &Trainer, i: usize) -> Result<Tensor<f32>, TrainError> {
        let image = &self.pairs[i].blurred;
        let (h, w) = (image.shape[2], image.shape[3]);
        let size = (
            h.next_multiple_of(self.multiple),
            w.next_multiple_of(self.multiple),
        );
        let Some((bound, input, output)) = self.compiled.get(&size) else {
            return Err(TrainError::Setup(format!(
                "no generator compiled for {}x{} (input `{}`)",
                size.1, size.0, self.input
            )));
        };
        bound
            .exe
            .write(*input, &reflect_pad(image, size.0, size.1).data)?;
        trainer.submit("feeding the generator for validation", |enc| {
            bound.feed_params_with(enc, &trainer.nets, trainer.inference_weights())
        })?;
        bound.exe.run()?;
        let out = Tensor::new(&[1, 3, size.0, size.1], bound.exe.read(*output)?);
        Ok(crop(&out, h, w))
    }

    /// Deblur every image and score it; also returns the first deblurred image (for a sample).
    pub fn run(&self, trainer: &Trainer) -> Result<(ValScores, Tensor<f32>), TrainError> {
        let mut sum = [0.0; 2];
        let mut first = None;
        for i in 0..self.pairs.len() {
            let out = self.deblur(trainer, i)?;
            let d8 = Rgb8::from_tensor(&out).map_err(metric)?;
            sum[0] += psnr(&d8, &self.sharp[i]).map_err(metric)?;
            sum[1] += ssim(&d8, &self.sharp[i]).map_err(metric)?;
            first.get_or_insert(out);
        }
        let n = self.pairs.len() as f64;
        let scores = ValScores {
            psnr: sum[0] / n,
            ssim: sum[1] / n,
            psnr_blurred: self.baseline[0],
            ssim_blurred: self.baseline[1],
        };
        Ok((
            scores,
            first.unwrap_or_else(|| Tensor::zeros(&[1, 3, 1, 1])),
        ))
    }
}

fn metric(e: crate::metrics::MetricError) -> TrainError {
    TrainError::Setup(format!("validation: {e}"))
}

fn single_output(bound: &Bound, g: &ir::Graph) -> Result<NodeId, TrainError> {
    match &g.outputs[..] {
        [(name, _)] => bound.output(name),
        outs => Err(TrainError::Setup(format!(
            "graph {} has {} outputs; a generator gives one image",
            g.name,
            outs.len()
        ))),
    }
}
