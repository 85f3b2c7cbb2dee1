//! The host's part of a streamed run: the values kept between stages, each window's inputs cut
//! from them and its results pasted back, and the plane ops computed between stages.

use super::tiles::{cut, paste, spans};
use super::StreamPlan;
use ir::{NodeId, Tensor};

/// Runs one stage's graph on one window (a GPU executable, or the CPU reference in tests).
pub trait StageRunner {
    /// Before the windows of stage `k` (a GPU runner makes its executable here).
    fn begin(&mut self, _k: usize) -> Result<(), String> {
        Ok(())
    }
    /// Stage `k` on one window: `inputs` in the order of `Stage::reads`, the results in the
    /// order of `Stage::writes`.
    fn run(&mut self, k: usize, inputs: Vec<Tensor<f32>>) -> Result<Vec<Tensor<f32>>, String>;
    /// After the last window of stage `k` (a GPU runner frees its memory here).
    fn end(&mut self, _k: usize) {}
}

/// Run `plan` on `image` (`[N, C, H, W]`, a size the plan `fits`); `progress(done, total)`
/// after each window. Values are kept on the host only until their last reader has run.
pub fn run(
    plan: &StreamPlan,
    image: Tensor<f32>,
    runner: &mut dyn StageRunner,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<f32>, String> {
    let [_, _, h, w] = ir::shape4(&image.shape);
    if !plan.fits(h, w) {
        return Err(format!(
            "a {w}x{h} image does not fit windows of {}x{}: it needs sides of at least the \
             window's, multiples of {}",
            plan.window[1], plan.window[0], plan.align
        ));
    }
    let total: usize = (0..plan.stages.len()).map(|k| plan.windows(k, h, w)).sum();
    let last = plan.last_reads();
    let mut store: Vec<Option<Tensor<f32>>> = vec![None; plan.graph.nodes.len()];
    store[plan.input] = Some(image);
    let mut done = 0;
    for k in 0..=plan.stages.len() {
        for p in plan.planes_before(k) {
            store[p] = Some(planes(plan, p, &store)?);
        }
        forget(&mut store, &last, 2 * k);
        if k == plan.stages.len() {
            break;
        }
        runner.begin(k)?;
        let counted = &mut |n: usize| progress(done + n, total);
        let ran = stage(plan, k, (h, w), &mut store, runner, counted);
        runner.end(k);
        done += ran?;
        forget(&mut store, &last, 2 * k + 1);
    }
    store[plan.output]
        .take()
        .ok_or_else(|| "the graph's output was never computed".to_string())
}

fn forget(store: &mut [Option<Tensor<f32>>], last: &[usize], now: usize) {
    for (v, value) in store.iter_mut().enumerate() {
        if last[v] <= now {
            *value = None;
        }
    }
}

/// Stage `k` over every window of an `(h, w)` image: its reads cut from `store`, its writes
/// pasted into values of the image's size. Returns how many windows ran.
fn stage(
    plan: &StreamPlan,
    k: usize,
    (h, w): (usize, usize),
    store: &mut [Option<Tensor<f32>>],
    runner: &mut dyn StageRunner,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, String> {
    let s = &plan.stages[k];
    let [wh, ww] = plan.window;
    for &v in &s.writes {
        if let Some(e) = plan.extents[v] {
            let [n, c, _, _] = ir::shape4(&plan.graph.nodes[v].shape);
            store[v] = Some(Tensor::zeros(&[n, c, h / e.scale, w / e.scale]));
        }
    }
    let mut count = 0;
    for y in spans(h, wh, s.halo, plan.align) {
        for x in spans(w, ww, s.halo, plan.align) {
            let inputs = (s.reads.iter())
                .map(|&u| {
                    let value = store[u].as_ref().ok_or_else(|| missing(plan, u))?;
                    Ok(match plan.extents[u] {
                        Some(e) => {
                            let at = (y.start / e.scale, x.start / e.scale);
                            cut(value, at, (wh / e.scale, ww / e.scale))
                        }
                        None => value.clone(),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            let outputs = runner.run(k, inputs)?;
            for (&v, part) in s.writes.iter().zip(outputs) {
                let Some(e) = plan.extents[v] else {
                    store[v] = Some(part);
                    continue;
                };
                let f = e.scale;
                let to = (y.keep.0 / f, x.keep.0 / f);
                let from = ((y.keep.0 - y.start) / f, (x.keep.0 - x.start) / f);
                let size = ((y.keep.1 - y.keep.0) / f, (x.keep.1 - x.keep.0) / f);
                let whole = store[v].as_mut().ok_or_else(|| missing(plan, v))?;
                paste(whole, to, &part, from, size);
            }
            count += 1;
            progress(count);
        }
    }
    Ok(count)
}

fn missing(plan: &StreamPlan, v: NodeId) -> String {
    format!(
        "`{}` is read before it is computed",
        plan.graph.nodes[v].name
    )
}

/// A plane op (`Reach::Planes`) over complete values: each (image, channel) plane on its own
/// through the op's CPU reference, in f64, so sums over millions of pixels keep their digits.
fn planes(
    plan: &StreamPlan,
    p: NodeId,
    store: &[Option<Tensor<f32>>],
) -> Result<Tensor<f32>, String> {
    let node = &plan.graph.nodes[p];
    let inputs = (node.inputs.iter())
        .map(|&u| store[u].as_ref().ok_or_else(|| missing(plan, u)))
        .collect::<Result<Vec<_>, String>>()?;
    let [n, c, oh, ow] = ir::shape4(&node.shape);
    for t in &inputs {
        if t.shape.len() != 4 || t.shape[..2] != [n, c] {
            return Err(format!(
                "`{}` reads a value of shape {:?} for {n} images of {c} channels",
                node.name, t.shape
            ));
        }
    }
    let plane = |i: usize| -> Vec<f32> {
        let parts: Vec<Tensor<f64>> = (inputs.iter())
            .map(|t| {
                let size = t.shape[2] * t.shape[3];
                let data = t.data[i * size..(i + 1) * size]
                    .iter()
                    .map(|&v| f64::from(v));
                Tensor::new(&[1, 1, t.shape[2], t.shape[3]], data.collect())
            })
            .collect();
        let refs: Vec<&Tensor<f64>> = parts.iter().collect();
        let out = node.op.cpu(&refs, &[1, 1, oh, ow]);
        out.data.iter().map(|&v| v as f32).collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get().min(8));
    let mut out = vec![0f32; n * c * oh * ow];
    std::thread::scope(|scope| {
        let chunks = out.chunks_mut(oh * ow).enumerate().collect::<Vec<_>>();
        let per = chunks.len().div_ceil(threads).max(1);
        let mut rest = chunks;
        while !rest.is_empty() {
            let batch: Vec<_> = rest.drain(..per.min(rest.len())).collect();
            let plane = &plane;
            scope.spawn(move || {
                for (i, dst) in batch {
                    dst.copy_from_slice(&plane(i));
                }
            });
        }
    });
    Ok(Tensor::new(&node.shape, out))
}
