//! Compute pipelines keyed by their WGSL text, so identical kernels (the same conv shape in every
//! block, say) compile once.
//!
//! Where the adapter has `wgpu::Features::PIPELINE_CACHE` (Vulkan), the driver's compiled code
//! also persists across runs: a `wgpu::PipelineCache` starts from the file of this adapter in the
//! cache directory (`autotune::cache_dir`) and is written back, atomically, when the
//! `PipelineCache` is dropped (or `save`d) after compiling new pipelines, so a second start of
//! the same model skips the driver's shader compiler (lavapipe: LLVM).
//!
//! The bind group layout is read from the shader's own declarations (with naga) rather than
//! derived by wgpu: wgpu's derived layout drops bindings the entry point never touches, and a
//! bind group with one entry too many is then invalid. Declared bindings are what the plan binds.

use crate::device::Gpu;
use crate::error::{Result, RuntimeError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A compiled kernel: its pipeline, its layout, and the bindings (of group 0) it declares.
pub struct CachedPipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    /// Binding numbers declared in group 0, ascending.
    pub bindings: Vec<u32>,
    /// The layout of group 1, where the kernel declares its operands' offsets uniform
    /// (`compiler::Kernel::offsets`); `None` for a kernel without one.
    pub offsets_layout: Option<wgpu::BindGroupLayout>,
}

pub struct PipelineCache {
    pipelines: HashMap<String, Arc<CachedPipeline>>,
    /// Where the driver's cache lives on disk; `None`: memory only.
    dir: Option<PathBuf>,
    /// Opened on the first compile (it needs the device).
    disk: Option<DiskCache>,
}

/// The driver's pipeline cache and its file.
struct DiskCache {
    cache: wgpu::PipelineCache,
    path: PathBuf,
    /// Bytes read from the file at the start (0: none, or none usable).
    loaded: usize,
    /// New pipelines compiled since the last save.
    dirty: bool,
}

impl Default for PipelineCache {
    fn default() -> Self {
        Self::new()
    }
}

impl PipelineCache {
    /// A cache that persists in the default cache directory (`IRDC_CACHE_DIR`, ...).
    pub fn new() -> Self {
        Self::with_dir(crate::autotune::cache_dir())
    }

    /// A cache that persists in `dir` (`None`: in memory only).
    pub fn with_dir(dir: Option<PathBuf>) -> Self {
        PipelineCache {
            pipelines: HashMap::new(),
            dir,
            disk: None,
        }
    }

    /// Bytes of driver cache this cache started from (0 before the first compile, without a
    /// file, or where the adapter has no pipeline cache).
    pub fn loaded_bytes(&self) -> usize {
        self.disk.as_ref().map_or(0, |d| d.loaded)
    }

    /// Whether this adapter's compiled pipelines can be kept on disk (Vulkan, where wgpu offers
    /// `PIPELINE_CACHE`).
    pub fn persists_on(gpu: &Gpu) -> bool {
        gpu.device
            .features()
            .contains(wgpu::Features::PIPELINE_CACHE)
            && wgpu::util::pipeline_cache_key(&gpu.info).is_some()
    }

    /// Write the driver's cache to disk if pipelines were compiled since the last save.
    pub fn save(&mut self) -> std::io::Result<()> {
        let Some(d) = self.disk.as_mut().filter(|d| d.dirty) else {
            return Ok(());
        };
        d.dirty = false;
        match d.cache.get_data() {
            Some(data) => crate::autotune::write_atomic(&d.path, &data),
            None => Ok(()),
        }
    }

    /// Number of distinct pipelines compiled so far.
    pub fn len(&self) -> usize {
        self.pipelines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pipelines.is_empty()
    }

    /// The pipeline for `wgsl` (entry point `main`), compiling it on first use. `kernel` names it
    /// in errors.
    pub fn get(&mut self, gpu: &Gpu, kernel: &str, wgsl: &str) -> Result<Arc<CachedPipeline>> {
        if let Some(p) = self.pipelines.get(wgsl) {
            return Ok(p.clone());
        }
        if self.disk.is_none() {
            self.disk = self.dir.as_deref().and_then(|dir| open_disk(gpu, dir));
        }
        let cache = self.disk.as_ref().map(|d| &d.cache);
        let p = Arc::new(compile(gpu, kernel, wgsl, cache)?);
        if let Some(d) = &mut self.disk {
            d.dirty = true;
        }
        self.pipelines.insert(wgsl.to_string(), p.clone());
        Ok(p)
    }
}

impl Drop for PipelineCache {
    fn drop(&mut self) {
        if let Err(e) = self.save() {
            eprintln!("warning: cannot write the pipeline cache: {e}");
        }
    }
}

