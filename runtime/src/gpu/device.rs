//! The wgpu device: which adapter (`IRDC_BACKEND`, `IRDC_ADAPTER`, else the most capable one),
//! the adapter's real limits (not wgpu's conservative defaults), and the capture of every GPU
//! error as a `RuntimeError` instead of wgpu's default panic.

use crate::error::{Result, RuntimeError};
use std::sync::{Arc, Mutex};

/// An open device. Cloning is cheap (wgpu handles are reference counted); an `Executable` keeps
/// a clone, so a trainer can hold both side by side.
#[derive(Clone)]
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Errors that escaped every error scope, and why the device was lost, if it was.
    state: Arc<Mutex<State>>,
    /// The conv tiles for this adapter, autotuned (or read from the disk cache) on first use.
    tiles: Arc<crate::autotune::TileState>,
    /// What the convolution GEMMs multiply in ([`Gpu::with_precision`]); f32 unless asked.
    precision: compiler::Precision,
    /// Whether kernels are specialised to sizes or take them as data ([`Gpu::with_sizes`]).
    sizes: compiler::Sizes,
    /// The cooperative matrix shapes the adapter offers (none without the feature).
    coop_matrices: Vec<wgpu::CooperativeMatrixProperties>,
    /// The `IRDC_*` policy switches, read once when the device is opened.
    overrides: compiler::Overrides,
}

#[derive(Default)]
struct State {
    uncaptured: Vec<String>,
    lost: Option<String>,
}

impl Gpu {
    /// Open the adapter chosen by `IRDC_BACKEND` / `IRDC_ADAPTER` (see the crate docs).
    pub fn new() -> Result<Gpu> {
        Self::for_local_rank(0)
    }

    /// [`Gpu::new`] for the `local`-th process on this machine of a data-parallel run: without
    /// `IRDC_ADAPTER`, the `local`-th (modulo their count) of the adapters of the most capable
    /// kind, so the ranks of a node spread over its GPUs.
    pub fn for_local_rank(local: usize) -> Result<Gpu> {
        let backend_var = std::env::var("IRDC_BACKEND").ok();
        let backends = parse_backends(backend_var.as_deref())?;
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let adapters = pollster::block_on(instance.enumerate_adapters(backends));
        if adapters.is_empty() {
            return Err(RuntimeError::NoAdapter {
                searched: format!("{backends:?}"),
            });
        }
        let adapter = match std::env::var("IRDC_ADAPTER") {
            Ok(wanted) => pick_by_name(adapters, &wanted)?,
            Err(_) => most_capable(adapters, local),
        };
        Self::open(adapter)
    }

