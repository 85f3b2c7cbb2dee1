//! Ops that read a spatial window of their input: reflection padding and max pooling.

use super::{Ctx, Dispatch, KernelBuilder};
use crate::Kernel;
use ir::ops::{MaxPool2d, ReflectPad};

const REFLECT_PAD: &str = include_str!("../../../shaders/reflect_pad.wgsl");
const MAX_POOL2D: &str = include_str!("../../../shaders/max_pool2d.wgsl");

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
