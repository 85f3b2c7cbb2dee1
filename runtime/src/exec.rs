//! A `Plan` made real on a device: one storage buffer per arena, one pipeline and bind group per
//! kernel, and the three things a caller does with it: write values, run, read values.

use crate::device::Gpu;
use crate::error::{Result, RuntimeError};
use crate::layout::{runs, span};
use crate::pipeline_cache::{CachedPipeline, PipelineCache};
use compiler::{Kernel, Plan, ValuePlan};
use ir::{NodeId, Tensor, ValueKind};
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
    /// The uniform panels of the kernels that have them, and the kernels that fill them.
    panels: Vec<crate::panels::PanelBuffer>,
    /// The first `prologue` steps compute values of frozen parameters (`compiler::Plan::prologue`).
    prologue: usize,
    /// Whether they still have to run: on the first run, and after [`Executable::rerun_prologue`].
    prologue_due: std::sync::atomic::AtomicBool,
}

/// One kernel: one dispatch, or one per block of rows and group where it has uniform panels.
struct Step {
    pipeline: Arc<CachedPipeline>,
    bind_group: wgpu::BindGroup,
    /// Group 1: the kernel's slice of the offsets buffer (where its operands live).
    offsets: Option<wgpu::BindGroup>,
    /// Group 2 of each dispatch, one per block of rows and group, for a kernel with uniform panels
    /// (`compiler::Panels`); empty: one dispatch without.
    panels: Vec<wgpu::BindGroup>,
    workgroups: [u32; 3],
}

impl Step {
    fn dispatch(&self) -> crate::profile::Dispatch<'_> {
        crate::profile::Dispatch {
            pipeline: &self.pipeline.pipeline,
            bind_group: &self.bind_group,
            offsets: self.offsets.as_ref(),
            panels: &self.panels,
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
        // One panel buffer per weight, shared by the kernels that read it (packed once a run).
        let mut panel_buffers: Vec<crate::panels::PanelBuffer> = Vec::new();
        let mut panel_of: HashMap<compiler::Panels, usize> = HashMap::new();
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
            let panels = match (&k.panels, &pipeline.panels_layout) {
                (Some(p), Some(layout)) => {
                    let at = match panel_of.get(p) {
                        Some(&at) => at,
                        None => {
                            let arena = &arenas[p.arena];
                            let b = crate::panels::PanelBuffer::new(gpu, cache, &k.name, p, arena)?;
                            panel_buffers.push(b);
                            panel_of.insert(p.clone(), panel_buffers.len() - 1);
                            panel_buffers.len() - 1
                        }
                    };
                    panel_buffers[at].bind_groups(gpu, &k.name, layout)?
                }
                (None, None) => vec![],
                _ => {
                    return Err(RuntimeError::Plan(format!(
                        "kernel `{}`: its plan and its WGSL disagree on uniform panels",
                        k.name
                    )))
                }
            };
            steps.push(Step {
                pipeline,
                bind_group,
                offsets,
                panels,
                workgroups: k.workgroups,
            });
        }
        let exe = Executable {
            gpu: gpu.clone(),
            graph: plan.graph.clone(),
            values: plan.values.clone(),
            outputs: plan.outputs.clone(),
            arenas,
            steps,
            panels: panel_buffers,
            prologue: plan.prologue,
            prologue_due: true.into(),
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
    /// Panels are packed first: they hold weights, which no kernel of the plan writes.
    pub fn record(&self, enc: &mut wgpu::CommandEncoder) {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(&self.graph),
            timestamp_writes: None,
        });
        for p in &self.panels {
            p.record_fill(&mut pass);
        }
        let due = self.prologue_due.swap(false, Ordering::Relaxed);
        let first = if due { 0 } else { self.prologue };
        for s in &self.steps[first..] {
            crate::profile::dispatch(&mut pass, &s.dispatch());
        }
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

/// Every kernel's operand offsets (`compiler::Kernel::offsets`) in one uniform buffer, each
/// kernel's at an offset the device can bind (its uniform offset alignment), padded to whole
/// 16-byte elements as the kernels declare them.
struct OffsetsBuffer {
    buffer: wgpu::Buffer,
    /// Byte range of each kernel's record.
    records: Vec<(u64, u64)>,
}

impl OffsetsBuffer {
    fn new(gpu: &Gpu, plan: &Plan) -> Result<OffsetsBuffer> {
        use wgpu::util::DeviceExt;
        let align = gpu.device.limits().min_uniform_buffer_offset_alignment as usize;
        let mut data: Vec<u32> = Vec::new();
        let mut records = Vec::with_capacity(plan.kernels.len());
        for k in &plan.kernels {
            let start = (data.len() * 4).next_multiple_of(align);
            data.resize(start / 4, 0);
            data.extend(&k.offsets);
            let len = Kernel::offsets_elements(k.offsets.len()) * 4;
            data.resize(start / 4 + len, 0);
            records.push((start as u64, len as u64 * 4));
        }
        data.resize(data.len().max(4), 0);
        let buffer = gpu.checked("uploading kernel offsets", || {
            (gpu.device).create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(&format!("{}.offsets", plan.graph)),
                contents: bytemuck::cast_slice(&data),
                usage: wgpu::BufferUsages::UNIFORM,
            })
        })?;
        Ok(OffsetsBuffer { buffer, records })
    }

    fn bind_group(
        &self,
        gpu: &Gpu,
        kernel: usize,
        name: &str,
        layout: &wgpu::BindGroupLayout,
    ) -> Result<wgpu::BindGroup> {
        let (offset, size) = self.records[kernel];
        gpu.checked(&format!("binding the offsets of kernel `{name}`"), || {
            gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(name),
                layout,
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &self.buffer,
                        offset,
                        size: std::num::NonZeroU64::new(size),
                    }),
                }],
            })
        })
    }
}