    fn open(adapter: wgpu::Adapter) -> Result<Gpu> {
        let overrides = compiler::Overrides::from_env().map_err(RuntimeError::Switch)?;
        let info = adapter.get_info();
        if let Some(w) = crate::driver::slow_driver_warning(info.device_type, &info.driver_info) {
            eprintln!("warning: {w}");
        }
        // The adapter's own limits: lavapipe binds 128 MiB, NVIDIA 2 GiB+; wgpu's defaults are
        // far below either.
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("irdc"),
            required_limits: limits.clone(),
            // Per-kernel GPU times for `Executable::profile`, where the adapter has them; the
            // driver's pipeline cache kept across runs (pipeline_cache.rs); subgroups for the
            // direct GEMM's broadcast loads (`Target::subgroup_size`); f16 and cooperative
            // matrices for the f16 precision (`compiler::Precision`). Kernels use the last two
            // only when asked to.
            required_features: adapter.features()
                & (wgpu::Features::TIMESTAMP_QUERY
                    | wgpu::Features::PIPELINE_CACHE
                    | wgpu::Features::SUBGROUP
                    | wgpu::Features::SHADER_F16
                    | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX),
            // SAFETY: wgpu asks us to acknowledge that its experimental features (here
            // cooperative matrices, the only one requested) may have bugs. Kernels use them
            // only at the f16 precision, and `IRDC_COOP_MATRIX=0` turns them off.
            experimental_features: unsafe { wgpu::ExperimentalFeatures::enabled() },
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| {
            RuntimeError::RequestDevice {
                adapter: info.name.clone(),
                message: e.to_string(),
            }
        })?;
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut s) = s.lock() {
                s.uncaptured.push(e.to_string());
            }
        }));
        let s = state.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut s) = s.lock() {
                s.lost = Some(format!("{reason:?}: {message}"));
            }
        });
        let coop_matrices = match device
            .features()
            .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
        {
            true => adapter.cooperative_matrix_properties(),
            false => vec![],
        };
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            state,
            tiles: Default::default(),
            precision: compiler::Precision::F32,
            sizes: compiler::Sizes::Specialised,
            coop_matrices,
            overrides,
        })
    }

    /// This device with its convolution GEMMs at `precision`; f16 needs shader-f16 (an error
    /// saying so otherwise). The conv tiles are tuned anew for it, on first use.
    pub fn with_precision(self, precision: compiler::Precision) -> Result<Gpu> {
        supports(precision, self.device.features(), &self.info.name)?;
        Ok(Gpu {
            precision,
            tiles: Default::default(),
            ..self
        })
    }

    pub fn precision(&self) -> compiler::Precision {
        self.precision
    }

    /// This device with kernels that take sizes as `sizes` says (`compiler::Sizes`).
    pub fn with_sizes(self, sizes: compiler::Sizes) -> Gpu {
        Gpu { sizes, ..self }
    }

    pub fn sizes(&self) -> compiler::Sizes {
        self.sizes
    }

    /// The side of the square cooperative matrices with f16 operands and f32 sums this device
    /// runs (the largest offered), if its workgroups hold a cooperative GEMM's memory; else 0.
    fn coop_matrix_side(&self) -> u32 {
        let room = self.limits.max_compute_workgroup_storage_size
            >= compiler::codegen::COOP_WORKGROUP_BYTES;
        let square_f16 = |p: &&wgpu::CooperativeMatrixProperties| {
            p.m_size == p.n_size
                && p.n_size == p.k_size
                && p.ab_type == wgpu::CooperativeScalarType::F16
                && p.cr_type == wgpu::CooperativeScalarType::F32
        };
        let side = self
            .coop_matrices
            .iter()
            .filter(square_f16)
            .map(|p| p.m_size);
        match room {
            true => side.max().unwrap_or(0),
            false => 0,
        }
    }

    /// One line for a person: `adapter: llvmpipe (...) | Vulkan | Cpu | driver llvmpipe (Mesa ...)`.
    pub fn describe(&self) -> String {
        let i = &self.info;
        let mut line = format!(
            "adapter: {} | {:?} | {:?} | driver {} ({}) | max binding {} MiB",
            i.name,
            i.backend,
            i.device_type,
            i.driver,
            i.driver_info,
            self.limits.max_storage_buffer_binding_size >> 20
        );
        if self.device.features().contains(wgpu::Features::SHADER_F16) {
            line.push_str(" | f16");
        }
        if let side @ 1.. = self.coop_matrix_side() {
            line.push_str(&format!(" | cooperative matrices {side}x{side} f16->f32"));
        }
        if self.precision != compiler::Precision::F32 {
            line.push_str(&format!(" | precision {}", self.precision));
        }
        line
    }

    /// What the compiler plans for on this device, with the conv tiles autotuned for it (the
    /// first call times them, unless cached on disk or `IRDC_AUTOTUNE=0`; see `autotune.rs`).
    pub fn target(&self) -> compiler::Target {
        self.target_for(self.sizes)
    }

    /// [`Gpu::target`] with kernels that take sizes as `sizes` says.
    pub fn target_for(&self, sizes: compiler::Sizes) -> compiler::Target {
        let target = compiler::Target {
            conv_tiles: self.tiles.get(self),
            ..self.limits_target()
        };
        target.with_sizes(sizes)
    }

    /// The target from the adapter's limits alone, with the default conv tiles: the policy of
    /// its kind of device (`compiler::Policy`) with the `IRDC_*` switches read when it opened.
    pub fn limits_target(&self) -> compiler::Target {
        let l = &self.limits;
        let fixed_subgroups = self.device.features().contains(wgpu::Features::SUBGROUP)
            && self.info.subgroup_min_size == self.info.subgroup_max_size;
        let limits = compiler::Limits {
            // A binding can be no larger than the buffer holding it.
            max_binding_bytes: l.max_storage_buffer_binding_size.min(l.max_buffer_size),
            storage_alignment: l.min_storage_buffer_offset_alignment as u64,
            max_workgroups_per_dim: l.max_compute_workgroups_per_dimension,
            max_storage_buffers_per_stage: l.max_storage_buffers_per_shader_stage,
            subgroup_size: if fixed_subgroups {
                self.info.subgroup_min_size
            } else {
                0
            },
            coop_matrix: self.coop_matrix_side(),
        };
        let kind = match self.info.device_type {
            wgpu::DeviceType::Cpu => compiler::DeviceKind::Cpu,
            _ => compiler::DeviceKind::Gpu,
        };
        compiler::Target {
            precision: self.precision,
            ..compiler::Target::new(limits, kind, &self.overrides)
        }
    }

    /// Run `f` (wgpu calls) inside validation, out-of-memory and internal error scopes; an error
    /// any of them caught, or one that escaped them, or a lost device, becomes a `RuntimeError`
    /// saying it happened while `context`.
    pub(crate) fn checked<T>(&self, context: &str, f: impl FnOnce() -> T) -> Result<T> {
        self.check(context)?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        // Scopes pop innermost first.
        let errors = [validation.pop(), internal.pop(), oom.pop()].map(pollster::block_on);
        if let Some(e) = errors.into_iter().flatten().next() {
            return Err(RuntimeError::Gpu {
                context: context.into(),
                message: error_text(&e),
            });
        }
        self.check(context)?;
        Ok(out)
    }

    /// Fail if the device was lost or an error escaped the scopes since the last check.
    pub(crate) fn check(&self, context: &str) -> Result<()> {
        let mut s = self
            .state
            .lock()
            .map_err(|_| RuntimeError::DeviceLost("error state poisoned".into()))?;
        if let Some(lost) = &s.lost {
            return Err(RuntimeError::DeviceLost(lost.clone()));
        }
        if !s.uncaptured.is_empty() {
            let message = std::mem::take(&mut s.uncaptured).join("\n");
            return Err(RuntimeError::Gpu {
                context: context.into(),
                message,
            });
        }
        Ok(())
    }

    /// Block until all submitted work is done.
    /// Map a `MAP_READ` buffer whose copies are already submitted, wait for them, and return
    /// its contents: the one read-back path of the runtime.
    pub(crate) fn map_read<T: bytemuck::Pod>(
        &self,
        context: &str,
        buffer: &wgpu::Buffer,
    ) -> Result<Vec<T>> {
        let (tx, rx) = std::sync::mpsc::channel();
        buffer.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait(context)?;
        rx.recv()
            .map_err(|_| RuntimeError::Map("the map callback never ran".into()))?
            .map_err(|e| RuntimeError::Map(e.to_string()))?;
        self.take_mapped(buffer)
    }

    /// The contents of `buffer`, once its mapping for reading is done; it is unmapped after.
    pub(crate) fn take_mapped<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer) -> Result<Vec<T>> {
        let out = {
            let view = buffer
                .get_mapped_range(..)
                .map_err(|e| RuntimeError::Map(e.to_string()))?;
            bytemuck::cast_slice::<u8, T>(&view).to_vec()
        };
        buffer.unmap();
        Ok(out)
    }

    pub(crate) fn wait(&self, context: &str) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| RuntimeError::Gpu {
                context: context.into(),
                message: e.to_string(),
            })?;
        self.check(context)
    }
}

