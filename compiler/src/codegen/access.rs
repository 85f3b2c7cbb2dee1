//! The generated prelude of every kernel, in one place: arena bindings and per-operand accessors
//! (`bindings.rs`), constants (`uniforms.rs`: baked in, or read from the uniform where sizes are
//! data), and the dispatch (workgroup size, total, 2-D split of the workgroup count).
//!
//! What a template may use:
//! - `ld_<name>(n, c, h, w) -> f32` and `st_<name>(n, c, h, w, v)`: the element at rank-4
//!   coordinates of the operand's padded shape (`ir::shape4`). The coordinate of a size-1 dim is
//!   ignored, which is how a broadcast operand (and a rank-1 bias, `[1, 1, 1, O]`) is read.
//! - the constants added with [`KernelBuilder::u32`] / [`KernelBuilder::f32`] (where they depend
//!   on the image size, [`KernelBuilder::size`] / [`KernelBuilder::size_f32`]), plus `WG` (the
//!   1-D workgroup size) and `TOTAL` (invocations, or workgroups for a workgroup-per-item kernel);
//! - `flat_index(id, nwg, WG)` (thread kernels, `id` = global_invocation_id) or
//!   `flat_index(id, nwg, 1u)` (workgroup kernels, `id` = workgroup_id): the linear index over a
//!   dispatch split into x and y; `unflat(i, dims)`: (n, c, h, w) of a linear index.
//!
//! Where values live (their offsets in the arenas) is not in the WGSL: each kernel reads its
//! operands' offsets from a small uniform (`offsets`, group 1), which the runtime fills from
//! `Kernel::offsets`. Kernels that differ only in where their operands live (the same layer
//! shape in every block, the critic applied to three inputs, forward recomputed in a backward
//! pass) are then the same WGSL and share one compiled pipeline. That matters beyond compile
//! time: lavapipe keeps at most 1024 compiled shaders and evicts the least recently used, so a
//! training step of more distinct kernels than that recompiled every kernel at every step.
//!
//! Fusion lives here too: loading a value that fusion inlined generates `ld_<name>` as its op
//! over its inputs' accessors (`<name>_0`, `<name>_1`, ...), and storing a convolution stored
//! through its reader generates `st_<name>` as that reader's op, stored to `<name>_out`. The
//! builder records the values really read and written and the nodes computed on the way.

use super::bindings;
use super::uniforms::{Constant, Uniforms, Value};
use crate::{Fused, Piece, Sizes, Target, ValuePlan};
use ir::{NodeId, Op, ValueKind};
use std::fmt::Write;

/// How many invocations a kernel runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dispatch {
    /// One invocation per item: `total` invocations in workgroups of `wg`.
    Threads { total: u64, wg: u32 },
    /// One workgroup of `wg` invocations per item: `count` workgroups.
    Groups { count: u64, wg: u32 },
}

pub(super) struct Operand {
    pub name: String,
    pub store: bool,
    /// Its strides are the same at every image size (a parameter, a constant).
    pub fixed: bool,
    pub shape: [usize; 4],
    /// Empty for an absent optional operand: its load reads 0.
    pub pieces: Vec<Piece>,
}

/// The generated WGSL, with the arenas it binds (binding order) and its workgroup count.
pub(crate) struct Generated {
    pub wgsl: String,
    pub arenas: Vec<usize>,
    /// The element offsets the WGSL reads from its `offsets` uniform, in slot order.
    pub offsets: Vec<u32>,
    pub workgroups: [u32; 3],
    /// Values loaded and stored through memory, in the order first used.
    pub reads: Vec<NodeId>,
    pub writes: Vec<NodeId>,
    /// Nodes computed inside accessors (inlined values, stored-through readers).
    pub nodes: Vec<String>,
}

#[derive(Default)]
pub(crate) struct KernelBuilder {
    operands: Vec<Operand>,
    consts: Vec<Constant>,
    code: String,
    reads: Vec<NodeId>,
    writes: Vec<NodeId>,
    /// Values this kernel holds in a private array rather than memory (its own per-plane
    /// results, where it also computes a reader of them): (value, array).
    locals: Vec<(NodeId, String, usize)>,
    nodes: Vec<String>,
    /// The template reads its loaded values in long runs of one channel (see `fused::body`).
    pub channel_runs: bool,
    /// The kernel uses f16, or cooperative matrices: WGSL `enable`s, before any declaration.
    pub f16: bool,
    pub coop_matrix: bool,
}

