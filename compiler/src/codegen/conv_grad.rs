//! Convolution weight gradients: both are the same correlation of two activations (see
//! `shaders/weight_grad.wgsl`), with the operands' roles swapped. They are the dominant cost of
//! a backward pass after the convolutions themselves, so each weight tile gets a workgroup that
//! splits the sum over pixels (enough parallelism even for a 3-channel layer) and a 4x4
//! register tile (8 loads per 16 multiply-adds).

use super::{Ctx, Dispatch, KernelBuilder};
use crate::{Kernel, ValuePlan};
use ir::ops::{Conv2dWeightGrad, ConvTranspose2dWeightGrad};

const WEIGHT_GRAD: &str = include_str!("../../../shaders/weight_grad.wgsl");
/// Channels per tile side (the template's `mat4x4`).
const TILE: usize = 4;
/// Invocations per workgroup; the template's tree sum needs a power of two.
const WG: u32 = 64;

/// gw [O, C, kh, kw] from x [N, C, H, W] and gy [N, O, Ho, Wo]: gy is on the strided grid.
pub(super) fn conv2d_weight_grad(ctx: &Ctx, o: &Conv2dWeightGrad) -> Result<Kernel, String> {
    let (x, gy) = (ctx.input(0, "x")?, ctx.input(1, "gy")?);
    correlate(ctx, gy, x, (o.stride, o.pad, o.kh, o.kw))
}

/// gw [C, O, kh, kw] from x [N, C, H, W] and gy [N, O, Ho, Wo]: x is on the strided grid.
pub(super) fn conv_transpose2d_weight_grad(
    ctx: &Ctx,
    o: &ConvTranspose2dWeightGrad,
) -> Result<Kernel, String> {
    let (x, gy) = (ctx.input(0, "x")?, ctx.input(1, "gy")?);
    correlate(ctx, x, gy, (o.stride, o.pad, o.kh, o.kw))
}

/// out[a, b, ki, kj] = sum over n, i, j of s[n, a, i, j] * g[n, b, i*stride + ki - pad, ...].
fn correlate(
    ctx: &Ctx,
    s: &ValuePlan,
    g: &ValuePlan,
    (stride, pad, kh, kw): (usize, usize, usize, usize),
) -> Result<Kernel, String> {
    let out = ctx.out()?;
    let mut b = KernelBuilder::default();
    b.load("s", s)?;
    b.load("g", g)?;
    b.store("out", out)?;
    b.dims("S", &s.shape)?;
    b.dims("G", &g.shape)?;
    let (a_blocks, b_blocks) = (
        ir::shape4(&s.shape)[1].div_ceil(TILE),
        ir::shape4(&g.shape)[1].div_ceil(TILE),
    );
    for (name, v) in [
        ("KH", kh),
        ("KW", kw),
        ("STRIDE", stride),
        ("PAD", pad),
        ("A_BLOCKS", a_blocks),
        ("B_BLOCKS", b_blocks),
    ] {
        b.u32(name, v as u64)?;
    }
    let count = (a_blocks * b_blocks * kh * kw) as u64;
    ctx.kernel(
        "weight_grad",
        WEIGHT_GRAD,
        b,
        Dispatch::Groups { count, wg: WG },
    )
}
