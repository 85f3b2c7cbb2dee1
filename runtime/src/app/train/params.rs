//! A network's parameters on the GPU, laid end to end in one flat buffer (and, for a trained
//! network, Adam's two moments and the gradient beside it), and the copies that move them in and
//! out of an executable's arenas each step. Nothing here leaves the GPU but a checkpoint.

use crate::device::Gpu;
use crate::error::{Result, RuntimeError};
use crate::exec::Executable;
use crate::layout::runs;
use ir::{NodeId, Tensor};
use wgpu::util::DeviceExt;

/// One network's parameters: names (`generator.head_conv.weight`), shapes and offsets into the
/// flat buffers, in a fixed order.
pub struct ParamSet {
    pub entries: Vec<Entry>,
    pub len: usize,
    pub p: wgpu::Buffer,
    /// Adam's first and second moments and the gradient; `None` for a constant network (VGG19).
    pub opt: Option<Moments>,
}

pub struct Entry {
    pub name: String,
    pub shape: Vec<usize>,
    /// First element in the flat buffers.
    pub at: usize,
}

pub struct Moments {
    pub m: wgpu::Buffer,
    pub v: wgpu::Buffer,
    pub g: wgpu::Buffer,
}

const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

fn buffer(gpu: &Gpu, label: &str, data: &[f32]) -> wgpu::Buffer {
    // Buffers may not be empty; a network without parameters gets one unused word.
    let data: &[f32] = if data.is_empty() { &[0.0] } else { data };
    gpu.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage: USAGE,
        })
}

impl ParamSet {
    /// Upload `params` (name, tensor); with `trained`, zeroed moments and gradient too.
    pub fn new(
        gpu: &Gpu,
        label: &str,
        params: &[(String, Tensor<f32>)],
        trained: bool,
    ) -> Result<ParamSet> {
        let mut entries = Vec::with_capacity(params.len());
        let mut flat = Vec::new();
        for (name, t) in params {
            entries.push(Entry {
                name: name.clone(),
                shape: t.shape.clone(),
                at: flat.len(),
            });
            flat.extend_from_slice(&t.data);
        }
        let len = flat.len();
        gpu.checked(&format!("uploading the parameters of {label}"), || {
            let zeros = vec![0f32; len];
            ParamSet {
                entries,
                len,
                p: buffer(gpu, label, &flat),
                opt: trained.then(|| Moments {
                    m: buffer(gpu, label, &zeros),
                    v: buffer(gpu, label, &zeros),
                    g: buffer(gpu, label, &zeros),
                }),
            }
        })
    }

    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Replace the contents of `which` (the parameters, or a moment) from named tensors; every
    /// entry must be there with its shape. `prefix` is put before each entry's name to find it.
    pub fn load(
        &self,
        gpu: &Gpu,
        which: Which,
        prefix: &str,
        get: &dyn Fn(&str) -> Option<Tensor<f32>>,
    ) -> std::result::Result<(), String> {
        let buf = self
            .buffer(which)
            .ok_or("a constant network has no moments")?;
        self.load_into(gpu, buf, prefix, get)
    }

    /// [`ParamSet::load`] into any buffer laid out as this set (an average of its weights).
    pub fn load_into(
        &self,
        gpu: &Gpu,
        buf: &wgpu::Buffer,
        prefix: &str,
        get: &dyn Fn(&str) -> Option<Tensor<f32>>,
    ) -> std::result::Result<(), String> {
        let mut flat = Vec::with_capacity(self.len);
        for e in &self.entries {
            let name = format!("{prefix}{}", e.name);
            let t = get(&name).ok_or_else(|| format!("no tensor `{name}`"))?;
            if t.shape != e.shape {
                return Err(format!(
                    "tensor `{name}` has shape {:?}, the model's is {:?}",
                    t.shape, e.shape
                ));
            }
            flat.extend_from_slice(&t.data);
        }
        if !flat.is_empty() {
            gpu.queue.write_buffer(buf, 0, bytemuck::cast_slice(&flat));
        }
        Ok(())
    }

    pub fn buffer(&self, which: Which) -> Option<&wgpu::Buffer> {
        match which {
            Which::Params => Some(&self.p),
            Which::M => self.opt.as_ref().map(|o| &o.m),
            Which::V => self.opt.as_ref().map(|o| &o.v),
            Which::Grad => self.opt.as_ref().map(|o| &o.g),
        }
    }

    /// Read `which` back as named tensors (`prefix` + entry name).
    pub fn read(
        &self,
        gpu: &Gpu,
        which: Which,
        prefix: &str,
    ) -> Result<Vec<(String, Tensor<f32>)>> {
        let buf = self
            .buffer(which)
            .ok_or_else(|| RuntimeError::Plan("a constant network has no moments".into()))?;
        self.read_from(gpu, buf, prefix)
    }

    /// [`ParamSet::read`] from any buffer laid out as this set (an average of its weights).
    pub fn read_from(
        &self,
        gpu: &Gpu,
        buf: &wgpu::Buffer,
        prefix: &str,
    ) -> Result<Vec<(String, Tensor<f32>)>> {
        let flat = read_buffer(gpu, buf, self.len)?;
        Ok(self
            .entries
            .iter()
            .map(|e| {
                let n = ir::numel(&e.shape);
                let data = flat[e.at..e.at + n].to_vec();
                (format!("{prefix}{}", e.name), Tensor::new(&e.shape, data))
            })
            .collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Params,
    M,
    V,
    Grad,
}

/// Read the first `len` floats of a buffer (which must allow COPY_SRC).
pub fn read_buffer(gpu: &Gpu, buf: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let context = "reading training state back";
    let staging = gpu.checked(context, || {
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("irdc.train.readback"),
            size: len as u64 * 4,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buf, 0, &staging, 0, len as u64 * 4);
        gpu.queue.submit([enc.finish()]);
        staging
    })?;
    gpu.map_read(context, &staging)
}

/// A dense tensor at element `at` of a flat buffer, tied to value `node` of an executable.
#[derive(Debug, Clone, Copy)]
pub struct Tie {
    pub at: usize,
    pub node: NodeId,
}

/// Record copies of the ties from `flat` into the executable's values.
pub fn copy_in(
    enc: &mut wgpu::CommandEncoder,
    exe: &Executable,
    flat: &wgpu::Buffer,
    ties: &[Tie],
) -> Result<()> {
    for t in ties {
        let v = exe.value(t.node)?;
        let shape = ir::shape4(&v.shape);
        for p in &v.pieces {
            for r in runs(p, shape) {
                let src = (t.at + r.src) as u64 * 4;
                enc.copy_buffer_to_buffer(
                    flat,
                    src,
                    &exe.arena_buffers()[p.arena],
                    r.dst * 4,
                    r.len as u64 * 4,
                );
            }
        }
    }
    Ok(())
}

/// Record copies of the executable's values into `flat` at the ties.
pub fn copy_out(
    enc: &mut wgpu::CommandEncoder,
    exe: &Executable,
    flat: &wgpu::Buffer,
    ties: &[Tie],
) -> Result<()> {
    for t in ties {
        let v = exe.value(t.node)?;
        let shape = ir::shape4(&v.shape);
        for p in &v.pieces {
            for r in runs(p, shape) {
                let dst = (t.at + r.src) as u64 * 4;
                enc.copy_buffer_to_buffer(
                    &exe.arena_buffers()[p.arena],
                    r.dst * 4,
                    flat,
                    dst,
                    r.len as u64 * 4,
                );
            }
        }
    }
    Ok(())
}