impl KernelBuilder {
    /// A value read through `ld_<name>`.
    pub fn load(&mut self, name: &str, value: &ValuePlan) -> Result<(), String> {
        if let Some((_, array, len)) = self.locals.iter().find(|l| l.0 == value.node) {
            // One plane's [1, 1, 1, K] results: element w of the array (a size-1 dim ignores
            // its coordinate, as every accessor does).
            let at = if *len == 1 { "0u" } else { "w" };
            let f = format!("fn ld_{name}(n: u32, c: u32, h: u32, w: u32) -> f32 {{\n    return {array}[{at}];\n}}");
            self.code(&f);
            return Ok(());
        }
        let Some(Fused::Inline { op, inputs }) = value.fused.as_deref() else {
            if value.fused.is_some() {
                return Err(format!(
                    "value `{}` is stored through its reader, so no kernel can load it",
                    value.name
                ));
            }
            push_new(&mut self.reads, value.node);
            return self.operand(name, value, false);
        };
        for (k, input) in inputs.iter().enumerate() {
            self.load(&format!("{name}_{k}"), input)?;
        }
        let load = |k: usize, at: &str| format!("ld_{name}_{k}({at})");
        let prefix = format!("AFFINE_{name}");
        let body = super::fused::body(op, &value.shape, &load, &prefix, self.channel_runs)?;
        self.code(&body.decls);
        self.code(&body.function(&format!(
            "fn ld_{name}(n: u32, c: u32, h: u32, w: u32) -> f32"
        )));
        push_new(&mut self.nodes, value.name.clone());
        Ok(())
    }

    /// A value written through `st_<name>`.
    pub fn store(&mut self, name: &str, value: &ValuePlan) -> Result<(), String> {
        let Some(Fused::Store {
            op,
            at,
            inputs,
            out,
        }) = value.fused.as_deref()
        else {
            if value.fused.is_some() {
                return Err(format!(
                    "value `{}` is computed in its readers' loads, so no kernel stores it",
                    value.name
                ));
            }
            push_new(&mut self.writes, value.node);
            return self.operand(name, value, true);
        };
        for (k, input) in inputs.iter().enumerate().filter(|&(k, _)| k != *at) {
            self.load(&format!("{name}_{k}"), input)?;
        }
        // Nodes in dataflow order: this reader before what its own store computes.
        push_new(&mut self.nodes, out.name.clone());
        self.store(&format!("{name}_out"), out)?;
        if let Op::Reshape(_) = op {
            let shape = &inputs[*at].shape;
            let store = self.reshaped_store(name, shape, &out.shape)?;
            self.code(&store);
            return Ok(());
        }
        let load = |k: usize, coords: &str| match k == *at {
            true => "v".to_string(),
            false => format!("ld_{name}_{k}({coords})"),
        };
        let body = super::fused::body(op, &out.shape, &load, &format!("AFFINE_{name}"), false)?;
        self.code(&body.decls);
        self.code(&format!(
            "fn st_{name}(n: u32, c: u32, h: u32, w: u32, v: f32) {{\n{}    st_{name}_out(n, c, h, w, {});\n}}",
            body.lets(),
            body.expr
        ));
        Ok(())
    }

    /// Loads of `value` from now on read element w of the private `array` of `len` (which the
    /// template fills) instead of memory.
    pub fn local(&mut self, value: NodeId, array: &str, len: usize) {
        self.locals.push((value, array.into(), len));
    }

    /// Record a node this kernel computes besides its own.
    pub fn computes(&mut self, node: &str) {
        push_new(&mut self.nodes, node.into());
    }

    /// An absent optional operand (a conv without bias): `ld_<name>` returns 0.
    pub fn zero(&mut self, name: &str) {
        let op = Operand {
            name: name.into(),
            store: false,
            fixed: true,
            shape: [1; 4],
            pieces: vec![],
        };
        self.operands.push(op);
    }

    /// A constant the same at every image size (a channel count, a kernel's side, a tile).
    pub fn u32(&mut self, name: &str, v: u64) -> Result<(), String> {
        self.constant(name, v, false)
    }

    /// A constant that depends on the image size (a height, a count of pixels or tiles): read
    /// from the uniform where the target takes sizes as data (`uniforms.rs`).
    pub fn size(&mut self, name: &str, v: u64) -> Result<(), String> {
        self.constant(name, v, true)
    }

