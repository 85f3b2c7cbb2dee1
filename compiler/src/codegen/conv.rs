//! Direct convolution and transposed convolution (gather form), with register tiles: an
//! invocation computes 4 consecutive output channels (one `vec4<f32>`) of one output pixel, or
//! for `conv2d` of 4 consecutive pixels of a row, so each loaded input and weight serves several
//! multiply-adds; the kh x kw loops run over constants so they unroll.
//! (Implicit-GEMM kernels with tuned tiles replace these later.)

use super::{Ctx, Dispatch, KernelBuilder};
use crate::Kernel;
use ir::ops::{Conv2d, ConvTranspose2d};

const CONV2D: &str = include_str!("../../../shaders/conv2d.wgsl");
const CONV_TRANSPOSE2D: &str = include_str!("../../../shaders/conv_transpose2d.wgsl");
/// Output channels per invocation (the templates' `vec4<f32>`). Pixels per invocation are each
/// template's `w_tile`: 4 for `conv2d`, 1 for `conv_transpose2d` (whose gather skips most taps).
const CO_TILE: usize = 4;

pub(super) fn conv2d(ctx: &Ctx, o: &Conv2d) -> Result<Kernel, String> {
    conv(ctx, ("conv2d", CONV2D, 4), o.stride, o.pad, o.bias)
}

/// The output size (with its `out_pad`) is already the node's shape; the gather needs only
/// stride and pad.
pub(super) fn conv_transpose2d(ctx: &Ctx, o: &ConvTranspose2d) -> Result<Kernel, String> {
    conv(
        ctx,
        ("conv_transpose2d", CONV_TRANSPOSE2D, 1),
        o.stride,
        o.pad,
        o.bias,
    )
}

fn conv(
    ctx: &Ctx,
    (template, src, w_tile): (&str, &str, usize),
    stride: usize,
    pad: usize,
    bias: bool,
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
    let [n, co, oh, ow] = ir::shape4(&y.shape);
    let blocks = co.div_ceil(CO_TILE);
    for (name, v) in [
        ("KH", kh),
        ("KW", kw),
        ("STRIDE", stride),
        ("PAD", pad),
        ("CO_BLOCKS", blocks),
        ("W_BLOCKS", ow.div_ceil(w_tile)),
    ] {
        b.u32(name, v as u64)?;
    }
    let total = (n * blocks * oh * ow.div_ceil(w_tile)) as u64;
    ctx.kernel(template, src, b, Dispatch::Threads { total, wg: 64 })
}
