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
    if o.scale.len() != channels || o.shift.len() != channels {
        let (a, b) = (o.scale.len(), o.shift.len());
        return Err(format!(
            "channel_affine: expected {channels} scales and shifts, found {a} and {b}"
        ));
    }
    let mut b = KernelBuilder::default();
    b.load("x", x)?;
    // Private tables rather than `const` arrays: indexing those with a runtime channel is not
    // accepted by every backend.
    b.code(&table("AFFINE_SCALE", &o.scale));
    b.code(&table("AFFINE_SHIFT", &o.shift));
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
pub(super) fn concat(ctx: &Ctx) -> Result<Vec<Kernel>, String> {
    let y = ctx.out()?;
    let mut kernels = Vec::new();
    let mut c_off = 0;
    for k in 0..ctx.node.inputs.len() {
        let id: NodeId = ctx.input_id(k, "x")?;
        let x = ctx.value(id)?;
        match x.slice_of {
            Some((region, first)) if region == ctx.id && first == c_off => {}
            Some((region, first)) if region == ctx.id => {
                return Err(format!(
                    "input `{}` is planned at channel {first} of the concat, expected {c_off}",
                    x.name
                ));
            }
            _ => {
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
        }
        c_off += ir::shape4(&x.shape)[1];
    }
    Ok(kernels)
}

/// The kernel of a node whose domain is its whole output.
fn finish(ctx: &Ctx, mut b: KernelBuilder) -> Result<Kernel, String> {
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

fn value_fn(lets: &[&str], expr: &str) -> String {
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
