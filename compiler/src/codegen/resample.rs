//! Ops that gather their output from other positions of their input: pixel shuffles, resizes,
//! average pooling and the adjoints of the last two. Each is the elementwise template over its
//! output with the op's own `value` (a template in `shaders/`), reading through the accessors,
//! so values fused into its loads compose as in any elementwise kernel.

use super::elementwise::finish_as;
use super::window::POOL_WINDOWS;
use super::{Ctx, KernelBuilder};
use crate::Kernel;
use ir::ops::{AvgPool, AvgPoolGrad, ResizeMode};

const PIXEL_SHUFFLE: &str = include_str!("../../../shaders/pixel_shuffle.wgsl");
const PIXEL_UNSHUFFLE: &str = include_str!("../../../shaders/pixel_unshuffle.wgsl");
const RESIZE_TAPS: &str = include_str!("../../../shaders/resize_taps.wgsl");
const RESIZE: &str = include_str!("../../../shaders/resize.wgsl");
const RESIZE_GRAD: &str = include_str!("../../../shaders/resize_grad.wgsl");
const AVG_POOL: &str = include_str!("../../../shaders/avg_pool.wgsl");
const AVG_POOL_GRAD: &str = include_str!("../../../shaders/avg_pool_grad.wgsl");

/// Depth to space (`unshuffle` false) or back, by `factor`.
pub(super) fn pixel_shuffle(ctx: &Ctx, factor: usize, unshuffle: bool) -> Result<Kernel, String> {
    let mut b = operand(ctx, "x", "X")?;
    b.u32("R", factor as u64)?;
    let (template, src) = match unshuffle {
        false => ("pixel_shuffle", PIXEL_SHUFFLE),
        true => ("pixel_unshuffle", PIXEL_UNSHUFFLE),
    };
    b.code(src);
    finish_as(ctx, b, template)
}

/// A resize (`grad` false, reading x) or its adjoint (reading gy into gx).
pub(super) fn resize(
    ctx: &Ctx,
    factor: usize,
    mode: ResizeMode,
    grad: bool,
) -> Result<Kernel, String> {
    let mut b = match grad {
        false => operand(ctx, "x", "X")?,
        true => {
            let mut b = operand(ctx, "gy", "GY")?;
            b.dims("GX", &ctx.out()?.shape)?;
            b
        }
    };
    b.u32("S", factor as u64)?;
    b.u32("BILINEAR", u64::from(mode == ResizeMode::Bilinear))?;
    b.code(RESIZE_TAPS);
    let (template, src) = match grad {
        false => ("resize", RESIZE),
        true => ("resize_grad", RESIZE_GRAD),
    };
    b.code(src);
    finish_as(ctx, b, template)
}

pub(super) fn avg_pool(ctx: &Ctx, o: &AvgPool) -> Result<Kernel, String> {
    let mut b = operand(ctx, "x", "X")?;
    window(&mut b, o.kernel, o.stride, o.pad)?;
    b.code(AVG_POOL);
    finish_as(ctx, b, "avg_pool")
}

pub(super) fn avg_pool_grad(ctx: &Ctx, o: &AvgPoolGrad) -> Result<Kernel, String> {
    let mut b = operand(ctx, "gy", "GY")?;
    window(&mut b, o.kernel, o.stride, o.pad)?;
    b.code(POOL_WINDOWS);
    b.code(AVG_POOL_GRAD);
    finish_as(ctx, b, "avg_pool_grad")
}

/// A builder that loads input 0 as `name`, its shape as the dims `dims`.
fn operand(ctx: &Ctx, name: &str, dims: &str) -> Result<KernelBuilder, String> {
    let x = ctx.input(0, name)?;
    let mut b = KernelBuilder::default();
    b.load(name, x)?;
    b.dims(dims, &x.shape)?;
    Ok(b)
}

fn window(b: &mut KernelBuilder, k: usize, s: usize, p: usize) -> Result<(), String> {
    b.u32("K", k as u64)?;
    b.u32("STRIDE", s as u64)?;
    b.u32("PAD", p as u64)
}
