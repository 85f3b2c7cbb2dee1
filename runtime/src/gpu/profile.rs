//! Timing a compiled plan kernel by kernel (`Executable::profile`, `irdc profile`).
//!
//! With `wgpu::Features::TIMESTAMP_QUERY` on the device, each kernel runs in a compute pass of its
//! own whose beginning and end the GPU stamps: the time is the device's, without the host. Without
//! it, each kernel is its own submit, waited for, and timed on the host ("CPU-timed"): that adds
//! the submit-and-wait latency to every kernel, so small kernels look slower than they are.

use crate::device::Gpu;
use crate::error::Result;
use std::time::Instant;

/// How the kernel times were taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// GPU timestamps at the beginning and end of a pass holding the one dispatch.
    GpuTimestamps,
    /// Host clock around a submit of the one dispatch and the wait for it.
    CpuTimed,
}

impl Timing {
    pub fn describe(self) -> &'static str {
        match self {
            Timing::GpuTimestamps => "GPU timestamps",
            Timing::CpuTimed => "CPU-timed (no timestamp queries: one submit-and-wait per kernel)",
        }
    }
}

/// What `Executable::profile` measured.
#[derive(Debug, Clone)]
pub struct Profile {
    pub timing: Timing,
    /// Seconds of each timed run of the whole plan (one submit, waited for), after one warm-up.
    pub runs_s: Vec<f64>,
    /// Per kernel, in plan order: its seconds in each profiled run.
    pub kernels_s: Vec<Vec<f64>>,
}

/// One dispatch of the plan, borrowed from the executable.
pub(crate) struct Dispatch<'a> {
    pub pipeline: &'a wgpu::ComputePipeline,
    pub bind_group: &'a wgpu::BindGroup,
    pub offsets: Option<&'a wgpu::BindGroup>,
    pub workgroups: [u32; 3],
}

/// wgpu's limit on one query set is 4096 queries: two per kernel.
const KERNELS_PER_QUERY_SET: usize = 2048;

/// A warm-up `run`, `repeat` (at least 1) timed `run`s, then `repeat` runs of `dispatches` timed
/// one by one: with timestamps where the device has them, unless `host_clock`.
pub(crate) fn profile(
    gpu: &Gpu,
    graph: &str,
    dispatches: &[Dispatch],
    run: impl Fn() -> Result<()>,
    repeat: usize,
    host_clock: bool,
) -> Result<Profile> {
    let repeat = repeat.max(1);
    run()?;
    let mut runs_s = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        run()?;
        runs_s.push(t.elapsed().as_secs_f64());
    }
    let timestamps =
        !host_clock && (gpu.device.features()).contains(wgpu::Features::TIMESTAMP_QUERY);
    let mut kernels_s = vec![Vec::with_capacity(repeat); dispatches.len()];
    for _ in 0..repeat {
        let times = if timestamps {
            stamped(gpu, graph, dispatches)?
        } else {
            host_timed(gpu, graph, dispatches)?
        };
        for (k, t) in kernels_s.iter_mut().zip(times) {
            k.push(t);
        }
    }
    Ok(Profile {
        timing: if timestamps {
            Timing::GpuTimestamps
        } else {
            Timing::CpuTimed
        },
        runs_s,
        kernels_s,
    })
}

/// Record one kernel's dispatch.
pub(crate) fn dispatch(pass: &mut wgpu::ComputePass, d: &Dispatch) {
    pass.set_pipeline(d.pipeline);
    pass.set_bind_group(0, d.bind_group, &[]);
    if let Some(o) = d.offsets {
        pass.set_bind_group(1, o, &[]);
    }
    let [x, y, z] = d.workgroups;
    pass.dispatch_workgroups(x, y, z);
}

/// Seconds of each dispatch from GPU timestamps, a query set (and a submit) per 2048 kernels.
fn stamped(gpu: &Gpu, graph: &str, dispatches: &[Dispatch]) -> Result<Vec<f64>> {
    let context = format!("profiling graph `{graph}` with timestamps");
    let ns_per_tick = gpu.queue.get_timestamp_period() as f64;
    let mut seconds = Vec::with_capacity(dispatches.len());
    for chunk in dispatches.chunks(KERNELS_PER_QUERY_SET) {
        let queries = 2 * chunk.len() as u32;
        let bytes = queries as u64 * wgpu::QUERY_SIZE as u64;
        let readback = gpu.checked(&context, || {
            let set = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("irdc.profile"),
                ty: wgpu::QueryType::Timestamp,
                count: queries,
            });
            let buffer = |usage| {
                gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("irdc.profile"),
                    size: bytes,
                    usage,
                    mapped_at_creation: false,
                })
            };
            let resolved = buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC);
            let readback = buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            for (i, d) in chunk.iter().enumerate() {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &set,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    }),
                });
                dispatch(&mut pass, d);
            }
            enc.resolve_query_set(&set, 0..queries, &resolved, 0);
            enc.copy_buffer_to_buffer(&resolved, 0, &readback, 0, bytes);
            gpu.queue.submit([enc.finish()]);
            readback
        })?;
        let ticks = read_u64(gpu, &context, &readback)?;
        for pair in ticks.chunks_exact(2) {
            seconds.push(pair[1].saturating_sub(pair[0]) as f64 * ns_per_tick * 1e-9);
        }
    }
    Ok(seconds)
}

/// Seconds of each dispatch as its own submit, waited for, on the host clock.
fn host_timed(gpu: &Gpu, graph: &str, dispatches: &[Dispatch]) -> Result<Vec<f64>> {
    let context = format!("profiling graph `{graph}`");
    let mut seconds = Vec::with_capacity(dispatches.len());
    for d in dispatches {
        let t = Instant::now();
        gpu.checked(&context, || {
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            dispatch(&mut enc.begin_compute_pass(&Default::default()), d);
            gpu.queue.submit([enc.finish()]);
        })?;
        gpu.wait(&context)?;
        seconds.push(t.elapsed().as_secs_f64());
    }
    Ok(seconds)
}

fn read_u64(gpu: &Gpu, context: &str, buffer: &wgpu::Buffer) -> Result<Vec<u64>> {
    gpu.map_read(context, buffer)
}

/// Seeded U(0, 1) data of `shape` (valid as an image in [-1, 1], as an alpha, as anything a
/// square root reads): what `irdc profile` feeds a graph's input number `index`.
pub fn random_input(shape: &[usize], seed: u64, index: u64) -> ir::Tensor<f32> {
    use rand::Rng;
    let mut rng = crate::data::rng_for(seed, index);
    let data = (0..ir::numel(shape)).map(|_| rng.random::<f32>()).collect();
    ir::Tensor::new(shape, data)
}
