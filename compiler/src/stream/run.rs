//! The host's part of a streamed run: the values kept between stages, each window's inputs cut
//! from them and its results pasted back, and the plane ops computed between stages.

use super::store::Store;
use super::tiles::{paste, spans};
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
    let mut store = Store::new(plan, image);
    let mut done = 0;
    for k in 0..=plan.stages.len() {
        for p in plan.planes_before(k) {
            store.values[p] = Some(planes(plan, p, &store)?);
        }
        store.forget(&last, 2 * k);
        if k == plan.stages.len() {
            break;
        }
        runner.begin(k)?;
        let counted = &mut |n: usize| progress(done + n, total);
        let ran = stage(plan, k, (h, w), &mut store, runner, counted);
        runner.end(k);
        done += ran?;
        store.forget(&last, 2 * k + 1);
    }
    store.values[plan.output]
        .take()
        .ok_or_else(|| "the graph's output was never computed".to_string())
}

/// Stage `k` over every window of an `(h, w)` image: its reads cut from `store`, its writes
/// pasted into values of the image's size. Returns how many windows ran.
fn stage(
    plan: &StreamPlan,
    k: usize,
    (h, w): (usize, usize),
    store: &mut Store,
    runner: &mut dyn StageRunner,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, String> {
    let s = &plan.stages[k];
    let [wh, ww] = plan.window;
    for &v in &s.writes {
        if let Some(e) = plan.extents[v] {
            let [n, c, _, _] = ir::shape4(&plan.graph.nodes[v].shape);
            store.values[v] = Some(Tensor::zeros(&[n, c, h / e.scale, w / e.scale]));
        }
    }
    let mut count = 0;
    for y in spans(h, wh, s.halo, plan.align) {
        for x in spans(w, ww, s.halo, plan.align) {
            let inputs = (s.reads.iter())
                .map(|&u| store.window(u, (y.start, x.start)))
                .collect::<Result<Vec<_>, String>>()?;
            let outputs = runner.run(k, inputs)?;
            for (&v, part) in s.writes.iter().zip(outputs) {
                let Some(e) = plan.extents[v] else {
                    store.values[v] = Some(part);
                    continue;
                };
                let f = e.scale;
                let to = (y.keep.0 / f, x.keep.0 / f);
                let from = ((y.keep.0 - y.start) / f, (x.keep.0 - x.start) / f);
                let size = ((y.keep.1 - y.keep.0) / f, (x.keep.1 - x.keep.0) / f);
                let whole = (store.values[v].as_mut())
                    .ok_or_else(|| format!("`{}` has no room kept", plan.graph.nodes[v].name))?;
                paste(whole, to, &part, from, size);
            }
            count += 1;
            progress(count);
        }
    }
    Ok(count)
}

/// A plane op (`Reach::Planes`) over complete values: each (image, channel) plane on its own
/// through the op's CPU reference, in f64, so sums over millions of pixels keep their digits.
fn planes(plan: &StreamPlan, p: NodeId, store: &Store) -> Result<Tensor<f32>, String> {
    let node = &plan.graph.nodes[p];
    let [n, c, oh, ow] = ir::shape4(&node.shape);
    for &u in &node.inputs {
        let shape = store.shape(u);
        if shape.len() != 4 || shape[..2] != [n, c] {
            return Err(format!(
                "`{}` reads a value of shape {shape:?} for {n} images of {c} channels",
                node.name
            ));
        }
    }
    let plane = |i: usize| -> Result<Vec<f32>, String> {
        let parts = (node.inputs.iter())
            .map(|&u| {
                let shape = store.shape(u);
                let data = store.plane(u, i / c, i % c)?.iter().map(|&v| f64::from(v));
                Ok(Tensor::new(&[1, 1, shape[2], shape[3]], data.collect()))
            })
            .collect::<Result<Vec<Tensor<f64>>, String>>()?;
        let refs: Vec<&Tensor<f64>> = parts.iter().collect();
        let out = node.op.cpu(&refs, &[1, 1, oh, ow]);
        Ok(out.data.iter().map(|&v| v as f32).collect())
    };
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get().min(8));
    let mut out = vec![0f32; n * c * oh * ow];
    let planes: Vec<(usize, &mut [f32])> = out.chunks_mut(oh * ow).enumerate().collect();
    let per = planes.len().div_ceil(threads).max(1);
    let mut rest = planes;
    std::thread::scope(|scope| {
        let mut running = Vec::new();
        while !rest.is_empty() {
            let batch: Vec<_> = rest.drain(..per.min(rest.len())).collect();
            let plane = &plane;
            running.push(scope.spawn(move || {
                for (i, dst) in batch {
                    dst.copy_from_slice(&plane(i)?);
                }
                Ok::<(), String>(())
            }));
        }
        (running.into_iter()).try_for_each(|t| {
            t.join()
                .unwrap_or_else(|_| Err("a plane op's thread failed".into()))
        })
    })?;
    Ok(Tensor::new(&node.shape, out))
}
