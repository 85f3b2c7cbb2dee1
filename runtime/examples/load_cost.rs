//! What one load costs the device, by the buffer it reads and how its address varies across
//! lanes: `cargo run --release -p runtime --example load_cost` (on lavapipe, `LP_NUM_THREADS=0`
//! for one core). Each row runs 256 workgroups of 32 invocations, each summing 1024 floats, ten
//! dispatches in one submit (best of 6), and reports nanoseconds per float and invocation.
//!
//! The rows: a storage buffer read a float at a time at addresses that differ by lane (what a
//! GEMM's gathered operand does); the same floats read as vec4s through a second binding of
//! the buffer; a uniform buffer read as vec4s; storage reads whose address every lane shares
//! (from the workgroup id, and from the loop counter alone); and no load, the loop's own cost.
use std::time::Instant;

type Error = Box<dyn std::error::Error + Send + Sync>;

const HEAD: &str = "
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> a4: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> u: array<vec4<f32>, 4096>;
@compute @workgroup_size(32)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>) {
    var s = 0.0;
    for (var i = 0u; i < 256u; i++) {
";

/// (row, the loop body summing four floats into `s`, the bindings it reads besides `out`).
const ROWS: [(&str, &str, &[u32]); 6] = [
    (
        "storage, a float a lane-varying address",
        "let b = (i * 64u + g.x * 4u) & 16383u; s += a[b] + a[b + 1u] + a[b + 2u] + a[b + 3u];",
        &[1],
    ),
    (
        "storage, a vec4 a lane-varying address",
        "let v = a4[(i * 16u + g.x) & 4095u]; s += v.x + v.y + v.z + v.w;",
        &[2],
    ),
    (
        "uniform, a vec4 a lane-varying address",
        "let v = u[(i * 16u + g.x) & 4095u]; s += v.x + v.y + v.z + v.w;",
        &[3],
    ),
    (
        "storage, the workgroup's address",
        "let b = (i * 64u + w.x * 4u) & 16383u; s += a[b] + a[b + 1u] + a[b + 2u] + a[b + 3u];",
        &[1],
    ),
    (
        "storage, the loop counter's address",
        "let b = (i * 64u) & 16383u; s += a[b] + a[b + 1u] + a[b + 2u] + a[b + 3u];",
        &[1],
    ),
    (
        "no load",
        "let b = f32((i * 64u + g.x * 4u) & 16383u); s += b + (b + 1.0) * 0.5 + (b + 2.0) * 0.25 + b * 0.125;",
        &[],
    ),
];

const WORKGROUPS: u32 = 256;

fn main() -> Result<(), Error> {
    let gpu = runtime::Gpu::new()?;
    println!("{}", gpu.describe());
    let device = &gpu.device;
    let buffer = |size, usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("load_cost"),
            size,
            usage,
            mapped_at_creation: false,
        })
    };
    let out = buffer(WORKGROUPS as u64 * 32 * 4, wgpu::BufferUsages::STORAGE);
    let data = buffer(65536, wgpu::BufferUsages::STORAGE);
    let uniform = buffer(65536, wgpu::BufferUsages::UNIFORM);
    let resources = [&out, &data, &data, &uniform];
    println!("ns per float and invocation, best of 6:");
    for (row, body, reads) in ROWS {
        let wgsl = format!("{HEAD}        {body}\n    }}\n    out[g.x] = s;\n}}\n");
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(row),
            source: wgpu::ShaderSource::Wgsl(wgsl.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(row),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        // The derived layout holds only the bindings the body reads.
        let entries: Vec<_> = (std::iter::once(0).chain(reads.iter().copied()))
            .map(|b| wgpu::BindGroupEntry {
                binding: b,
                resource: resources[b as usize].as_entire_binding(),
            })
            .collect();
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(row),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut best = f64::MAX;
        for _ in 0..6 {
            let t = Instant::now();
            let mut enc = device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &group, &[]);
                for _ in 0..10 {
                    pass.dispatch_workgroups(WORKGROUPS, 1, 1);
                }
            }
            gpu.queue.submit([enc.finish()]);
            device.poll(wgpu::PollType::wait_indefinitely())?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        let floats = 10.0 * (WORKGROUPS * 32) as f64 * 1024.0;
        println!("  {row:40} {:6.3}", best / floats * 1e9);
    }
    Ok(())
}
