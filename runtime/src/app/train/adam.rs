//! Adam on the GPU (`shaders/adam.wgsl`) over a [`ParamSet`], bias-corrected as PyTorch's
//! `torch.optim.Adam` does it; and the same update on the CPU, the oracle of the tests.

use super::params::ParamSet;
use crate::device::Gpu;
use crate::error::{Result, RuntimeError};
use crate::pipeline_cache::{CachedPipeline, PipelineCache};
use ir::front::AdamSpec;
use std::sync::Arc;
use wgpu::util::DeviceExt;

const ADAM: &str = include_str!("../../../../shaders/adam.wgsl");
const WG: usize = 256;
/// Floats per update in the kernel's scalars buffer.
const SCALARS: usize = 7;

/// The per-step scalars of the kernel (see the shader's header) for step `t` (1-based) at
/// learning rate `lr`: computed in f64 and rounded to f32, as PyTorch's Python-float scalars are.
pub fn scalars(a: &AdamSpec, lr: f64, t: u64, len: usize) -> [f32; SCALARS] {
    let bc1 = 1.0 - a.beta1.powf(t as f64);
    let bc2 = 1.0 - a.beta2.powf(t as f64);
    [
        (1.0 - a.beta1) as f32,
        a.beta2 as f32,
        (1.0 - a.beta2) as f32,
        (lr / bc1) as f32,
        bc2.sqrt() as f32,
        a.eps as f32,
        f32::from_bits(len as u32),
    ]
}

/// The CPU Adam: one step over flat slices, in the shader's order of operations.
pub fn adam_cpu(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], s: &[f32; 7]) {
    let lerp = |a: f32, b: f32, w: f32| {
        if w < 0.5 {
            a + w * (b - a)
        } else {
            b - (b - a) * (1.0 - w)
        }
    };
    for i in 0..p.len() {
        m[i] = lerp(m[i], g[i], s[0]);
        v[i] = v[i] * s[1] + g[i] * g[i] * s[2];
        let denom = v[i].sqrt() / s[4] + s[5];
        p[i] -= s[3] * (m[i] / denom);
    }
}

/// The Adam kernel bound to one network's buffers.
pub struct GpuAdam {
    pipeline: Arc<CachedPipeline>,
    bind_group: wgpu::BindGroup,
    /// The scalars the kernel reads (7 floats).
    scalars: wgpu::Buffer,
    /// One set of scalars per update of a submit: a step records several updates (one per critic
    /// step) in one command buffer, and a queue write would land before all of them, so each
    /// update copies its own slot into `scalars` in command order.
    slots: wgpu::Buffer,
    max_slots: usize,
    workgroups: [u32; 3],
    len: usize,
}

impl GpuAdam {
    /// Adam over `set`, for up to `max_slots` updates per submit.
    pub fn new(
        gpu: &Gpu,
        cache: &mut PipelineCache,
        set: &ParamSet,
        max_slots: usize,
    ) -> Result<GpuAdam> {
        let max_slots = max_slots.max(1);
        let Some(o) = &set.opt else {
            return Err(RuntimeError::Plan(
                "Adam over a network without moments".into(),
            ));
        };
        if set.len > u32::MAX as usize {
            return Err(RuntimeError::Plan(format!(
                "{} parameters are too many for one Adam dispatch",
                set.len
            )));
        }
        let pipeline = cache.get(gpu, "adam", ADAM)?;
        let groups = set.len.div_ceil(WG).max(1) as u32;
        let max = gpu.limits.max_compute_workgroups_per_dimension.max(1);
        let x = groups.min(max);
        let workgroups = [x, groups.div_ceil(x), 1];
        gpu.checked("binding the Adam kernel", || {
            let scalars = gpu
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("adam.scalars"),
                    contents: bytemuck::cast_slice(&[0f32; SCALARS]),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                });
            let slots = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("adam.slots"),
                size: (max_slots * SCALARS * 4) as u64,
                usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let buffers = [&set.p, &o.m, &o.v, &o.g, &scalars];
            let entries: Vec<wgpu::BindGroupEntry> = (pipeline.bindings.iter().zip(buffers))
                .map(|(&binding, b)| wgpu::BindGroupEntry {
                    binding,
                    resource: b.as_entire_binding(),
                })
                .collect();
            let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("adam"),
                layout: &pipeline.layout,
                entries: &entries,
            });
            GpuAdam {
                pipeline: pipeline.clone(),
                bind_group,
                scalars,
                slots,
                max_slots,
                workgroups,
                len: set.len,
            }
        })
    }

    /// Write the scalars of this submit's updates, `(lr, t)` per slot, through the queue (they
    /// land before the submit's commands run).
    pub fn stage(&self, gpu: &Gpu, a: &AdamSpec, updates: &[(f64, u64)]) -> Result<()> {
        if updates.len() > self.max_slots {
            return Err(RuntimeError::Plan(format!(
                "{} Adam updates in one submit; this optimiser was made for {}",
                updates.len(),
                self.max_slots
            )));
        }
        let s: Vec<f32> = (updates.iter())
            .flat_map(|&(lr, t)| scalars(a, lr, t, self.len))
            .collect();
        gpu.queue
            .write_buffer(&self.slots, 0, bytemuck::cast_slice(&s));
        Ok(())
    }

    /// Record update `slot` of what [`GpuAdam::stage`] wrote.
    pub fn record(&self, enc: &mut wgpu::CommandEncoder, slot: usize) {
        if self.len == 0 {
            return;
        }
        let bytes = (SCALARS * 4) as u64;
        enc.copy_buffer_to_buffer(&self.slots, slot as u64 * bytes, &self.scalars, 0, bytes);
        dispatch_once(
            enc,
            "adam",
            &self.pipeline.pipeline,
            &self.bind_group,
            self.workgroups,
        );
    }
}