    fn constant(&mut self, name: &str, v: u64, size: bool) -> Result<(), String> {
        let v =
            u32::try_from(v).map_err(|_| format!("constant {name} = {v} does not fit in u32"))?;
        let (name, value) = (name.into(), Value::U32(v));
        self.consts.push(Constant { name, value, size });
        Ok(())
    }

    /// `<P>_N`, `<P>_C`, `<P>_H`, `<P>_W`: the rank-4 padded shape of an operand; its height
    /// and width are sizes.
    pub fn dims(&mut self, prefix: &str, shape: &[usize]) -> Result<(), String> {
        for (d, v) in ["N", "C", "H", "W"].iter().zip(ir::shape4(shape)) {
            self.constant(&format!("{prefix}_{d}"), v as u64, matches!(*d, "H" | "W"))?;
        }
        Ok(())
    }

    pub fn f32(&mut self, name: &str, v: f64) {
        self.f32_constant(name, v, false);
    }

    /// An f32 that depends on the image size (one over a plane's pixels).
    pub fn size_f32(&mut self, name: &str, v: f64) {
        self.f32_constant(name, v, true);
    }

    fn f32_constant(&mut self, name: &str, v: f64, size: bool) {
        let (name, value) = (name.into(), Value::F32(v));
        self.consts.push(Constant { name, value, size });
    }

    /// Extra generated WGSL (an elementwise body, a table), placed after the accessors.
    pub fn code(&mut self, src: &str) {
        self.code.push_str(src);
        self.code.push('\n');
    }

    fn operand(&mut self, name: &str, value: &ValuePlan, store: bool) -> Result<(), String> {
        let shape = ir::shape4(&value.shape);
        check_pieces(value, shape[1])?;
        let pieces = value.pieces.clone();
        self.operands.push(Operand {
            name: name.into(),
            store,
            fixed: matches!(value.kind, ValueKind::Param | ValueKind::Const),
            shape,
            pieces,
        });
        Ok(())
    }

    /// Prelude + template, with the bindings and the dispatch size.
    pub fn finish(
        mut self,
        template: &str,
        dispatch: Dispatch,
        target: &Target,
    ) -> Result<Generated, String> {
        let data = target.sizes == Sizes::Data;
        let pieces: Vec<_> = (self.operands.iter())
            .flat_map(|o| o.pieces.iter().map(|p| (o.shape, p)))
            .collect();
        let bindings::Bindings { arenas, of_piece } = bindings::bindings(&pieces, data);
        if arenas.len() > target.limits.max_storage_buffers_per_stage as usize {
            // Values over max_binding_bytes are split over arenas, one binding a piece: only
            // smaller inputs bring the count down.
            return Err(format!(
                "binds {} arenas, more than the device's {} storage buffers per stage: its values are too large for this device (split over bindings of at most {}); use smaller inputs (a smaller image; `irdc deblur` streams images larger than its --window, shown by `irdc plan --window`)",
                arenas.len(),
                target.limits.max_storage_buffers_per_stage,
                crate::print::bytes(target.limits.max_binding_bytes)
            ));
        }
        let (wg, items, groups) = match dispatch {
            Dispatch::Threads { total, wg } => (wg, total, total.div_ceil(wg as u64)),
            Dispatch::Groups { count, wg } => (wg, count, count),
        };
        let workgroups = split_workgroups(groups, target.limits.max_workgroups_per_dim)
            .ok_or_else(|| format!("{groups} workgroups do not fit a 2-D dispatch"))?;
        let invocations = workgroups[0] as u64 * workgroups[1] as u64 * wg as u64;
        if invocations > u32::MAX as u64 {
            return Err(format!("{invocations} invocations overflow a u32 index"));
        }

        let mut offsets = Vec::new();
        for p in self.operands.iter().flat_map(|o| &o.pieces) {
            offsets.push(
                u32::try_from(p.offset)
                    .map_err(|_| format!("offset {} does not fit a u32 index", p.offset))?,
            );
        }
        let mut uniforms = Uniforms::new(data, offsets.len());
        let mut consts = format!("\nconst WG: u32 = {wg}u;\n");
        self.size("TOTAL", items)?;
        for c in &self.consts {
            consts.push_str(&uniforms.declare(c));
        }
        let mut body = String::from(HELPERS);
        let mut slot = 0;
        for op in &self.operands {
            bindings::accessor(&mut body, op, &of_piece, &mut slot, &mut uniforms)?;
        }
        body.push_str(&self.code);
        body.push('\n');
        body.push_str(&call_first(template, "load_offsets();")?);
        // Helpers an op's WGSL calls, where a kernel calls them (in its code or fused loads).
        if body.contains("irdc_erf(") {
            body.push_str(ir::ops::ERF_WGSL);
        }
        let slots = uniforms.slots(&offsets);

        let mut s = String::new();
        if self.f16 {
            s.push_str("enable f16;\n");
        }
        if self.coop_matrix {
            // naga wants cooperative ops in uniform control flow, and takes the early return
            // of a workgroup past the end for a non-uniform one; it is uniform (the workgroup
            // id's), so that analysis (filed under derivative_uniformity) is turned off.
            s.push_str(
                "enable wgpu_cooperative_matrix;\ndiagnostic(off, derivative_uniformity);\n",
            );
        }
        for b in 0..arenas.len() {
            let _ = writeln!(
                s,
                "@group(0) @binding({b}) var<storage, read_write> a{b}: array<f32>;"
            );
        }
        s.push_str(&uniforms.declarations(&body));
        s.push_str(&consts);
        s.push_str(&uniforms.substitute(body));
        Ok(Generated {
            wgsl: s,
            arenas,
            offsets: slots,
            workgroups,
            reads: self.reads,
            writes: self.writes,
            nodes: self.nodes,
        })
    }

