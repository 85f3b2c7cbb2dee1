//! Ops that gather their output from other positions of their input: pixel shuffles, resizes,
//! average pooling and the adjoints of the last two. Each is the elementwise template over its
//! output with the op's own `value` (a template in `shaders/`; the shuffles' index map from
//! `fused.rs`, where fusion also computes them in readers' loads), reading through the
//! accessors, so values fused into its loads compose as in any elementwise kernel.

use super::elementwise::finish_as;
use super::window::POOL_WINDOWS;
use super::{Ctx, KernelBuilder};
use crate::Kernel;
use ir::ops::{AvgPool, AvgPoolGrad, ResizeMode};

const RESIZE_TAPS: &str = include_str!("../../../shaders/resize_taps.wgsl");
const RESIZE: &str = include_str!("../../../shaders/resize.wgsl");
const RESIZE_GRAD: &str = include_str!("../../../shaders/resize_grad.wgsl");
const AVG_POOL: &str = include_str!("../../../shaders/avg_pool.wgsl");
const AVG_POOL_GRAD: &str = include_str!("../../../shaders/avg_pool_grad.wgsl");

/// A pixel shuffle or unshuffle: its index map is the one fusion computes in readers' loads
/// (`fused::body`), so the op is written once.
pub(super) fn pixel_shuffle(ctx: &Ctx) -> Result<Kernel, String> {
    let mut b = KernelBuilder::default();
    b.load("x", ctx.input(0, "x")?)?;
    let load = |_: usize, at: &str| format!("ld_x({at})");
    let body = super::fused::body(&ctx.node.op, &ctx.node.shape, &load, "SHUFFLE", false)?;
    b.code(&body.function("fn value(n: u32, c: u32, h: u32, w: u32) -> f32"));
    // Not "elementwise": the plan checker lets only index-for-index kernels write what they read.
    finish_as(ctx, b, &ctx.node.op.kind_name())
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
