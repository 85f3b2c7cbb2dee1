//! What an executable needs before its first kernel: the plan checked against the device
//! (`check_plan`), and the uniform buffer of every kernel's operand offsets.

use crate::device::Gpu;
use crate::error::{Result, RuntimeError};
use crate::layout::span;
use compiler::{Kernel, Plan, ValuePlan};

/// Every kernel's operand offsets (`compiler::Kernel::offsets`) in one uniform buffer, each
/// kernel's at an offset the device can bind (its uniform offset alignment), padded to whole
/// 16-byte elements as the kernels declare them.
pub(super) struct OffsetsBuffer {
    buffer: wgpu::Buffer,
    /// Byte range of each kernel's record.
    records: Vec<(u64, u64)>,
}

impl OffsetsBuffer {
    pub(super) fn new(gpu: &Gpu, plan: &Plan) -> Result<OffsetsBuffer> {
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

    pub(super) fn bind_group(
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

pub(super) fn check_len(v: &ValuePlan, found: usize) -> Result<()> {
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
pub(super) fn check_plan(gpu: &Gpu, plan: &Plan) -> Result<()> {
    let bad = |m: String| Err(RuntimeError::Plan(m));
    let max_binding = gpu.target().limits.max_binding_bytes;
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
