//! The driver's compile time of WGSL kernels: `cargo run --release -p runtime --example
//! jit_cost -- FILE...` creates each kernel's pipeline and runs one workgroup of it over 64 MiB
//! zeroed buffers, timing both (lavapipe compiles at the first dispatch). Point
//! `MESA_SHADER_CACHE_DIR` at an empty folder, or Mesa's cache answers instead. The kernels'
//! WGSL comes from `irdc plan ... --format json --verbose` (its `wgsl` fields); group 2 (uniform
//! panels) is not bound, so plan with `--cpu`, whose GEMMs broadcast instead. `WORKGROUPS=N`
//! then also times the best of 3 dispatches of N workgroups (the kernel's `workgroups` in the
//! plan), on the zeros: a kernel variant's speed, by hand.
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gpu = runtime::Gpu::new()?;
    println!("{}", gpu.describe());
    let mut cache = runtime::PipelineCache::with_dir(None);
    let workgroups: Option<u32> = match std::env::var("WORKGROUPS") {
        Ok(v) => Some(v.parse()?),
        Err(_) => None,
    };
    for path in std::env::args().skip(1) {
        let wgsl = std::fs::read_to_string(&path)?;
        let t = Instant::now();
        let p = cache.get(&gpu, &path, &wgsl)?;
        let created = t.elapsed().as_secs_f64();
        let storage = |size| {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM,
                mapped_at_creation: false,
            })
        };
        let bufs: Vec<_> = p.bindings.iter().map(|_| storage(64 << 20)).collect();
        let entries: Vec<_> = (p.bindings.iter().zip(&bufs))
            .map(|(&binding, b)| wgpu::BindGroupEntry {
                binding,
                resource: b.as_entire_binding(),
            })
            .collect();
        let g0 = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &p.layout,
            entries: &entries,
        });
        let uni = storage(65536);
        let g1 = p.offsets_layout.as_ref().map(|l| {
            gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: l,
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uni.as_entire_binding(),
                }],
            })
        });
        let run = |workgroups: u32| -> Result<f64, Box<dyn std::error::Error>> {
            let t = Instant::now();
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&p.pipeline);
                pass.set_bind_group(0, &g0, &[]);
                if let Some(g1) = &g1 {
                    pass.set_bind_group(1, g1, &[]);
                }
                pass.dispatch_workgroups(workgroups, 1, 1);
            }
            gpu.queue.submit([enc.finish()]);
            gpu.device.poll(wgpu::PollType::wait_indefinitely())?;
            Ok(t.elapsed().as_secs_f64())
        };
        let first = run(1)?;
        print!("{path}: create {created:.2} s, first dispatch {first:.2} s");
        if let Some(n) = workgroups {
            let times = (0..3).map(|_| run(n)).collect::<Result<Vec<_>, _>>()?;
            let best = times.into_iter().fold(f64::INFINITY, f64::min);
            print!(", {n} workgroups {:.2} ms", best * 1e3);
        }
        println!();
    }
    Ok(())
}
