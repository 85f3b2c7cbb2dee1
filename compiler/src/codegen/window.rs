//! Ops that read a spatial window of their input: reflection padding and max pooling, and their
//! gradients (gathers: each output element sums what reaches it, so no atomics are needed).

use super::{Ctx, Dispatch, KernelBuilder};
use crate::Kernel;
use ir::ops::{MaxPool2d, MaxPool2dGrad, ReflectPad, ReflectPadGrad};

const REFLECT_PAD: &str = include_str!("../../../shaders/reflect_pad.wgsl");
const MAX_POOL2D: &str = include_str!("../../../shaders/max_pool2d.wgsl");
const REFLECT_PAD_GRAD: &str = include_str!("../../../shaders/reflect_pad_grad.wgsl");
const MAX_POOL2D_GRAD: &str = include_str!("../../../shaders/max_pool2d_grad.wgsl");

pub(super) fn reflect_pad(ctx: &Ctx, o: &ReflectPad) -> Result<Kernel, String> {
    let (mut b, total) = xy(ctx)?;
    b.u32("PAD_TOP", o.pads[0] as u64)?;
    b.u32("PAD_LEFT", o.pads[2] as u64)?;
    ctx.kernel(
        "reflect_pad",
        REFLECT_PAD,
        b,
        Dispatch::Threads { total, wg: 256 },
    )
}

pub(super) fn max_pool2d(ctx: &Ctx, o: &MaxPool2d) -> Result<Kernel, String> {
    let (mut b, total) = xy(ctx)?;
    b.u32("K", o.kernel as u64)?;
    b.u32("STRIDE", o.stride as u64)?;
    b.u32("PAD", o.pad as u64)?;
    ctx.kernel(
        "max_pool2d",
        MAX_POOL2D,
        b,
        Dispatch::Threads { total, wg: 256 },
    )
}

/// Operands `x` and `y` with their shapes, and one invocation per output element.
fn xy(ctx: &Ctx) -> Result<(KernelBuilder, u64), String> {
    let (x, y) = (ctx.input(0, "x")?, ctx.out()?);
    let mut b = KernelBuilder::default();
    b.load("x", x)?;
    b.store("y", y)?;
    b.dims("X", &x.shape)?;
    b.dims("Y", &y.shape)?;
    Ok((b, ir::numel(&y.shape) as u64))
}

/// Each input pixel gathers gy from the windows whose first maximum it is.
pub(super) fn max_pool2d_grad(ctx: &Ctx, o: &MaxPool2dGrad) -> Result<Kernel, String> {
    let (x, gy, gx) = (ctx.input(0, "x")?, ctx.input(1, "gy")?, ctx.out()?);
    let mut b = KernelBuilder::default();
    b.load("x", x)?;
    b.load("gy", gy)?;
    b.store("gx", gx)?;
    b.dims("X", &x.shape)?;
    b.dims("GY", &gy.shape)?;
    b.u32("K", o.kernel as u64)?;
    b.u32("STRIDE", o.stride as u64)?;
    b.u32("PAD", o.pad as u64)?;
    let total = ir::numel(&gx.shape) as u64;
    ctx.kernel(
        "max_pool2d_grad",
        MAX_POOL2D_GRAD,
        b,
        Dispatch::Threads { total, wg: 256 },
    )
}

/// Each pixel of gx gathers the padded positions that reflect onto it.
pub(super) fn reflect_pad_grad(ctx: &Ctx, o: &ReflectPadGrad) -> Result<Kernel, String> {
    let (gy, gx) = (ctx.input(0, "gy")?, ctx.out()?);
    let mut b = KernelBuilder::default();
    b.load("gy", gy)?;
    b.store("gx", gx)?;
    b.dims("GX", &gx.shape)?;
    let [top, bottom, left, right] = o.pads;
    for (name, v) in [
        ("PAD_TOP", top),
        ("PAD_BOTTOM", bottom),
        ("PAD_LEFT", left),
        ("PAD_RIGHT", right),
    ] {
        b.u32(name, v as u64)?;
    }
    let total = ir::numel(&gx.shape) as u64;
    ctx.kernel(
        "reflect_pad_grad",
        REFLECT_PAD_GRAD,
        b,
        Dispatch::Threads { total, wg: 256 },
    )
}