/// The driver cache of this adapter, from its file in `dir` if there is one; `None` where the
/// adapter has no pipeline cache (wgpu names none for its backend, or the feature is off).
fn open_disk(gpu: &Gpu, dir: &Path) -> Option<DiskCache> {
    if !PipelineCache::persists_on(gpu) {
        return None;
    }
    let path = dir.join(wgpu::util::pipeline_cache_key(&gpu.info)?);
    let data = std::fs::read(&path).ok();
    // Safety: wgpu checks the data's header (its magic, the adapter and driver it came from,
    // its length) and, with `fallback`, starts empty from data it cannot use; the driver checks
    // its own header again. The file is only ever written from `get_data` (`save`).
    let cache = gpu
        .checked("opening the pipeline cache", || unsafe {
            gpu.device
                .create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                    label: Some("irdc"),
                    data: data.as_deref(),
                    fallback: true,
                })
        })
        .ok()?;
    let loaded = data.map_or(0, |d| d.len());
    let dirty = false;
    Some(DiskCache {
        cache,
        path,
        loaded,
        dirty,
    })
}

fn compile(
    gpu: &Gpu,
    kernel: &str,
    wgsl: &str,
    cache: Option<&wgpu::PipelineCache>,
) -> Result<CachedPipeline> {
    let Declared {
        storage: declared,
        offsets: has_offsets,
    } = declared_bindings(kernel, wgsl)?;
    let entries: Vec<wgpu::BindGroupLayoutEntry> = declared
        .iter()
        .map(|&(binding, read_only)| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    gpu.checked(&format!("compiling kernel `{kernel}`"), || {
        let d = &gpu.device;
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(kernel),
            source: wgpu::ShaderSource::Wgsl(wgsl.into()),
        };
        // SAFETY: `kernel_checks` keeps every check but loop bounding, whose contract (no
        // infinite loop) irdc's generated kernels keep.
        let module = unsafe { d.create_shader_module_trusted(desc, kernel_checks()) };
        let layout = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(kernel),
            entries: &entries,
        });
        let offsets_layout = has_offsets.then(|| uniform_layout(d, kernel, &[0]));
        let pipeline_layout = d.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel),
            bind_group_layouts: &[Some(&layout), offsets_layout.as_ref()],
            immediate_size: 0,
        });
        let pipeline = d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache,
        });
        CachedPipeline {
            pipeline,
            layout,
            bindings: declared.iter().map(|b| b.0).collect(),
            offsets_layout,
        }
    })
}

/// What wgpu checks in irdc's kernels: everything, bounds included, but loop bounding. Every
/// loop irdc generates counts up to a bound fixed by constants or the sizes uniform, in steps of
/// a positive constant, so none can run forever, and naga's guard against infinite loops (a
/// counter in each iteration of every loop, the GEMMs' k loops included) would only cost
/// (benches/README.md, "Sixteenth session").
fn kernel_checks() -> wgpu::ShaderRuntimeChecks {
    let mut checks = wgpu::ShaderRuntimeChecks::checked();
    checks.force_loop_bounding = false;
    checks
}

/// A bind group layout of uniform buffers at `bindings` (the offsets).
fn uniform_layout(d: &wgpu::Device, kernel: &str, bindings: &[u32]) -> wgpu::BindGroupLayout {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = (bindings.iter())
        .map(|&binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(kernel),
        entries: &entries,
    })
}

/// What a kernel's WGSL declares.
#[derive(Debug, PartialEq)]
struct Declared {
    /// Storage buffers in group 0: (binding, read-only), ascending.
    storage: Vec<(u32, bool)>,
    /// The offsets uniform (group 1, binding 0).
    offsets: bool,
}

fn declared_bindings(kernel: &str, wgsl: &str) -> Result<Declared> {
    let module = naga::front::wgsl::parse_str(wgsl).map_err(|e| RuntimeError::Shader {
        kernel: kernel.into(),
        message: e.emit_to_string(wgsl),
    })?;
    let mut out = Vec::new();
    let mut offsets = false;
    for (_, g) in module.global_variables.iter() {
        let Some(rb) = &g.binding else {
            continue;
        };
        match (rb.group, rb.binding, g.space) {
            (0, b, naga::AddressSpace::Storage { access }) => {
                out.push((b, !access.contains(naga::StorageAccess::STORE)))
            }
            (1, 0, naga::AddressSpace::Uniform) => offsets = true,
            (group, binding, _) => {
                return Err(RuntimeError::Plan(format!(
                    "kernel `{kernel}` binds group {group} binding {binding}; irdc binds storage \
                     buffers in group 0 and the offsets uniform at group 1 binding 0 only"
                )))
            }
        }
    }
    out.sort();
    Ok(Declared {
        storage: out,
        offsets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_declared_bindings_with_their_access() {
        let src = "@group(0) @binding(1) var<storage, read> a: array<f32>;\n\
                   @group(0) @binding(0) var<storage, read_write> b: array<f32>;\n\
                   @compute @workgroup_size(1) fn main() { b[0] = 1.0; }";
        let expected = Declared {
            storage: vec![(0, false), (1, true)],
            offsets: false,
        };
        assert_eq!(declared_bindings("k", src).unwrap(), expected);
        let src = "@group(2) @binding(0) var<uniform> p0: array<vec4<f32>, 2>;\n\
                   @group(0) @binding(0) var<storage, read_write> b: array<f32>;\n\
                   @compute @workgroup_size(1) fn main() { b[0] = p0[0].x; }";
        let err = declared_bindings("k", src).unwrap_err().to_string();
        assert!(err.contains("binds group 2 binding 0"), "{err}");
        let err = declared_bindings("k", "fn main( {")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("kernel `k`: WGSL does not parse:"), "{err}");
    }
}
