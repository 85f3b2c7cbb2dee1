//! A `Plan` made real on a device: one storage buffer per arena, one pipeline and bind group per
//! kernel, and the three things a caller does with it: write values, run, read values.

use crate::device::Gpu;
use crate::error::{Result, RuntimeError};
use crate::layout::{runs, span};
use crate::pipeline_cache::{CachedPipeline, PipelineCache};
use compiler::{Plan, ValuePlan};
use ir::{NodeId, Tensor, ValueKind};
use setup::{check_len, check_plan, OffsetsBuffer};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub struct Executable {
    gpu: Gpu,
    graph: String,
    values: Vec<ValuePlan>,
    outputs: Vec<(String, NodeId)>,
    arenas: Vec<wgpu::Buffer>,
    steps: Vec<Step>,
    /// The first `prologue` steps compute values of frozen parameters (`compiler::Plan::prologue`).
    prologue: usize,
    /// Whether they still have to run: on the first run, and after [`Executable::rerun_prologue`].
    prologue_due: std::sync::atomic::AtomicBool,
    /// Where the plan's second phase starts (`compiler::Plan::split`).
    split: usize,
}

/// One kernel: one dispatch.
struct Step {
    pipeline: Arc<CachedPipeline>,
    bind_group: wgpu::BindGroup,
    /// Group 1: the kernel's slice of the offsets buffer (where its operands live).
    offsets: Option<wgpu::BindGroup>,
    workgroups: [u32; 3],
    /// The values it writes (to find when a value is complete: [`Executable::ready_after`]).
    writes: Vec<NodeId>,
}

impl Step {
    fn dispatch(&self) -> crate::profile::Dispatch<'_> {
        crate::profile::Dispatch {
            pipeline: &self.pipeline.pipeline,
            bind_group: &self.bind_group,
            offsets: self.offsets.as_ref(),
            workgroups: self.workgroups,
        }
    }
}

impl Executable {
    pub fn new(gpu: &Gpu, plan: &Plan) -> Result<Executable> {
        Self::with_cache(gpu, plan, &mut PipelineCache::new())
    }

