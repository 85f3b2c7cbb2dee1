//! Grouped convolutions (`groups` > 1), their transposes and weight gradients: one invocation per
//! output element. A group's GEMM is O/groups rows tall (one for a depthwise conv), so the shared
//! GEMM's tiles would idle; a direct sum over the group's few channels fills every invocation.

use super::{Ctx, Dispatch, KernelBuilder};
use crate::{Kernel, ValuePlan};

const CONV2D: &str = include_str!("../../../shaders/grouped_conv2d.wgsl");
const CONV_TRANSPOSE2D: &str = include_str!("../../../shaders/grouped_conv_transpose2d.wgsl");
const WEIGHT_GRAD: &str = include_str!("../../../shaders/grouped_weight_grad.wgsl");

/// conv2d (`transposed` false) or conv_transpose2d: weight [O, C/g, ..] or [C, O/g, ..].
pub(super) fn conv(
    ctx: &Ctx,
    (stride, pad, bias, groups): (usize, usize, bool, usize),
    transposed: bool,
) -> Result<Kernel, String> {
    let (x, w, y) = (ctx.input(0, "x")?, ctx.input(1, "weight")?, ctx.out()?);
    let mut b = KernelBuilder::default();
    b.load("x", x)?;
    b.load("w", w)?;
    match bias {
        true => b.load("b", ctx.input(2, "bias")?)?,
        false => b.zero("b"),
    }
    b.store("y", y)?;
    b.dims("X", &x.shape)?;
    b.dims("Y", &y.shape)?;
    let [_, _, kh, kw] = ir::shape4(&w.shape);
    let (cin, cout) = (x.shape[1], y.shape[1]);
    for (name, v) in [
        ("KH", kh),
        ("KW", kw),
        ("STRIDE", stride),
        ("PAD", pad),
        ("CG", cin / groups),
        ("OG", cout / groups),
    ] {
        b.u32(name, v as u64)?;
    }
    let (template, src) = match transposed {
        false => ("grouped_conv2d", CONV2D),
        true => ("grouped_conv_transpose2d", CONV_TRANSPOSE2D),
    };
    let total = ir::numel(&y.shape) as u64;
    ctx.kernel(template, src, b, Dispatch::Threads { total, wg: 64 })
}

/// out[a, b, ki, kj] = sum over n, i, j of s[n, a, i, j] * g[n, group(a) + b, ...], as
/// `conv_grad::correlate` within each group.
pub(super) fn weight_grad(
    ctx: &Ctx,
    s: &ValuePlan,
    g: &ValuePlan,
    (stride, pad, groups): (usize, usize, usize),
) -> Result<Kernel, String> {
    let out = ctx.out()?;
    let mut b = KernelBuilder::default();
    b.load("s", s)?;
    b.load("g", g)?;
    b.store("out", out)?;
    b.dims("S", &s.shape)?;
    b.dims("G", &g.shape)?;
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
