//! An exponential moving average of the generator's weights on the GPU (`shaders/ema.wgsl`):
//! `e = lerp(e, p, 1 - decay)` over the flat parameter buffer, one dispatch after each generator
//! update, recorded in the step's command buffer. It starts as a copy of the initial weights.
//! Validation, samples, `irdc deblur` and `irdc eval` use it when the training section has `ema`.

use super::params::ParamSet;
use crate::device::Gpu;
use crate::error::{Result, RuntimeError};
use crate::pipeline_cache::{CachedPipeline, PipelineCache};
use std::sync::Arc;
use wgpu::util::DeviceExt;

const EMA: &str = include_str!("../../../../shaders/ema.wgsl");
const WG: usize = 256;

/// The kernel's two scalars (see the shader): `1 - decay` rounded to f32, and the length.
pub fn scalars(decay: f64, len: usize) -> [f32; 2] {
    [(1.0 - decay) as f32, f32::from_bits(len as u32)]
}

/// The CPU update, in the shader's order of operations (the oracle of the tests).
pub fn ema_cpu(e: &mut [f32], p: &[f32], s: &[f32; 2]) {
    let w = s[0];
    for (e, &p) in e.iter_mut().zip(p) {
        *e = if w < 0.5 {
            *e + w * (p - *e)
        } else {
            p - (p - *e) * (1.0 - w)
        };
    }
}

/// The averaged weights of one network (the same layout as its [`ParamSet`]) and the kernel.
pub struct GpuEma {
    pub decay: f64,
    /// The averaged weights, laid out as the network's `p`.
    pub e: wgpu::Buffer,
    pipeline: Arc<CachedPipeline>,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
    len: usize,
}

impl GpuEma {
    /// An average of `set`'s weights with `decay`, starting from their current values.
    pub fn new(gpu: &Gpu, cache: &mut PipelineCache, set: &ParamSet, decay: f64) -> Result<GpuEma> {
        if set.len > u32::MAX as usize {
            return Err(RuntimeError::Plan(format!(
                "{} parameters are too many for one EMA dispatch",
                set.len
            )));
        }
        let pipeline = cache.get(gpu, "ema", EMA)?;
        let groups = set.len.div_ceil(WG).max(1) as u32;
        let max = gpu.limits.max_compute_workgroups_per_dimension.max(1);
        let x = groups.min(max);
        let workgroups = [x, groups.div_ceil(x), 1];
        gpu.checked("binding the EMA kernel", || {
            let bytes = (set.len.max(1) * 4) as u64;
            let e = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("ema"),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            enc.copy_buffer_to_buffer(&set.p, 0, &e, 0, bytes);
            gpu.queue.submit([enc.finish()]);
            let s = gpu
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("ema.scalars"),
                    contents: bytemuck::cast_slice(&scalars(decay, set.len)),
                    usage: wgpu::BufferUsages::STORAGE,
                });
            let buffers = [&set.p, &e, &s];
            let entries: Vec<wgpu::BindGroupEntry> = (pipeline.bindings.iter().zip(buffers))
                .map(|(&binding, b)| wgpu::BindGroupEntry {
                    binding,
                    resource: b.as_entire_binding(),
                })
                .collect();
            let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("ema"),
                layout: &pipeline.layout,
                entries: &entries,
            });
            GpuEma {
                decay,
                e,
                pipeline: pipeline.clone(),
                bind_group,
                workgroups,
                len: set.len,
            }
        })
    }

    /// Record one update of the average towards the network's current weights.
    pub fn record(&self, enc: &mut wgpu::CommandEncoder) {
        if self.len == 0 {
            return;
        }
        super::adam::dispatch_once(
            enc,
            "ema",
            &self.pipeline.pipeline,
            &self.bind_group,
            self.workgroups,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::params::{read_buffer, Which};
    use ir::Tensor;

    #[test]
    fn gpu_ema_equals_cpu_ema() {
        let gpu = Gpu::new().unwrap();
        // 600 elements: more than two workgroups, not a multiple of 256.
        let start: Vec<f32> = (0..600).map(|i| (i as f32 * 0.37).sin()).collect();
        let params = vec![("w".to_string(), Tensor::new(&[600], start.clone()))];
        let set = ParamSet::new(&gpu, "t", &params, true).unwrap();
        let mut cache = PipelineCache::new();
        for decay in [0.999, 0.3] {
            let ema = GpuEma::new(&gpu, &mut cache, &set, decay).unwrap();
            let mut want = start.clone();
            for t in 0..3 {
                let p: Vec<f32> = (0..600)
                    .map(|i| ((i + 7 * t) as f32 * 0.11).cos())
                    .collect();
                gpu.queue.write_buffer(
                    set.buffer(Which::Params).unwrap(),
                    0,
                    bytemuck::cast_slice(&p),
                );
                let mut enc = gpu.device.create_command_encoder(&Default::default());
                ema.record(&mut enc);
                gpu.queue.submit([enc.finish()]);
                ema_cpu(&mut want, &p, &scalars(decay, 600));
            }
            let got = read_buffer(&gpu, &ema.e, 600).unwrap();
            // A GPU may fuse a multiply and an add: the last bit may differ from the CPU's.
            for (i, (a, b)) in want.iter().zip(&got).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-6,
                    "decay {decay}, [{i}]: cpu {a}, gpu {b}"
                );
            }
            assert_ne!(got, start);
            gpu.queue
                .write_buffer(&set.p, 0, bytemuck::cast_slice(&start));
        }
    }
}