/// Whether a device with `features` can compute at `precision`, as an error naming `adapter`.
fn supports(precision: compiler::Precision, features: wgpu::Features, adapter: &str) -> Result<()> {
    let f16 = features.contains(wgpu::Features::SHADER_F16);
    match precision {
        compiler::Precision::F16 if !f16 => Err(RuntimeError::Precision {
            precision,
            adapter: adapter.into(),
        }),
        _ => Ok(()),
    }
}

/// wgpu's `Display` of an error is only its top line; the causes say what was wrong.
fn error_text(e: &wgpu::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let line = s.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = s.source();
    }
    text
}

fn parse_backends(var: Option<&str>) -> Result<wgpu::Backends> {
    let Some(v) = var else {
        return Ok(wgpu::Backends::PRIMARY);
    };
    Ok(match v.to_ascii_lowercase().as_str() {
        "vulkan" => wgpu::Backends::VULKAN,
        "metal" => wgpu::Backends::METAL,
        "dx12" => wgpu::Backends::DX12,
        "gl" => wgpu::Backends::GL,
        "all" => wgpu::Backends::all(),
        _ => return Err(RuntimeError::Backend(v.into())),
    })
}

fn pick_by_name(adapters: Vec<wgpu::Adapter>, wanted: &str) -> Result<wgpu::Adapter> {
    let needle = wanted.to_lowercase();
    let found: Vec<String> = adapters.iter().map(|a| label(&a.get_info())).collect();
    adapters
        .into_iter()
        .find(|a| a.get_info().name.to_lowercase().contains(&needle))
        .ok_or(RuntimeError::AdapterNotFound {
            wanted: wanted.into(),
            found,
        })
}

