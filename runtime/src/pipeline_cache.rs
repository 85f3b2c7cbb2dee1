//! Compute pipelines keyed by their WGSL text, so identical kernels (the same conv shape in every
//! block, say) compile once.
//!
//! The bind group layout is read from the shader's own declarations (with naga) rather than
//! derived by wgpu: wgpu's derived layout drops bindings the entry point never touches, and a
//! bind group with one entry too many is then invalid. Declared bindings are what the plan binds.

use crate::device::Gpu;
use crate::error::{Result, RuntimeError};
use std::collections::HashMap;
use std::sync::Arc;

/// A compiled kernel: its pipeline, its layout, and the bindings (of group 0) it declares.
pub struct CachedPipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    /// Binding numbers declared in group 0, ascending.
    pub bindings: Vec<u32>,
}

#[derive(Default)]
pub struct PipelineCache {
    pipelines: HashMap<String, Arc<CachedPipeline>>,
}

impl PipelineCache {
    pub fn new() -> Self {
        Self::default()
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
        let p = Arc::new(compile(gpu, kernel, wgsl)?);
        self.pipelines.insert(wgsl.to_string(), p.clone());
        Ok(p)
    }
}

fn compile(gpu: &Gpu, kernel: &str, wgsl: &str) -> Result<CachedPipeline> {
    let declared = storage_bindings(kernel, wgsl)?;
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
        let module = d.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(kernel),
            source: wgpu::ShaderSource::Wgsl(wgsl.into()),
        });
        let layout = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(kernel),
            entries: &entries,
        });
        let pipeline_layout = d.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        CachedPipeline {
            pipeline,
            layout,
            bindings: declared.iter().map(|b| b.0).collect(),
        }
    })
}

/// The storage buffers the shader declares in group 0: (binding, read-only), ascending.
fn storage_bindings(kernel: &str, wgsl: &str) -> Result<Vec<(u32, bool)>> {
    let module = naga::front::wgsl::parse_str(wgsl).map_err(|e| RuntimeError::Shader {
        kernel: kernel.into(),
        message: e.emit_to_string(wgsl),
    })?;
    let mut out = Vec::new();
    for (_, g) in module.global_variables.iter() {
        let (Some(rb), naga::AddressSpace::Storage { access }) = (&g.binding, g.space) else {
            continue;
        };
        if rb.group != 0 {
            return Err(RuntimeError::Plan(format!(
                "kernel `{kernel}` binds group {}; irdc binds group 0 only",
                rb.group
            )));
        }
        out.push((rb.binding, !access.contains(naga::StorageAccess::STORE)));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_declared_bindings_with_their_access() {
        let src = "@group(0) @binding(1) var<storage, read> a: array<f32>;\n\
                   @group(0) @binding(0) var<storage, read_write> b: array<f32>;\n\
                   @compute @workgroup_size(1) fn main() { b[0] = 1.0; }";
        assert_eq!(
            storage_bindings("k", src).unwrap(),
            vec![(0, false), (1, true)]
        );
        let err = storage_bindings("k", "fn main( {").unwrap_err().to_string();
        assert!(err.starts_with("kernel `k`: WGSL does not parse:"), "{err}");
    }
}