    /// As `new`, sharing compiled pipelines with other executables (forward and training plans
    /// of one model have many kernels in common).
    pub fn with_cache(gpu: &Gpu, plan: &Plan, cache: &mut PipelineCache) -> Result<Executable> {
        check_plan(gpu, plan)?;
        let arenas = gpu.checked("allocating arenas", || {
            (plan.memory.arenas.iter().enumerate())
                .map(|(i, a)| {
                    gpu.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(&format!("{}.arena{i}", plan.graph)),
                        size: a.bytes.div_ceil(4).max(1) * 4,
                        usage: wgpu::BufferUsages::STORAGE
                            | wgpu::BufferUsages::COPY_SRC
                            | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                })
                .collect::<Vec<_>>()
        })?;
        let offsets = OffsetsBuffer::new(gpu, plan)?;
        let mut steps = Vec::with_capacity(plan.kernels.len());
        for (i, k) in plan.kernels.iter().enumerate() {
            let pipeline = cache.get(gpu, &k.name, &k.wgsl)?;
            let mut entries = Vec::with_capacity(pipeline.bindings.len());
            for &b in &pipeline.bindings {
                let Some(&arena) = k.arenas.get(b as usize) else {
                    return Err(RuntimeError::Plan(format!(
                        "kernel `{}` declares binding {b} but the plan binds {} arenas",
                        k.name,
                        k.arenas.len()
                    )));
                };
                entries.push(wgpu::BindGroupEntry {
                    binding: b,
                    resource: arenas[arena].as_entire_binding(),
                });
            }
            let bind_group = gpu.checked(&format!("binding kernel `{}`", k.name), || {
                gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(&k.name),
                    layout: &pipeline.layout,
                    entries: &entries,
                })
            })?;
            let offsets = match &pipeline.offsets_layout {
                Some(layout) => Some(offsets.bind_group(gpu, i, &k.name, layout)?),
                None => None,
            };
            steps.push(Step {
                pipeline,
                bind_group,
                offsets,
                workgroups: k.workgroups,
                writes: k.writes.clone(),
            });
        }
        let exe = Executable {
            gpu: gpu.clone(),
            graph: plan.graph.clone(),
            values: plan.values.clone(),
            outputs: plan.outputs.clone(),
            arenas,
            steps,
            prologue: plan.prologue,
            prologue_due: true.into(),
            split: plan.split,
        };
        // Constants are part of the program: upload them once, with the arenas.
        for (node, data) in &plan.constants {
            if !exe.values[*node].pieces.is_empty() {
                exe.write(*node, data)?;
            }
        }
        Ok(exe)
    }

    /// Where a value lives.
    pub fn value(&self, node: NodeId) -> Result<&ValuePlan> {
        self.values.get(node).ok_or(RuntimeError::NoValue(node))
    }

    /// The plan's outputs by name.
    pub fn outputs(&self) -> &[(String, NodeId)] {
        &self.outputs
    }

    /// The arena buffers, in plan order (for callers that record their own copies).
    pub fn arena_buffers(&self) -> &[wgpu::Buffer] {
        &self.arenas
    }

    /// Write a dense NCHW tensor into the value's pieces. It is on the device before the next `run`.
    pub fn write(&self, node: NodeId, data: &[f32]) -> Result<()> {
        let v = self.materialised(node)?;
        check_len(v, data.len())?;
        let shape = ir::shape4(&v.shape);
        self.gpu.checked(&format!("writing `{}`", v.name), || {
            for p in &v.pieces {
                for r in runs(p, shape) {
                    let bytes = bytemuck::cast_slice(&data[r.src..r.src + r.len]);
                    self.gpu
                        .queue
                        .write_buffer(&self.arenas[p.arena], r.dst * 4, bytes);
                }
            }
        })
    }

    /// Write every parameter of the plan from `weights`, by name, each checked against its
    /// shape (one the plan dropped is checked, not written).
    pub fn write_params(&self, weights: &HashMap<String, Tensor<f32>>) -> Result<()> {
        for v in self.values.iter().filter(|v| v.kind == ValueKind::Param) {
            let t = weights
                .get(&v.name)
                .ok_or_else(|| RuntimeError::MissingFeed {
                    name: v.name.clone(),
                    shape: v.shape.clone(),
                })?;
            if t.shape != v.shape {
                return Err(RuntimeError::FeedShape {
                    name: v.name.clone(),
                    expected: v.shape.clone(),
                    found: t.shape.clone(),
                });
            }
            if !v.pieces.is_empty() {
                self.write(v.node, &t.data)?;
            }
        }
        Ok(())
    }

    /// Run every kernel once, in plan order, and wait for the device to finish.
    pub fn run(&self) -> Result<()> {
        let context = format!("running graph `{}`", self.graph);
        self.gpu.checked(&context, || {
            let mut enc = self.gpu.device.create_command_encoder(&Default::default());
            self.record(&mut enc);
            self.gpu.queue.submit([enc.finish()]);
        })?;
        self.gpu.wait(&context)
    }

    /// Record every kernel once, in plan order, as one compute pass (wgpu puts the barriers
    /// between dependent dispatches itself). Callers that chain several graphs into one submit
    /// (a training step) record them into one encoder.
    pub fn record(&self, enc: &mut wgpu::CommandEncoder) {
        self.record_first(enc);
        self.record_second(enc);
    }

    /// Record the plan's first phase (`compiler::Plan::split`): the kernels that read none of its
    /// late sources, which the caller may write after this and before [`Executable::record_second`].
    pub fn record_first(&self, enc: &mut wgpu::CommandEncoder) {
        self.record_part(enc, 0..self.split);
    }

    /// Record the rest of the plan, after [`Executable::record_first`].
    pub fn record_second(&self, enc: &mut wgpu::CommandEncoder) {
        self.record_part(enc, self.split..self.steps.len());
    }

    /// Record the kernels of `range` (plan indices); a range from 0 starts with the prologue only
    /// when it is due, so later ranges must start at or after the prologue's end. Consecutive
    /// ranges record the plan in pieces that a caller can submit one by one (a data-parallel step
    /// reads gradients back as soon as they are complete).
    pub fn record_part(&self, enc: &mut wgpu::CommandEncoder, range: std::ops::Range<usize>) {
        let mut start = range.start;
        if start == 0 && !self.prologue_due.swap(false, Ordering::Relaxed) {
            start = self.prologue;
        }
        if start < range.end {
            self.record_steps(enc, start..range.end.min(self.steps.len()));
        }
    }

    /// Kernels in the plan.
    pub fn kernels(&self) -> usize {
        self.steps.len()
    }

    /// Where the plan's second phase starts (`compiler::Plan::split`).
    pub fn split(&self) -> usize {
        self.split
    }

    /// How many of the plan's kernels must run before `node` holds its final value: one past the
    /// last kernel that writes any of its memory (through the value itself, a concat slice of it
    /// or a view), 0 for a value no kernel writes.
    pub fn ready_after(&self, node: NodeId) -> Result<usize> {
        let spans = |v: &ValuePlan| {
            let shape = ir::shape4(&v.shape);
            (v.pieces.iter())
                .map(|p| {
                    let (first, len) = span(p, shape);
                    (p.arena, first, first + len)
                })
                .collect::<Vec<_>>()
        };
        let mine = spans(self.value(node)?);
        let overlaps = |w: NodeId| {
            (self.values.get(w).map(spans).unwrap_or_default().iter())
                .any(|&(a, s, e)| mine.iter().any(|&(b, t, f)| a == b && s < f && t < e))
        };
        Ok((self.steps.iter())
            .rposition(|s| s.writes.iter().any(|&w| overlaps(w)))
            .map_or(0, |i| i + 1))
    }

    /// One compute pass: the kernels of `range`.
    fn record_steps(&self, enc: &mut wgpu::CommandEncoder, range: std::ops::Range<usize>) {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(&self.graph),
            timestamp_writes: None,
        });
        for s in &self.steps[range] {
            crate::profile::dispatch(&mut pass, &s.dispatch());
        }
    }

    /// Whether the plan's first phase writes `node` (so it can be read between the phases).
    pub fn first_phase_writes(&self, node: NodeId) -> bool {
        (self.values.get(node)).is_some_and(|v| !v.pieces.is_empty() && v.live.0 < self.split)
            && self.values[node].kind == ValueKind::Computed
    }

    /// Run the prologue again on the next run: a parameter the plan was compiled as frozen
    /// (`compiler::Options::frozen`) has changed.
    pub fn rerun_prologue(&self) {
        self.prologue_due.store(true, Ordering::Relaxed);
    }

    /// Kernels of the plan that run once, before the first run's others.
    pub fn prologue_kernels(&self) -> usize {
        self.prologue
    }

    /// Time the plan: one warm-up run, `repeat` timed runs of the whole plan, then `repeat` runs
    /// timed kernel by kernel (GPU timestamps where the device has them and `host_clock` is false;
    /// see `profile.rs`).
    /// The prologue (run once) runs in the warm-up and is not timed.
    pub fn profile(&self, repeat: usize, host_clock: bool) -> Result<crate::profile::Profile> {
        let dispatches: Vec<crate::profile::Dispatch> = self.steps[self.prologue..]
            .iter()
            .map(Step::dispatch)
            .collect();
        let run = || self.run();
        crate::profile::profile(&self.gpu, &self.graph, &dispatches, run, repeat, host_clock)
    }

    /// Read a value back as a dense NCHW tensor.
    pub fn read(&self, node: NodeId) -> Result<Vec<f32>> {
        let v = self.materialised(node)?;
        let shape = ir::shape4(&v.shape);
        let spans: Vec<(u64, u64)> = v.pieces.iter().map(|p| span(p, shape)).collect();
        let total: u64 = spans.iter().map(|s| s.1).sum();
        let mut out = vec![0f32; ir::numel(&v.shape)];
        if total == 0 {
            return Ok(out);
        }
        let context = format!("reading `{}`", v.name);
        let staging = self.gpu.checked(&context, || {
            let staging = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("irdc.readback"),
                size: total * 4,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = self.gpu.device.create_command_encoder(&Default::default());
            let mut at = 0;
            for (p, &(start, len)) in v.pieces.iter().zip(&spans) {
                enc.copy_buffer_to_buffer(
                    &self.arenas[p.arena],
                    start * 4,
                    &staging,
                    at * 4,
                    len * 4,
                );
                at += len;
            }
            self.gpu.queue.submit([enc.finish()]);
            staging
        })?;
        let mapped: Vec<f32> = self.gpu.map_read(&context, &staging)?;
        let mut base = 0u64;
        for (p, &(start, len)) in v.pieces.iter().zip(&spans) {
            for r in runs(p, shape) {
                let at = (base + r.dst - start) as usize;
                out[r.src..r.src + r.len].copy_from_slice(&mapped[at..at + r.len]);
            }
            base += len;
        }
        Ok(out)
    }

    fn materialised(&self, node: NodeId) -> Result<&ValuePlan> {
        let v = self.value(node)?;
        if v.pieces.is_empty() {
            return Err(RuntimeError::NotMaterialised(v.name.clone()));
        }
        Ok(v)
    }
}

