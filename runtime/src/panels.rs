//! The uniform buffers behind a kernel's `compiler::Panels`: one buffer per kernel holding, per
//! block of rows and chunk of columns, one binding (aligned for the device) that starts with a
//! header (the block's first row, written once) followed by the block's rows of that chunk,
//! copied from the arena before every run.

use crate::device::Gpu;
use crate::error::Result;
use compiler::Panels;

pub(crate) struct PanelBuffer {
    buffer: wgpu::Buffer,
    /// Byte offset of binding (block, chunk) `block * chunks + chunk`.
    bindings: Vec<u64>,
    binding_bytes: u64,
    chunks: u32,
    /// Copies from `arena` into `buffer`: (arena byte offset, buffer byte offset, bytes).
    arena: usize,
    copies: Vec<(u64, u64, u64)>,
}

impl PanelBuffer {
    pub fn new(gpu: &Gpu, kernel: &str, p: &Panels) -> Result<PanelBuffer> {
        let align = gpu.device.limits().min_uniform_buffer_offset_alignment as u64;
        let binding_bytes = p.binding_len() as u64 * 4;
        let stride = binding_bytes.next_multiple_of(align);
        let count = (p.blocks() * p.chunks()) as u64;
        let bindings: Vec<u64> = (0..count).map(|i| i * stride).collect();
        let buffer = gpu.checked(
            &format!("allocating the panels of kernel `{kernel}`"),
            || {
                gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(kernel),
                    size: count * stride,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            },
        )?;
        let panels = PanelBuffer {
            buffer,
            bindings,
            binding_bytes,
            chunks: p.chunks(),
            arena: p.arena,
            copies: copies(p, stride),
        };
        gpu.checked(
            &format!("writing the panel headers of kernel `{kernel}`"),
            || {
                for (i, &at) in panels.bindings.iter().enumerate() {
                    let first_row = (i as u32 / panels.chunks) * p.block_rows;
                    let header = [first_row, 0, 0, 0];
                    gpu.queue
                        .write_buffer(&panels.buffer, at, bytemuck::cast_slice(&header));
                }
            },
        )?;
        Ok(panels)
    }

    /// One bind group per block of rows: its chunks at bindings 0, 1, ...
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

    /// Copy the rows in from the arena (the weights may have changed since the last run).
    pub fn record_fill(&self, enc: &mut wgpu::CommandEncoder, arenas: &[wgpu::Buffer]) {
        for &(from, to, bytes) in &self.copies {
            enc.copy_buffer_to_buffer(&arenas[self.arena], from, &self.buffer, to, bytes);
        }
    }
}

/// The copies that fill every binding (`stride` bytes apart), one per row and chunk, merged
/// where both sides run on (a block whose rows fit one chunk is one copy).
fn copies(p: &Panels, stride: u64) -> Vec<(u64, u64, u64)> {
    let mut out: Vec<(u64, u64, u64)> = Vec::new();
    for row in 0..p.rows {
        let (block, i) = (row / p.block_rows, row % p.block_rows);
        for c in 0..p.chunks() {
            let k0 = c * p.chunk_len;
            let len = (p.row_len - k0).min(p.chunk_len) as u64 * 4;
            let from = (p.offset + row as u64 * p.row_len as u64 + k0 as u64) * 4;
            let binding = (block * p.chunks() + c) as u64 * stride;
            let to = binding + (Panels::HEADER + i * p.chunk_len) as u64 * 4;
            match out.last_mut() {
                Some(last) if last.0 + last.2 == from && last.1 + last.2 == to => last.2 += len,
                _ => out.push((from, to, len)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panels(rows: u32, row_len: u32, block_rows: u32, chunk_len: u32) -> Panels {
        Panels {
            arena: 0,
            offset: 10,
            rows,
            row_len,
            block_rows,
            chunk_len,
        }
    }

    #[test]
    fn rows_that_fit_one_chunk_copy_as_one_run_per_block() {
        // 20 rows of 8 in blocks of 16 with chunks of 8: two blocks, one copy each.
        let p = panels(20, 8, 16, 8);
        let stride = 1024;
        assert_eq!(
            copies(&p, stride),
            vec![
                (40, 16, 16 * 8 * 4),
                (40 + 16 * 8 * 4, 1024 + 16, 4 * 8 * 4)
            ]
        );
    }

    #[test]
    fn long_rows_split_into_chunks_one_copy_per_row_and_chunk() {
        // 2 rows of 10 in chunks of 4 (4, 4, 2): row 1 of chunk 0 sits 4 elements after the header.
        let p = panels(2, 10, 2, 4);
        let stride = 256;
        let c = copies(&p, stride);
        assert_eq!(c.len(), 6);
        assert_eq!(c[0], (40, 16, 16));
        assert_eq!(c[2], (40 + 8 * 4, 2 * 256 + 16, 8));
        assert_eq!(c[3], (40 + 10 * 4, 16 + 16, 16));
    }
}
