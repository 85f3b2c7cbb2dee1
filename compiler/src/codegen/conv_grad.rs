//! Convolution weight gradients: both are the same correlation of two activations (see
//! `shaders/weight_grad.wgsl`), with the operands' roles swapped, run as the GEMM of `gemm/`
//! with the sum over pixels as its reduction. Each output element is written once, by the one
//! workgroup that owns its tile (no split-K: deterministic, and lavapipe's few threads are busy
//! with the tiles alone).

use super::gemm::{gemm, Groups};
use super::grouped_conv;
use super::{Ctx, KernelBuilder};
use crate::{Kernel, ValuePlan};
use ir::ops::{Conv2dWeightGrad, ConvTranspose2dWeightGrad};

const WEIGHT_GRAD: &str = include_str!("../../../shaders/weight_grad.wgsl");

/// gw [O, C, kh, kw] from x [N, C, H, W] and gy [N, O, Ho, Wo]: gy is on the strided grid.
pub(super) fn conv2d_weight_grad(ctx: &Ctx, o: &Conv2dWeightGrad) -> Result<Kernel, String> {
    let (x, gy) = (ctx.input(0, "x")?, ctx.input(1, "gy")?);
    if o.groups > 1 {
        return grouped_conv::weight_grad(ctx, gy, x, (o.stride, o.pad, o.groups));
    }
    correlate(ctx, gy, x, (o.stride, o.pad, o.kh, o.kw))
}

/// gw [C, O, kh, kw] from x [N, C, H, W] and gy [N, O, Ho, Wo]: x is on the strided grid.
pub(super) fn conv_transpose2d_weight_grad(
    ctx: &Ctx,
    o: &ConvTranspose2dWeightGrad,
) -> Result<Kernel, String> {
    let (x, gy) = (ctx.input(0, "x")?, ctx.input(1, "gy")?);
    if o.groups > 1 {
        return grouped_conv::weight_grad(ctx, x, gy, (o.stride, o.pad, o.groups));
    }
    correlate(ctx, x, gy, (o.stride, o.pad, o.kh, o.kw))
}

/// out[a, b, ki, kj] = sum over n, i, j of s[n, a, i, j] * g[n, b, i*stride + ki - pad, ...].
fn correlate(
    ctx: &Ctx,
    s: &ValuePlan,
    g: &ValuePlan,
    (stride, pad, kh, kw): (usize, usize, usize, usize),
) -> Result<Kernel, String> {
    let mut b = KernelBuilder::default();
    operands(ctx, &mut b, s, g)?;
    for (name, v) in [("KH", kh), ("KW", kw), ("STRIDE", stride), ("PAD", pad)] {
        b.u32(name, v as u64)?;
    }
    let [sn, sc, sh, sw] = ir::shape4(&s.shape);
    let gc = ir::shape4(&g.shape)[1];
    let sizes = [sc, gc * kh * kw, sn * sh * sw];
    // The sum over pixels is the GEMM's k.
    let sized = [false, false, true];
    let (src, dispatch) = gemm(&mut b, ctx, WEIGHT_GRAD, (sizes, sized), Groups::One, None)?;
    ctx.kernel("weight_grad", &src, b, dispatch)
}

/// A weight gradient's operands in `b`: the activations s and g with their dims, and the
/// output; its plan.
pub(super) fn operands<'a>(
    ctx: &'a Ctx,
    b: &mut KernelBuilder,
    s: &ValuePlan,
    g: &ValuePlan,
) -> Result<&'a ValuePlan, String> {
    let out = ctx.out()?;
    b.load("s", s)?;
    b.load("g", g)?;
    b.store("out", out)?;
    b.dims("S", &s.shape)?;
    b.dims("G", &g.shape)?;
    Ok(out)
}
