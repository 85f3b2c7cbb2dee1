//! A checkpoint's generator on the GPU for images of any size (`irdc deblur`, `eval`, `demo`).
//!
//! An image no larger than the window on one side runs whole, compiled for its size (the last
//! few sizes kept). A larger one runs streamed (`compiler::stream`): window by window, stage by
//! stage, with the statistics of the whole image between stages, so the device holds one
//! window's stage at a time and one compiled plan serves every such image, whatever its size.

use super::checkpoint::{load_generator, Generator};
use anyhow::{anyhow, bail, Context, Result};
use compiler::Plan;
use ir::{NodeId, Tensor, ValueKind};
use runtime::pad::{crop, reflect_pad, size_multiple};
use runtime::{Executable, Gpu, PipelineCache, RuntimeError, Streamed};
use std::path::{Path, PathBuf};

/// The window side images larger than it on both sides run in, by default: large enough that
/// halos and overlaps cost little (a 4000x3000 photo in 4x3 windows computes 5% more pixels),
/// small enough that a stage fits any device, and above a 1280x720 frame, which runs whole.
pub const WINDOW: usize = 1024;

/// Whole-image executables kept, most recent last: a folder of one size compiles once, a
/// folder of many sizes does not grow without bound.
const KEPT_SIZES: usize = 2;

pub struct Deblurrer {
    gpu: Gpu,
    generator: Generator,
    input: String,
    /// Height and width must be multiples of this.
    multiple: usize,
    /// Images larger than this on both sides run streamed (0: never).
    window: usize,
    /// The most device memory a compiled plan may take (`None`: no limit but the device's).
    memory: Option<u64>,
    whole: Vec<((usize, usize), Compiled)>,
    streamed: Option<Streamed>,
    pipelines: PipelineCache,
}

struct Compiled {
    exe: Executable,
    input: NodeId,
    output: NodeId,
}

impl Deblurrer {
    /// The generator of `checkpoint` (with `sets` applied) on `gpu`: the moving average of its
    /// weights when the checkpoint has one, unless `trained_weights`.
    pub fn new(
        checkpoint: &Path,
        sets: &[String],
        trained_weights: bool,
        gpu: Gpu,
    ) -> Result<Deblurrer> {
        let generator = load_generator(checkpoint, sets, trained_weights)?;
        eprintln!(
            "{}: generator `{}` at step {}, {} weights",
            checkpoint.display(),
            generator.graph,
            generator.step,
            generator.weights
        );
        let declared = generator.model.input_shapes(&generator.graph)?;
        let [(input, _)] = &declared[..] else {
            bail!(
                "graph {} has {} inputs; a generator takes one image",
                generator.graph,
                declared.len()
            );
        };
        let multiple = size_multiple(&generator.model, &generator.graph, input).with_context(|| {
            format!(
                "graph {} changes the size of every image tried; it is not an image-to-image generator",
                generator.graph
            )
        })?;
        Ok(Deblurrer {
            gpu,
            input: input.clone(),
            generator,
            multiple,
            window: WINDOW,
            memory: None,
            whole: Vec::new(),
            streamed: None,
            pipelines: PipelineCache::new(),
        })
    }

    /// Run images larger than `side` on both sides in windows of `side` (0: every image whole).
    pub fn with_window(mut self, side: usize) -> Deblurrer {
        self.window = side;
        self
    }

    /// Keep every compiled plan within `bytes` of device memory: the window shrinks until its
    /// largest stage fits, and an image run whole must fit too.
    pub fn with_memory(mut self, bytes: Option<u64>) -> Deblurrer {
        self.memory = bytes;
        self
    }

    /// Deblur one image `[1, 3, H, W]` in [-1, 1]; the result has the same shape.
    pub fn deblur(&mut self, image: &Tensor<f32>) -> Result<Tensor<f32>> {
        self.deblur_with(image, &mut |_, _| {})
    }

