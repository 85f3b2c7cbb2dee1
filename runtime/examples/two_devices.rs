//! Whether two devices of one process run side by side: `cargo run --release -p runtime
//! --example two_devices [-- DISPATCHES]`. Records DISPATCHES (default 1000) small dispatches on
//! one device and times them alone, then on two devices at once, each from its own thread. On
//! lavapipe with `LP_NUM_THREADS=0` every dispatch runs on the thread that submitted it, with no
//! hand-off to a thread pool, so two devices are two cores: a way to use a CPU's cores on work
//! that splits into independent parts (images of a batch), where lavapipe's pool costs 40 us a
//! dispatch (`dispatch_floor`). Figures in benches/README.md, "Fifteenth session".
use std::time::Instant;

const SHADER: &str = "
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(32)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    var s = a[g.x];
    for (var i = 0u; i < 256u; i++) {
        s = fma(s, 0.999, 1.0);
    }
    a[g.x] = s;
}
";

/// The best of 5 submits of `count` dispatches of two workgroups each on `gpu`, in seconds.
fn best_of_five(gpu: &runtime::Gpu, count: u32) -> Result<f64, String> {
    let device = &gpu.device;
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("two_devices"),
        source: wgpu::ShaderSource::Wgsl(SHADER.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("two_devices"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("two_devices"),
        size: 64 * 32 * 4,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: buffer.as_entire_binding(),
        }],
    });
    let submit = || -> Result<f64, String> {
        let t = Instant::now();
        let mut enc = device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for _ in 0..count {
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &group, &[]);
                pass.dispatch_workgroups(2, 1, 1);
            }
        }
        gpu.queue.submit([enc.finish()]);
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| e.to_string())?;
        Ok(t.elapsed().as_secs_f64())
    };
    submit()?;
    (0..5).try_fold(f64::MAX, |best, _| Ok(best.min(submit()?)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u32 = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 1000,
    };
    let (a, b) = (runtime::Gpu::new()?, runtime::Gpu::new()?);
    println!("{}", a.describe());
    println!("{count} dispatches of 2 workgroups, best of 5:");
    let alone = best_of_five(&a, count)?;
    println!("  one device alone:          {:8.2} ms", alone * 1e3);
    let started = Instant::now();
    let (x, y) = std::thread::scope(|s| {
        let other = s.spawn(|| best_of_five(&b, count));
        let mine = best_of_five(&a, count);
        (
            mine,
            other
                .join()
                .map_err(|_| "the second device's thread panicked".to_string()),
        )
    });
    let (x, y) = (x?, y??);
    println!(
        "  two devices at once:       {:8.2} / {:.2} ms (6 submits each in {:.2} ms)",
        x * 1e3,
        y * 1e3,
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
