//! Convolutions as implicit GEMMs (`gemm/`): each op's template (`shaders/conv2d.wgsl`,
//! `shaders/conv_transpose2d.wgsl`) defines the operand functions the GEMM reads through. All
//! global memory goes through the generated `ld_`/`st_` accessors, so a fused load or store
//! composes with it.

use super::gemm::{gemm, Groups, RowTaps};
use super::grouped_conv;
use super::{Ctx, KernelBuilder};
use crate::{Kernel, ValuePlan};
use ir::ops::{Conv2d, ConvTranspose2d};

const CONV2D: &str = include_str!("../../../shaders/conv2d.wgsl");
const CONV_TRANSPOSE2D: &str = include_str!("../../../shaders/conv_transpose2d.wgsl");

pub(super) fn conv2d(ctx: &Ctx, o: &Conv2d) -> Result<Kernel, String> {
    if o.groups > 1 {
        return grouped_conv::conv(ctx, (o.stride, o.pad, o.bias, o.groups), false);
    }
    conv(ctx, ("conv2d", CONV2D), o.stride, o.pad, o.bias, false)
}

/// The output size (with its `out_pad`) is already the node's shape; the gather needs only
/// stride and pad.
pub(super) fn conv_transpose2d(ctx: &Ctx, o: &ConvTranspose2d) -> Result<Kernel, String> {
    if o.groups > 1 {
        return grouped_conv::conv(ctx, (o.stride, o.pad, o.bias, o.groups), true);
    }
    conv(
        ctx,
        ("conv_transpose2d", CONV_TRANSPOSE2D),
        o.stride,
        o.pad,
        o.bias,
        true,
    )
}

/// A conv's GEMM columns are its output pixels: the image size sets their count.
const PIXEL_COLUMNS: [bool; 3] = [false, true, false];

fn conv(
    ctx: &Ctx,
    (template, src): (&str, &str),
    stride: usize,
    pad: usize,
    bias: bool,
    phases: bool,
) -> Result<Kernel, String> {
    // k runs channel-major, so every column of a k step reads the same input channel.
    let mut b = KernelBuilder::default();
    b.channel_runs = true;
    let [x, w, y] = operands(ctx, &mut b, (stride, pad, bias))?;
    let [_, _, kh, kw] = ir::shape4(&w.shape);
    let [n, co, oh, ow] = ir::shape4(&y.shape);
    let cin = ir::shape4(&x.shape)[1];
    let (src, dispatch) = match phases {
        // One GEMM group per output phase (shaders/conv_transpose2d.wgsl), each sized for the
        // largest phase.
        true => {
            let (rows, cols) = (oh.div_ceil(stride), ow.div_ceil(stride));
            b.size("PH_ROWS", rows as u64)?;
            b.size("PW_COLS", cols as u64)?;
            let taps = kh.div_ceil(stride) * kw.div_ceil(stride);
            let sizes = [co, n * rows * cols, cin * taps];
            // A is the weight [C_in, C_out, KH, KW]: row m is C_out, k runs over (C_in, taps).
            gemm(
                &mut b,
                ctx,
                src,
                (sizes, PIXEL_COLUMNS),
                Groups::Phases(stride * stride),
                None,
            )?
        }
        // A is the weight itself, row-major (OIHW).
        false => {
            let sizes = [co, n * oh * ow, cin * kh * kw];
            let row = (stride == 1).then_some(RowTaps {
                taps: kw as u32,
                width: ow,
            });
            gemm(&mut b, ctx, src, (sizes, PIXEL_COLUMNS), Groups::One, row)?
        }
    };
    ctx.kernel(template, &src, b, dispatch)
}

/// A conv's operands in `b`: x, the weight, the bias (0 without one) and y, x's and y's dims,
/// and the window's KH, KW, STRIDE and PAD; the three values.
pub(super) fn operands<'a>(
    ctx: &'a Ctx,
    b: &mut KernelBuilder,
    (stride, pad, bias): (usize, usize, bool),
) -> Result<[&'a ValuePlan; 3], String> {
    let (x, w, y) = (ctx.input(0, "x")?, ctx.input(1, "weight")?, ctx.out()?);
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
    for (name, v) in [("KH", kh), ("KW", kw), ("STRIDE", stride), ("PAD", pad)] {
        b.u32(name, v as u64)?;
    }
    Ok([x, w, y])
}