fn check_len(v: &ValuePlan, found: usize) -> Result<()> {
    let expected = ir::numel(&v.shape);
    if found != expected {
        return Err(RuntimeError::DataLength {
            name: v.name.clone(),
            shape: v.shape.clone(),
            expected,
            found,
        });
    }
    Ok(())
}

/// Everything the device would otherwise reject later, or that would index out of bounds,
/// said in the plan's own terms.
fn check_plan(gpu: &Gpu, plan: &Plan) -> Result<()> {
    let bad = |m: String| Err(RuntimeError::Plan(m));
    let max_binding = gpu.target().max_binding_bytes;
    for (i, a) in plan.memory.arenas.iter().enumerate() {
        if a.bytes > max_binding {
            return bad(format!(
                "arena {i} has {} bytes, more than this device binds ({max_binding})",
                a.bytes
            ));
        }
    }
    let n_arenas = plan.memory.arenas.len();
    for (i, v) in plan.values.iter().enumerate() {
        if v.node != i {
            return bad(format!(
                "value `{}` is entry {i} of the plan but says it is node {}",
                v.name, v.node
            ));
        }
        let shape = ir::shape4(&v.shape);
        let mut next_channel = 0;
        for p in &v.pieces {
            if p.arena >= n_arenas {
                return bad(format!(
                    "value `{}` lives in arena {} of {n_arenas}",
                    v.name, p.arena
                ));
            }
            if p.c0 != next_channel || p.c1 <= p.c0 || p.c1 > shape[1] {
                return bad(format!(
                    "value `{}` of shape {:?}: pieces do not cover its channels in order (piece {}..{})",
                    v.name, v.shape, p.c0, p.c1
                ));
            }
            next_channel = p.c1;
            let (start, len) = span(p, shape);
            if (start + len) * 4 > plan.memory.arenas[p.arena].bytes {
                return bad(format!(
                    "value `{}` (channels {}..{}) ends at byte {}, past the end of arena {} ({} bytes)",
                    v.name,
                    p.c0,
                    p.c1,
                    (start + len) * 4,
                    p.arena,
                    plan.memory.arenas[p.arena].bytes
                ));
            }
        }
        if !v.pieces.is_empty() && next_channel != shape[1] {
            return bad(format!(
                "value `{}` of shape {:?}: pieces cover channels 0..{next_channel}",
                v.name, v.shape
            ));
        }
    }
    let max_wg = gpu.limits.max_compute_workgroups_per_dimension;
    for k in &plan.kernels {
        if let Some(&a) = k.arenas.iter().find(|&&a| a >= n_arenas) {
            return bad(format!("kernel `{}` binds arena {a} of {n_arenas}", k.name));
        }
        if let Some(p) = &k.panels {
            let end = (p.offset + p.layout.last_element(p.rows) + 1) * 4;
            if p.arena >= n_arenas || end > plan.memory.arenas[p.arena].bytes {
                return bad(format!(
                    "kernel `{}` packs weight panels from arena {} up to byte {end}, which the plan does not have",
                    k.name, p.arena
                ));
            }
        }
        if k.workgroups.iter().any(|&w| w > max_wg) {
            return bad(format!(
                "kernel `{}` dispatches {:?} workgroups; this device allows {max_wg} per dimension",
                k.name, k.workgroups
            ));
        }
    }
    for (name, node) in &plan.outputs {
        if *node >= plan.values.len() {
            return bad(format!(
                "output `{name}` is node {node}, which the plan does not have"
            ));
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests;