/// One dispatch of a flat-buffer kernel (Adam's, the moving average's) in a pass of its own.
pub(super) fn dispatch_once(
    enc: &mut wgpu::CommandEncoder,
    label: &str,
    pipeline: &wgpu::ComputePipeline,
    bind_group: &wgpu::BindGroup,
    [x, y, z]: [u32; 3],
) {
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some(label),
        timestamp_writes: None,
    });
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bind_group, &[]);
    pass.dispatch_workgroups(x, y, z);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::params::{ParamSet, Which};
    use ir::Tensor;
    use rand::{Rng, SeedableRng};

    #[test]
    fn gpu_adam_equals_cpu_adam_over_several_steps() {
        let gpu = Gpu::new().unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut draw = |n: usize, s: f32| {
            (0..n)
                .map(|_| rng.random_range(-s..s))
                .collect::<Vec<f32>>()
        };
        // Two tensors, 700 elements: more than two workgroups, not a multiple of 256.
        let params = vec![
            (
                "a.weight".to_string(),
                Tensor::new(&[5, 4, 5, 5], draw(500, 1.0)),
            ),
            ("a.bias".to_string(), Tensor::new(&[200], draw(200, 1.0))),
        ];
        let set = ParamSet::new(&gpu, "t", &params, true).unwrap();
        let mut cache = PipelineCache::new();
        let adam = GpuAdam::new(&gpu, &mut cache, &set, 2).unwrap();
        let spec = AdamSpec {
            lr: 1e-2,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut p: Vec<f32> = params.iter().flat_map(|(_, t)| t.data.clone()).collect();
        let (mut m, mut v) = (vec![0f32; 700], vec![0f32; 700]);
        for t in 1..=4u64 {
            let g = draw(700, 3.0);
            let lr = 1e-2 / t as f64;
            gpu.queue.write_buffer(
                set.buffer(Which::Grad).unwrap(),
                0,
                bytemuck::cast_slice(&g),
            );
            // Two updates with the same gradient in one submit, each with its own scalars.
            let t2 = t + 10;
            adam.stage(&gpu, &spec, &[(lr, t), (lr * 0.5, t2)]).unwrap();
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            adam.record(&mut enc, 0);
            adam.record(&mut enc, 1);
            gpu.queue.submit([enc.finish()]);
            adam_cpu(&mut p, &mut m, &mut v, &g, &scalars(&spec, lr, t, 700));
            adam_cpu(
                &mut p,
                &mut m,
                &mut v,
                &g,
                &scalars(&spec, lr * 0.5, t2, 700),
            );
        }
        assert!(adam.stage(&gpu, &spec, &[(1.0, 1); 3]).is_err());
        let flat = |w| -> Vec<f32> {
            set.read(&gpu, w, "")
                .unwrap()
                .into_iter()
                .flat_map(|(_, t)| t.data)
                .collect()
        };
        for (name, want, got) in [
            ("p", &p, flat(Which::Params)),
            ("m", &m, flat(Which::M)),
            ("v", &v, flat(Which::V)),
        ] {
            for (i, (a, b)) in want.iter().zip(&got).enumerate() {
                // sqrt and division on a GPU may differ from the CPU's in the last bit.
                assert!(
                    (a - b).abs() <= 1e-6 * a.abs().max(1e-3),
                    "{name}[{i}]: cpu {a}, gpu {b}"
                );
            }
        }
        // The update moved every parameter (the test would pass on a no-op kernel otherwise).
        let start: Vec<f32> = params.iter().flat_map(|(_, t)| t.data.clone()).collect();
        assert!(start.iter().zip(&p).all(|(a, b)| a != b));
    }

    #[test]
    fn first_step_moves_by_lr_as_pytorch() {
        // PyTorch: after one step from zero moments, p -= lr * g / (|g| + eps) = lr * sign(g).
        let spec = AdamSpec {
            lr: 0.1,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
        };
        let (mut p, mut m, mut v) = (vec![1.0f32, 1.0], vec![0.0; 2], vec![0.0; 2]);
        adam_cpu(
            &mut p,
            &mut m,
            &mut v,
            &[2.0, -0.5],
            &scalars(&spec, 0.1, 1, 2),
        );
        assert!(
            (p[0] - 0.9).abs() < 1e-6 && (p[1] - 1.1).abs() < 1e-6,
            "{p:?}"
        );
    }
}