/// Compile `plan`, feed it, run it once and return its outputs in plan order. `feeds` holds the
/// inputs (by input name) and the parameters (by node name); constants that the plan stores in
/// memory (rather than inlining into a kernel) are fed by node name too.
pub fn execute(
    gpu: &Gpu,
    plan: &Plan,
    feeds: &HashMap<String, Tensor<f32>>,
) -> Result<Vec<(String, Tensor<f32>)>> {
    let sources: HashMap<&str, &ValuePlan> = plan
        .values
        .iter()
        .filter(|v| v.kind != ValueKind::Computed)
        .map(|v| (v.name.as_str(), v))
        .collect();
    let mut unknown: Vec<&String> = feeds
        .keys()
        .filter(|k| !sources.contains_key(k.as_str()))
        .collect();
    unknown.sort();
    if let Some(name) = unknown.first() {
        return Err(RuntimeError::UnknownFeed {
            name: name.to_string(),
            graph: plan.graph.clone(),
        });
    }
    let mut writes = Vec::new();
    for v in plan.values.iter().filter(|v| v.kind != ValueKind::Computed) {
        match feeds.get(&v.name) {
            Some(t) if t.shape != v.shape => {
                return Err(RuntimeError::FeedShape {
                    name: v.name.clone(),
                    expected: v.shape.clone(),
                    found: t.shape.clone(),
                })
            }
            Some(t) if !v.pieces.is_empty() => writes.push((v.node, t)),
            Some(_) => {}
            // Constants come with the plan; an input or parameter must be fed.
            None if v.kind == ValueKind::Const => {}
            None => {
                return Err(RuntimeError::MissingFeed {
                    name: v.name.clone(),
                    shape: v.shape.clone(),
                })
            }
        }
    }
    let exe = Executable::new(gpu, plan)?;
    for (node, t) in writes {
        exe.write(node, &t.data)?;
    }
    exe.run()?;
    let mut out = Vec::with_capacity(plan.outputs.len());
    for (name, node) in &plan.outputs {
        let shape = &plan.values[*node].shape;
        out.push((name.clone(), Tensor::new(shape, exe.read(*node)?)));
    }
    Ok(out)
}

mod setup;
#[cfg(test)]
mod tests;