    /// `st_<name>` for a value of `from` stored through a reshape to `to`: the element's index
    /// in `from`'s row-major order is its index in `to`'s.
    fn reshaped_store(
        &mut self,
        name: &str,
        from: &[usize],
        to: &[usize],
    ) -> Result<String, String> {
        let p = format!("RESHAPE_{name}");
        self.dims(&format!("{p}_FROM"), from)?;
        self.dims(&format!("{p}_TO"), to)?;
        let [oc, oh, ow] = [1, 2, 3].map(|d| ir::shape4(to)[d]);
        self.size(&format!("{p}_TO_CHW"), (oc * oh * ow) as u64)?;
        self.size(&format!("{p}_TO_HW"), (oh * ow) as u64)?;
        Ok(format!(
            "fn st_{name}(n: u32, c: u32, h: u32, w: u32, v: f32) {{\n    \
             let i = ((n * {p}_FROM_C + c) * {p}_FROM_H + h) * {p}_FROM_W + w;\n    \
             st_{name}_out(i / {p}_TO_CHW, i / {p}_TO_HW % {p}_TO_C, i / {p}_TO_W % {p}_TO_H, \
             i % {p}_TO_W, v);\n}}"
        ))
    }
}

/// `template` with `call` as the first statement of its entry point `fn main(...) {`.
fn call_first(template: &str, call: &str) -> Result<String, String> {
    let at = template
        .find("\nfn main(")
        .and_then(|m| template[m..].find(") {\n").map(|b| m + b + ") {\n".len()))
        .ok_or("the template has no `fn main(...) {` line to start")?;
    Ok(format!(
        "{}    {call}\n{}",
        &template[..at],
        &template[at..]
    ))
}

const HELPERS: &str = "
fn flat_index(id: vec3<u32>, nwg: vec3<u32>, wg: u32) -> u32 {
    return id.x + id.y * (nwg.x * wg);
}

fn unflat(i: u32, d: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(i / (d.w * d.z * d.y), (i / (d.w * d.z)) % d.y, (i / d.w) % d.z, i % d.w);
}
";

/// The pieces cover channels 0..channels in order, without gaps.
fn check_pieces(value: &ValuePlan, channels: usize) -> Result<(), String> {
    let mut next = 0;
    for p in &value.pieces {
        if p.c0 != next || p.c1 <= p.c0 {
            break;
        }
        next = p.c1;
    }
    if next != channels || value.pieces.is_empty() {
        let got: Vec<_> = value.pieces.iter().map(|p| p.c0..p.c1).collect();
        return Err(format!(
            "value `{}`: pieces {got:?} do not cover channels 0..{channels}",
            value.name
        ));
    }
    Ok(())
}

fn push_new<T: PartialEq>(list: &mut Vec<T>, x: T) {
    if !list.contains(&x) {
        list.push(x);
    }
}

/// Split `groups` workgroups into x and y, each at most `max`.
pub(crate) fn split_workgroups(groups: u64, max: u32) -> Option<[u32; 3]> {
    let (groups, max) = (groups.max(1), max.max(1) as u64);
    let y = groups.div_ceil(max);
    if y > max {
        return None;
    }
    let x = groups.div_ceil(y);
    Some([x as u32, y as u32, 1])
}
