//! Grouped convolutions (`groups` > 1), their transposes and weight gradients: one invocation per
//! output element. A group's GEMM is O/groups rows tall (one for a depthwise conv), so the shared
//! GEMM's tiles would idle; a direct sum over the group's few channels fills every invocation.

use super::{Ctx, Dispatch, KernelBuilder};
use crate::{Kernel, ValuePlan};
use std::fmt::Write;

const CONV2D: &str = include_str!("../../../shaders/grouped_conv2d.wgsl");
const CONV_TRANSPOSE2D: &str = include_str!("../../../shaders/grouped_conv_transpose2d.wgsl");
const WEIGHT_GRAD: &str = include_str!("../../../shaders/grouped_weight_grad.wgsl");

/// conv2d (`transposed` false) or conv_transpose2d: weight [O, C/g, ..] or [C, O/g, ..].
pub(super) fn conv(
    ctx: &Ctx,
    (stride, pad, bias, groups): (usize, usize, bool, usize),
    transposed: bool,
) -> Result<Kernel, String> {
    let mut b = KernelBuilder::default();
    let [x, w, y] = super::conv::operands(ctx, &mut b, (stride, pad, bias))?;
    let kw = ir::shape4(&w.shape)[3];
    b.u32("CG", (x.shape[1] / groups) as u64)?;
    b.u32("OG", (y.shape[1] / groups) as u64)?;
    let total = ir::numel(&y.shape) as u64;
    if transposed {
        let src = CONV_TRANSPOSE2D;
        let dispatch = Dispatch::Threads { total, wg: 64 };
        return ctx.kernel("grouped_conv_transpose2d", src, b, dispatch);
    }
    let src = runs(CONV2D, RUN, stride, kw, &run_stores(ctx, &mut b, RUN, "a")?);
    let total = total / y.shape[3] as u64 * runs_a_row(ctx, RUN)?;
    ctx.kernel(
        "grouped_conv2d",
        &src,
        b,
        Dispatch::Threads { total, wg: 64 },
    )
}

/// The template's RUN_DECL, RUN_STEP and RUN_STORE written out for `run` outputs of a row: one
/// accumulator each, the row segment's loads `v_t` and the weights `w_k` of one kernel row, and
/// output r's products v_{r*stride + k} * w_k.
fn runs(template: &str, run: usize, stride: usize, kw: usize, store: &str) -> String {
    let (mut decl, mut step) = (String::new(), String::new());
    for r in 0..run {
        let _ = writeln!(decl, "    var a_{r} = ld_b(0u, 0u, 0u, p.y);");
    }
    for t in 0..(run - 1) * stride + kw {
        let _ = writeln!(
            step,
            "            let v_{t} = x_or_zero(p.x, c0 + c, u32(h), w0 + {t});"
        );
    }
    for k in 0..kw {
        let _ = writeln!(step, "            let w_{k} = ld_w(p.y, c, kh, {k}u);");
    }
    for r in 0..run {
        for k in 0..kw {
            let _ = writeln!(step, "            a_{r} += v_{} * w_{k};", r * stride + k);
        }
    }
    template
        .replace("RUN_DECL\n", &decl)
        .replace("RUN_STEP\n", &step)
        .replace("RUN_STORE\n", store)
}

/// Outputs of a row per invocation of a grouped conv.
const RUN: usize = 4;

/// The stores of a run of `run` outputs `<acc>_r` of a row to y, as RUN_STORE; with `RUN` and
/// `Y_RUNS` (runs a row). Where the run may not divide the row (sizes as data, or a width it
/// does not divide), each store past the first is kept within the row.
pub(super) fn run_stores(
    ctx: &Ctx,
    b: &mut KernelBuilder,
    run: usize,
    acc: &str,
) -> Result<String, String> {
    let width = ctx.out()?.shape[3];
    let cut = ctx.target.sizes == crate::Sizes::Data || !width.is_multiple_of(run);
    b.u32("RUN", run as u64)?;
    b.size("Y_RUNS", runs_a_row(ctx, run)?)?;
    let mut store = String::new();
    for r in 0..run {
        let st = format!("st_y(p.x, p.y, p.z, p.w + {r}u, {acc}_{r});");
        let _ = match cut && r > 0 {
            true => writeln!(store, "    if (p.w + {r}u < Y_W) {{ {st} }}"),
            false => writeln!(store, "    {st}"),
        };
    }
    Ok(store)
}

/// Runs of `run` outputs a row of the node's output.
pub(super) fn runs_a_row(ctx: &Ctx, run: usize) -> Result<u64, String> {
    Ok(ctx.out()?.shape[3].div_ceil(run) as u64)
}

/// out[a, b, ki, kj] = sum over n, i, j of s[n, a, i, j] * g[n, group(a) + b, ...], as
/// `conv_grad::correlate` within each group.
pub(super) fn weight_grad(
    ctx: &Ctx,
    s: &ValuePlan,
    g: &ValuePlan,
    (stride, pad, groups): (usize, usize, usize),
) -> Result<Kernel, String> {
    let mut b = KernelBuilder::default();
    let out = super::conv_grad::operands(ctx, &mut b, s, g)?;
    b.dims("OUT", &out.shape)?;
    b.u32("STRIDE", stride as u64)?;
    b.u32("PAD", pad as u64)?;
    b.u32("AG", (s.shape[1] / groups) as u64)?;
    let total = ir::numel(&out.shape) as u64;
    ctx.kernel(
        "grouped_weight_grad",
        WEIGHT_GRAD,
        b,
        Dispatch::Threads { total, wg: 64 },
    )
}
