//! The uniform buffers behind a kernel's `compiler::Panels`: one buffer per weight and layout
//! (kernels that read the same weight the same way share it) holding, per block of rows, GEMM
//! group and chunk of columns, one binding (aligned for the device) that starts with a header
//! (the block's first row and the group, written once) followed by the block's rows of that
//! chunk, which `shaders/pack_panels.wgsl` fills from the
//! arena at the start of every run.

use crate::device::Gpu;
use crate::error::{Result, RuntimeError};
use crate::pipeline_cache::{CachedPipeline, PipelineCache};
use crate::profile::{dispatch, Dispatch};
use compiler::Panels;
use std::sync::Arc;
use wgpu::util::DeviceExt;

const PACK: &str = include_str!("../../shaders/pack_panels.wgsl");
/// The pack kernel's workgroup size.
const WG: u32 = 256;

pub(crate) struct PanelBuffer {
    buffer: wgpu::Buffer,
    /// Byte offset of binding (block, group, chunk) `(block * groups + group) * chunks + chunk`.
    bindings: Vec<u64>,
    binding_bytes: u64,
    chunks: u32,
    pack: Arc<CachedPipeline>,
    /// Group 0 (arena, panels) and group 1 (the `Panels` record) of the pack kernel.
    pack_groups: (wgpu::BindGroup, wgpu::BindGroup),
    workgroups: [u32; 3],
}

impl PanelBuffer {
    pub fn new(
        gpu: &Gpu,
        cache: &mut PipelineCache,
        kernel: &str,
        p: &Panels,
        arena: &wgpu::Buffer,
    ) -> Result<PanelBuffer> {
        let align = gpu.device.limits().min_uniform_buffer_offset_alignment as u64;
        let binding_bytes = p.binding_len() as u64 * 4;
        let stride = binding_bytes.next_multiple_of(align.max(4));
        let count = (p.dispatches() * p.chunks()) as u64;
        let elements = p.groups as u64 * p.rows as u64 * p.row_len as u64;
        let too_big = |what: &str| {
            RuntimeError::Plan(format!(
                "kernel `{kernel}`: its weight panels' {what} does not fit a u32"
            ))
        };
        let l = &p.layout;
        let record: [u32; 20] = [
            u32::try_from(p.offset).map_err(|_| too_big("arena offset"))?,
            p.rows,
            p.row_len,
            p.block_rows,
            p.chunk_len,
            p.chunks(),
            u32::try_from(stride / 4).map_err(|_| too_big("binding stride"))?,
            Panels::HEADER,
            p.groups,
            l.channels,
            l.kh,
            l.kw,
            l.phase_stride,
            l.strides[0],
            l.strides[1],
            l.strides[2],
            l.strides[3],
            0,
            0,
            0,
        ];
        u32::try_from(elements).map_err(|_| too_big("element count"))?;
        let pack = cache.get(gpu, "pack_panels", PACK)?;
        let groups = elements.div_ceil(WG as u64).max(1) as u32;
        let max = gpu.limits.max_compute_workgroups_per_dimension.max(1);
        let workgroups = [groups.min(max), groups.div_ceil(max), 1];
        let context = format!("allocating the weight panels of kernel `{kernel}`");
        let (buffer, pack_groups) = gpu.checked(&context, || {
            let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(kernel),
                size: count * stride,
                usage: wgpu::BufferUsages::UNIFORM
                    | wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            for i in 0..count {
                let d = i as u32 / p.chunks();
                let header = [(d / p.groups) * p.block_rows, d % p.groups, 0, 0];
                (gpu.queue).write_buffer(&buffer, i * stride, bytemuck::cast_slice(&header));
            }
            let params = (gpu.device).create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(kernel),
                contents: bytemuck::cast_slice(&record),
                usage: wgpu::BufferUsages::UNIFORM,
            });
            let storage = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(kernel),
                layout: &pack.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: arena.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: buffer.as_entire_binding(),
                    },
                ],
            });
            let layout = pack
                .offsets_layout
                .as_ref()
                .expect("pack_panels declares its record");
            let params = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(kernel),
                layout,
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: params.as_entire_binding(),
                }],
            });
            (buffer, (storage, params))
        })?;
        Ok(PanelBuffer {
            buffer,
            bindings: (0..count).map(|i| i * stride).collect(),
            binding_bytes,
            chunks: p.chunks(),
            pack,
            pack_groups,
            workgroups,
        })
    }

    /// One bind group per dispatch (block of rows and group): its chunks at bindings 0, 1, ...
    pub fn bind_groups(
        &self,
        gpu: &Gpu,
        kernel: &str,
        layout: &wgpu::BindGroupLayout,
    ) -> Result<Vec<wgpu::BindGroup>> {
        gpu.checked(&format!("binding the panels of kernel `{kernel}`"), || {
            (self.bindings.chunks(self.chunks as usize))
                .map(|block| {
                    let entries: Vec<wgpu::BindGroupEntry> = (block.iter().enumerate())
                        .map(|(c, &offset)| wgpu::BindGroupEntry {
                            binding: c as u32,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: &self.buffer,
                                offset,
                                size: std::num::NonZeroU64::new(self.binding_bytes),
                            }),
                        })
                        .collect();
                    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(kernel),
                        layout,
                        entries: &entries,
                    })
                })
                .collect()
        })
    }

    /// Pack the rows in from the arena (the weights may have changed since the last run).
    pub fn record_fill(&self, pass: &mut wgpu::ComputePass) {
        let d = Dispatch {
            pipeline: &self.pack.pipeline,
            bind_group: &self.pack_groups.0,
            offsets: Some(&self.pack_groups.1),
            panels: &[],
            workgroups: self.workgroups,
        };
        dispatch(pass, &d);
    }
}
