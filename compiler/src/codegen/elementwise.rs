//! Elementwise kernels, all from one template: for every element (n, c, h, w) of a domain,
//! `st_y(n, c + Y_C_OFF, h, w, value(n, c, h, w))`, where `value` is generated here from the op's
//! own WGSL definition (`codegen/fused.rs`); values fused into it make its loads longer.
//! Concat copies and inference dropout (the identity) are elementwise copies.

use super::{Ctx, Dispatch, KernelBuilder};
use crate::Kernel;
use ir::ops::Dropout;
use ir::NodeId;
use std::fmt::Write;

const ELEMENTWISE: &str = include_str!("../../../shaders/elementwise.wgsl");

/// Unary, binary (broadcasting comes from the accessors: a size-1 dim of an operand ignores its
/// coordinate), per-channel affine and instance-norm apply: the op's own WGSL over its inputs,
/// named `x` (`a`, `b` for a binary op).
pub(super) fn node(ctx: &Ctx) -> Result<Kernel, String> {
    let names: &[&str] = match ctx.node.inputs.len() {
        2 if matches!(ctx.node.op, ir::Op::Binary(_)) => &["a", "b"],
        2 => &["x", "stats"],
        _ => &["x"],
    };
    let mut b = KernelBuilder::default();
    for (k, name) in names.iter().enumerate() {
        b.load(name, ctx.input(k, name)?)?;
    }
    let load = |k: usize, at: &str| format!("ld_{}({at})", names[k]);
    let body = super::fused::body(&ctx.node.op, &ctx.node.shape, &load, "AFFINE", false)?;
    b.code(&body.decls);
    b.code(&body.function("fn value(n: u32, c: u32, h: u32, w: u32) -> f32"));
    finish(ctx, b)
}

/// Dropout: with one input the identity (simplify removes it; a copy if it is left); with
/// `[x, seed]` the op's mask from its own WGSL hash (`ir::ops::DROPOUT_WGSL`, the twin of its CPU
/// reference), indexed by the element's flat index in the output, whatever arenas hold it.
pub(super) fn dropout(ctx: &Ctx, o: &Dropout) -> Result<Kernel, String> {
    if ctx.node.inputs.len() == 1 {
        return copy(ctx);
    }
    let mut b = KernelBuilder::default();
    b.load("x", ctx.input(0, "x")?)?;
    let seed = ctx.input(1, "seed")?;
    b.load("seed", seed)?;
    b.u32("DROPOUT_SALT", o.salt as u64)?;
    b.u32("DROPOUT_KEEP_FROM", o.keep_from() as u64)?;
    b.f32("DROPOUT_SCALE", o.scale());
    b.code(ir::ops::DROPOUT_WGSL);
    // A [seed, first] seed moves the index by `first` samples (`ir::ops::DROPOUT_SEED`).
    let at = match seed.shape.as_slice() {
        [2] => {
            b.size(
                "DROPOUT_SAMPLE",
                ir::ops::dropout_per_sample(&ctx.node.shape) as u64,
            )?;
            "((n * D_C + c) * D_H + h) * D_W + w + u32(ld_seed(0u, 0u, 0u, 1u)) * DROPOUT_SAMPLE"
        }
        _ => "((n * D_C + c) * D_H + h) * D_W + w",
    };
    let index = format!("let i = {at};");
    let lets = [
        index.as_str(),
        "let seed = u32(ld_seed(0u, 0u, 0u, 0u));",
        "let keep = (dropout_hash(seed, DROPOUT_SALT, i) >> 8u) >= DROPOUT_KEEP_FROM;",
    ];
    b.code(&value_fn(
        &lets,
        "select(0.0, ld_x(n, c, h, w) * DROPOUT_SCALE, keep)",
    ));
    finish(ctx, b)
}

/// The identity.
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
            kernels.push(ctx.kernel_named(name, "elementwise", ELEMENTWISE, b, dispatch)?);
        }
        c_off += ir::shape4(&x.shape)[1];
    }
    Ok(kernels)
}

/// The kernel of a node whose domain is its whole output.
pub(super) fn finish(ctx: &Ctx, b: KernelBuilder) -> Result<Kernel, String> {
    finish_as(ctx, b, "elementwise")
}

/// [`finish`] for an op that supplies its own `value` (a gather), named `template` in plans.
pub(super) fn finish_as(ctx: &Ctx, mut b: KernelBuilder, template: &str) -> Result<Kernel, String> {
    let y = ctx.out()?;
    b.store("y", y)?;
    b.dims("D", &y.shape)?;
    b.u32("Y_C_OFF", 0)?;
    let total = ir::numel(&y.shape) as u64;
    ctx.kernel(
        template,
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
