//! Elementwise kernels, all from one template: for every element (n, c, h, w) of a domain,
//! `st_y(n, c + Y_C_OFF, h, w, value(n, c, h, w))`, where `value` is generated here from the op's
//! own WGSL definition (`Unary::wgsl`, `Binary::wgsl`). A fused chain will be a longer `value`.
//! Concat copies and dropout (the identity) are elementwise copies.

use super::{Ctx, Dispatch, KernelBuilder};
use crate::Kernel;
use ir::ops::{Binary, ChannelAffine, Unary};
use ir::NodeId;
use std::fmt::Write;

const ELEMENTWISE: &str = include_str!("../../../shaders/elementwise.wgsl");

pub(super) fn unary(ctx: &Ctx, o: &Unary) -> Result<Kernel, String> {
    let mut b = KernelBuilder::default();
    b.load("x", ctx.input(0, "x")?)?;
    b.code(&value_fn(&["let x = ld_x(n, c, h, w);"], &o.wgsl("x")));
    finish(ctx, b)
}

/// Broadcasting comes from the accessors: a size-1 dim of an operand ignores its coordinate.
pub(super) fn binary(ctx: &Ctx, o: &Binary) -> Result<Kernel, String> {
    let mut b = KernelBuilder::default();
    b.load("a", ctx.input(0, "a")?)?;
    b.load("b", ctx.input(1, "b")?)?;
    b.code(&value_fn(
        &["let a = ld_a(n, c, h, w);", "let b = ld_b(n, c, h, w);"],
        &o.wgsl("a", "b"),
    ));
    finish(ctx, b)
}

pub(super) fn channel_affine(ctx: &Ctx, o: &ChannelAffine) -> Result<Kernel, String> {
    let x = ctx.input(0, "x")?;
    let channels = ir::shape4(&x.shape)[1];
    // The op's rule: a list of one value stands for every channel (a VJP writes `shift: [0]`).
    let per_channel = |v: &[f64], what: &str| match v.len() {
        1 => Ok(vec![v[0]; channels]),
        n if n == channels => Ok(v.to_vec()),
        n => Err(format!(
            "channel_affine: expected 1 or {channels} {what}, found {n}"
        )),
    };
    let (scale, shift) = (
        per_channel(&o.scale, "scales")?,
        per_channel(&o.shift, "shifts")?,
    );
    let mut b = KernelBuilder::default();
    b.load("x", x)?;
    // Private tables rather than `const` arrays: indexing those with a runtime channel is not
    // accepted by every backend.
    b.code(&table("AFFINE_SCALE", &scale));
    b.code(&table("AFFINE_SHIFT", &shift));
    b.code(&value_fn(
        &["let x = ld_x(n, c, h, w);"],
        "x * AFFINE_SCALE[c] + AFFINE_SHIFT[c]",
    ));
    finish(ctx, b)
}

/// The identity (dropout outside training).
pub(super) fn copy(ctx: &Ctx) -> Result<Kernel, String> {
    let mut b = KernelBuilder::default();
    b.load("x", ctx.input(0, "x")?)?;
    b.code(&value_fn(&[], "ld_x(n, c, h, w)"));
    finish(ctx, b)
}

/// One copy per input not already written in place into its channel slice of the concat.
/// `slice_of` names the outermost region, so an input is in place when it sits at this concat's
/// own place in that region plus its channel offset; any other input (a source, a value read by
/// two concats, one placed elsewhere in the same region) is copied.
pub(super) fn concat(ctx: &Ctx) -> Result<Vec<Kernel>, String> {
    let y = ctx.out()?;
    let (root, first) = y.slice_of.unwrap_or((ctx.id, 0));
    let mut kernels = Vec::new();
    let mut c_off = 0;
    for k in 0..ctx.node.inputs.len() {
        let id: NodeId = ctx.input_id(k, "x")?;
        let x = ctx.value(id)?;
        if x.slice_of != Some((root, first + c_off)) {
            let mut b = KernelBuilder::default();
            b.load("x", x)?;
            b.store("y", y)?;
            b.dims("D", &x.shape)?;
            b.u32("Y_C_OFF", c_off as u64)?;
            b.code(&value_fn(&[], "ld_x(n, c, h, w)"));
            let name = format!("concat:{}[{k}]", ctx.node.name);
            let total = ir::numel(&x.shape) as u64;
            let dispatch = Dispatch::Threads { total, wg: 256 };
            kernels.push(ctx.kernel_named(
                name,
                "elementwise",
                ELEMENTWISE,
                b,
                dispatch,
                vec![id],
            )?);
        }
        c_off += ir::shape4(&x.shape)[1];
    }
    Ok(kernels)
}

/// The kernel of a node whose domain is its whole output.
pub(super) fn finish(ctx: &Ctx, mut b: KernelBuilder) -> Result<Kernel, String> {
    let y = ctx.out()?;
    b.store("y", y)?;
    b.dims("D", &y.shape)?;
    b.u32("Y_C_OFF", 0)?;
    let total = ir::numel(&y.shape) as u64;
    ctx.kernel(
        "elementwise",
        ELEMENTWISE,
        b,
        Dispatch::Threads { total, wg: 256 },
    )
}

pub(super) fn value_fn(lets: &[&str], expr: &str) -> String {
    let mut s = String::from("fn value(n: u32, c: u32, h: u32, w: u32) -> f32 {\n");
    for l in lets {
        let _ = writeln!(s, "    {l}");
    }
    let _ = writeln!(s, "    return {expr};\n}}");
    s
}

fn table(name: &str, v: &[f64]) -> String {
    let lits: Vec<String> = v.iter().map(|&x| ir::ops::wgsl_f32(x)).collect();
    let n = v.len();
    format!(
        "var<private> {name}: array<f32, {n}> = array<f32, {n}>({});",
        lits.join(", ")
    )
}
