//! What a dispatch costs the device beyond its work, what running k independent small kernels
//! as one dispatch would save, and whether two devices of one process run side by side: `cargo
//! run --release -p runtime --example dispatch_floor [-- DISPATCHES WORK]`. Each row records
//! DISPATCHES dispatches (default 1000) in one compute pass on one read-write buffer, as a plan
//! does, and reports the best of 5 submits, per dispatch and per workgroup. WORK (default 256)
//! is the multiply-adds each invocation makes, so a workgroup of 32 holds about what one of the
//! IRD block's small convs at 64x64 does.
//!
//! The rows: one workgroup a dispatch (a small kernel alone), then the same workgroups k at a
//! time in DISPATCHES / k dispatches (k independent kernels merged, each workgroup branching to
//! its own part), so the difference is the hand-off a merge saves. Last, the first row on two
//! devices at once, each from its own thread. On lavapipe `LP_NUM_THREADS` sets the worker
//! threads (0: every dispatch on the submitting thread, and then two devices are two cores).
use std::time::Instant;

const SHADER: &str = "
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
const WORK: u32 = WORK_Nu;
@compute @workgroup_size(32)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    var s = a[g.x];
    for (var i = 0u; i < WORK; i++) {
        s = fma(s, 0.999, 1.0);
    }
    a[g.x] = s;
}
";

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The shader's pipeline on one device, bound to a buffer of its own.
struct Floor {
    gpu: runtime::Gpu,
    pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
}

impl Floor {
    fn new(work: u32) -> Result<Floor, Error> {
        let gpu = runtime::Gpu::new()?;
        let device = &gpu.device;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("dispatch_floor"),
            source: wgpu::ShaderSource::Wgsl(SHADER.replace("WORK_N", &work.to_string()).into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("dispatch_floor"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dispatch_floor"),
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
        Ok(Floor {
            gpu,
            pipeline,
            group,
        })
    }

    /// Seconds for `count` dispatches of `workgroups` workgroups, submitted and waited for.
    fn submit(&self, count: u32, workgroups: u32) -> Result<f64, Error> {
        let device = &self.gpu.device;
        let t = Instant::now();
        let mut enc = device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for _ in 0..count {
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, &self.group, &[]);
                pass.dispatch_workgroups(workgroups, 1, 1);
            }
        }
        self.gpu.queue.submit([enc.finish()]);
        device.poll(wgpu::PollType::wait_indefinitely())?;
        Ok(t.elapsed().as_secs_f64())
    }

    /// The best of 5 submits, after one that warms up.
    fn best_of_five(&self, count: u32, workgroups: u32) -> Result<f64, Error> {
        self.submit(1, 1)?;
        (0..5).try_fold(f64::MAX, |best, _| {
            Ok(best.min(self.submit(count, workgroups)?))
        })
    }
}

fn main() -> Result<(), Error> {
    let args: Vec<u32> = (std::env::args().skip(1))
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let dispatches = args.first().copied().unwrap_or(1000);
    let work = args.get(1).copied().unwrap_or(256);
    let floor = Floor::new(work)?;
    println!("{}", floor.gpu.describe());
    println!("{dispatches} workgroups of 32 invocations x {work} multiply-adds, best of 5:");
    println!("  kernels a dispatch   dispatches   us a dispatch   us a workgroup");
    for k in [1, 2, 4, 8] {
        let count = dispatches / k;
        let per_dispatch = floor.best_of_five(count, k)? / count as f64 * 1e6;
        println!(
            "  {k:17}   {count:10}   {per_dispatch:13.1}   {:14.1}",
            per_dispatch / k as f64
        );
    }
    let other = Floor::new(work)?;
    let (mine, theirs) = std::thread::scope(|s| {
        let theirs = s.spawn(|| other.best_of_five(dispatches, 1));
        (floor.best_of_five(dispatches, 1), theirs.join())
    });
    let theirs = theirs.map_err(|_| "the second device's thread panicked")?;
    println!(
        "  two devices at once, 1 kernel a dispatch: {:.1} and {:.1} us a dispatch",
        mine? / dispatches as f64 * 1e6,
        theirs? / dispatches as f64 * 1e6
    );
    Ok(())
}