fn label(i: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
}

/// High-performance preference: discrete before integrated before virtual before CPU, and a
/// native backend before GL.
/// The `n`-th (modulo their count) of the adapters of the most capable kind, in the order found.
fn most_capable(mut adapters: Vec<wgpu::Adapter>, n: usize) -> wgpu::Adapter {
    let rank = |a: &wgpu::Adapter| {
        let i = a.get_info();
        let ty = match i.device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Other => 3,
            wgpu::DeviceType::Cpu => 4,
        };
        (ty, i.backend == wgpu::Backend::Gl)
    };
    let best = adapters.iter().map(rank).min();
    adapters.retain(|a| Some(rank(a)) == best);
    let n = n % adapters.len().max(1);
    adapters.swap_remove(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_from_env_value() {
        assert_eq!(parse_backends(None).unwrap(), wgpu::Backends::PRIMARY);
        assert_eq!(
            parse_backends(Some("Vulkan")).unwrap(),
            wgpu::Backends::VULKAN
        );
        assert_eq!(
            parse_backends(Some("cuda")).unwrap_err().to_string(),
            "IRDC_BACKEND=\"cuda\" is not a backend; use one of vulkan, metal, dx12, gl, all"
        );
    }

    #[test]
    fn opens_a_device_with_the_adapters_limits() {
        let gpu = Gpu::new().expect("lavapipe or a GPU");
        assert!(
            gpu.describe().starts_with("adapter: "),
            "{}",
            gpu.describe()
        );
        // Not wgpu's default 128 MiB/8-buffer limits unless the adapter really has them.
        assert_eq!(
            gpu.device.limits().max_storage_buffer_binding_size,
            gpu.limits.max_storage_buffer_binding_size
        );
        assert_eq!(
            gpu.target().limits.max_storage_buffers_per_stage,
            gpu.limits.max_storage_buffers_per_shader_stage
        );
    }

    #[test]
    fn f16_needs_shader_f16() {
        use compiler::Precision::*;
        let none = wgpu::Features::empty();
        assert!(supports(F32, none, "gl").is_ok());
        assert!(supports(F16, wgpu::Features::SHADER_F16, "vk").is_ok());
        assert_eq!(
            supports(F16, none, "llvmpipe").unwrap_err().to_string(),
            "precision f16 needs shader-f16 (wgpu's SHADER_F16), which adapter `llvmpipe` does \
             not offer; use --precision f32"
        );
    }

    #[test]
    fn an_unknown_adapter_name_lists_the_adapters_found() {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
        let first = label(&adapters[0].get_info());
        let err = pick_by_name(adapters, "No-Such-GPU")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "IRDC_ADAPTER=\"No-Such-GPU\" matches no adapter; found: {first}"
            )),
            "{err}"
        );
    }

    #[test]
    fn a_bad_shader_is_an_error_not_a_panic() {
        let gpu = Gpu::new().unwrap();
        let err = gpu
            .checked("creating a test shader", || {
                gpu.device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: None,
                        source: wgpu::ShaderSource::Wgsl("fn main( {".into()),
                    })
            })
            .map(drop)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("GPU error while creating a test shader"),
            "{err}"
        );
    }
}