    /// [`Deblurrer::deblur`], calling `progress(done, total)` after each window of a streamed
    /// image.
    pub fn deblur_with(
        &mut self,
        image: &Tensor<f32>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Tensor<f32>> {
        let [1, 3, h, w] = image.shape[..] else {
            bail!(
                "image tensor has shape {:?}; expected [1, 3, H, W]",
                image.shape
            );
        };
        let (ph, pw) = (
            h.next_multiple_of(self.multiple),
            w.next_multiple_of(self.multiple),
        );
        let out = match self.window > 0 && ph > self.window && pw > self.window {
            true => self.streamed_run(reflect_pad(image, ph, pw), progress)?,
            false => self.whole_run(&reflect_pad(image, ph, pw))?,
        };
        Ok(crop(&out, h, w))
    }

    fn whole_run(&mut self, padded: &Tensor<f32>) -> Result<Tensor<f32>> {
        let size = (padded.shape[2], padded.shape[3]);
        let at = match self.whole.iter().position(|(s, _)| *s == size) {
            Some(at) => at,
            None => {
                let c = self.compile(size.0, size.1)?;
                if self.whole.len() == KEPT_SIZES {
                    self.whole.remove(0);
                }
                self.whole.push((size, c));
                self.whole.len() - 1
            }
        };
        let c = &self.whole[at].1;
        c.exe.write(c.input, &padded.data)?;
        c.exe.run()?;
        Ok(Tensor::new(&padded.shape, c.exe.read(c.output)?))
    }

    fn streamed_run(
        &mut self,
        padded: Tensor<f32>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Tensor<f32>> {
        if self.streamed.is_none() {
            match self.plan_windows()? {
                Some(streamed) => self.streamed = Some(streamed),
                None => {
                    self.window = 0;
                    return self.whole_run(&padded);
                }
            }
        }
        let streamed = self
            .streamed
            .as_ref()
            .ok_or_else(|| anyhow!("no stream plan"))?;
        if !streamed.plan.fits(padded.shape[2], padded.shape[3]) {
            // Larger than the window asked for, but not than the one the halos need: whole.
            return self.whole_run(&padded);
        }
        let params = &self.generator.params;
        (streamed.run(&self.gpu, &mut self.pipelines, params, padded, progress)).map_err(misfit)
    }

    /// The generator cut into stages for windows of `self.window` (or the least its halos
    /// allow), each stage compiled; `None` (said on stderr) for a generator that cannot stream.
    fn plan_windows(&self) -> Result<Option<Streamed>> {
        let g = &self.generator;
        let build = |side: usize| {
            let shapes = [(self.input.clone(), vec![1, 3, side, side])];
            (g.model)
                .build_with(&g.graph, &shapes, &compiler::differentiate::Autodiff)
                .map_err(|e| e.to_string())
        };
        let mut side = self.window.next_multiple_of(self.multiple);
        let streamed = loop {
            let plan = match compiler::stream::plan_fitted(&build, side) {
                Ok(plan) => plan,
                Err(e) => {
                    eprintln!("images run whole: this generator cannot stream: {e}");
                    return Ok(None);
                }
            };
            let (least, window) = (plan.least_side(), plan.window[0]);
            // Every window has one size: its kernels are specialised to it.
            let target = self.gpu.target_for(compiler::Sizes::Specialised);
            let streamed = Streamed::compile(plan, &target)?;
            let bytes = streamed.device_bytes();
            let Some(budget) = self.memory.filter(|&b| bytes > b) else {
                break streamed;
            };
            // Memory grows with the window's area: shrink the side by the square root.
            let fitted = (window as f64 * (budget as f64 / bytes as f64).sqrt()) as usize;
            let smaller = fitted / streamed.plan.align * streamed.plan.align;
            if smaller < least || smaller >= window {
                bail!(
                    "--memory {:.1} MB is too little: the generator's stages take {:.1} MB in \
                     windows of {window}, and its halos need windows of at least {least}",
                    mb(budget),
                    mb(bytes)
                );
            }
            side = smaller;
        };
        let p = &streamed.plan;
        eprintln!(
            "streaming large images in windows of {}x{}: {} stages, {} kernels, {:.1} MB on the \
             device at a time",
            p.window[1],
            p.window[0],
            p.stages.len(),
            streamed.kernels(),
            mb(streamed.device_bytes())
        );
        Ok(Some(streamed))
    }

    fn compile(&mut self, h: usize, w: usize) -> Result<Compiled> {
        // Compiling (and building pipelines) dominates a first image; same-size images reuse it.
        eprintln!("compiling the generator for {w}x{h}");
        let g = &self.generator;
        let shapes = [(self.input.clone(), vec![1, 3, h, w])];
        let graph = g
            .model
            .build_with(&g.graph, &shapes, &compiler::differentiate::Autodiff)?;
        let (plan, _) = compiler::compile(&graph, &self.gpu.target())?;
        if let Some(budget) = self.memory.filter(|&b| plan.memory.peak_bytes > b) {
            bail!(
                "a {w}x{h} image takes {:.1} MB whole, over --memory {:.1} MB; a smaller --window \
                 streams images larger than it on both sides",
                mb(plan.memory.peak_bytes),
                mb(budget)
            );
        }
        let exe = Executable::with_cache(&self.gpu, &plan, &mut self.pipelines)?;
        exe.write_params(&g.params).map_err(misfit)?;
        let input = (plan.values.iter())
            .find(|v| v.kind == ValueKind::Input && v.name == self.input)
            .map(|v| v.node);
        let input =
            input.with_context(|| format!("the compiled plan has no input `{}`", self.input))?;
        let output = output_of(&plan)?;
        Ok(Compiled { exe, input, output })
    }

    /// Pipelines compiled so far (a folder of many sizes that all run streamed compiles once).
    pub fn pipelines(&self) -> usize {
        self.pipelines.len()
    }
}

/// A checkpoint's weights that the model does not take, said as such; other errors unchanged.
fn misfit(e: RuntimeError) -> anyhow::Error {
    match e {
        RuntimeError::MissingFeed { .. } | RuntimeError::FeedShape { .. } => anyhow!(e).context(
            "the checkpoint's generator does not fit the model (were the same --set overrides given?)",
        ),
        e => e.into(),
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn output_of(plan: &Plan) -> Result<NodeId> {
    match &plan.outputs[..] {
        [(_, node)] => Ok(*node),
        outs => bail!(
            "graph {} has {} outputs; a generator gives one image",
            plan.graph,
            outs.len()
        ),
    }
}

/// Kernels that take sizes as data where the images run whole at more than one size (read from
/// their headers; an unreadable one is reported when its turn comes): one set of pipelines then
/// serves them all. Images of one size, and those run in windows (larger than `window` on both
/// sides), keep kernels specialised to their size, which run faster (benches/README.md).
pub fn sizes_for(files: &[PathBuf], window: usize) -> compiler::Sizes {
    let whole =
        |&(w, h): &(u32, u32)| window == 0 || (w as usize) <= window || (h as usize) <= window;
    let seen: std::collections::HashSet<(u32, u32)> = (files.iter())
        .filter_map(|f| image::image_dimensions(f).ok())
        .filter(whole)
        .collect();
    let sizes = compiler::Sizes::for_images(seen.len());
    if sizes == compiler::Sizes::Data {
        eprintln!(
            "{} image sizes: kernels take sizes as data, one set of pipelines for all (--sizes \
             specialised compiles each size's own)",
            seen.len()
        );
    }
    sizes
}
