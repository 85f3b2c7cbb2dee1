//! Ops that only move elements (broadcast, channel slice, reshape): elementwise copies over the
//! output, each reading its input through the accessors, so split values need nothing special.

use super::elementwise::{finish, value_fn};
use super::{Ctx, KernelBuilder};
use crate::{Kernel, Piece, ValuePlan};
use ir::ops::ChannelSlice;

/// Broadcast: the accessor of an operand ignores the coordinate of its size-1 dims.
pub(super) fn expand(ctx: &Ctx) -> Result<Vec<Kernel>, String> {
    super::elementwise::copy(ctx).map(|k| vec![k])
}

/// Channels c0..c1 of x; no kernel when the plan already places the output on those channels
/// of x (an alias), which a memory planner may do since the slice is never written again.
pub(super) fn channel_slice(ctx: &Ctx, o: &ChannelSlice) -> Result<Vec<Kernel>, String> {
    let (x, y) = (ctx.input(0, "x")?, ctx.out()?);
    if y.pieces == restrict(x, o.c0, o.c1) {
        return Ok(vec![]);
    }
    let mut b = KernelBuilder::default();
    b.load("x", x)?;
    b.u32("SLICE_C0", o.c0 as u64)?;
    b.code(&value_fn(&[], "ld_x(n, c + SLICE_C0, h, w)"));
    finish(ctx, b).map(|k| vec![k])
}

/// The same elements in dense order: the output's linear index, decoded in x's shape.
pub(super) fn reshape(ctx: &Ctx) -> Result<Vec<Kernel>, String> {
    let x = ctx.input(0, "x")?;
    let mut b = KernelBuilder::default();
    b.load("x", x)?;
    b.dims("X", &x.shape)?;
    b.code(&value_fn(
        &[
            "let i = ((n * D_C + c) * D_H + h) * D_W + w;",
            "let q = unflat(i, vec4<u32>(X_N, X_C, X_H, X_W));",
        ],
        "ld_x(q.x, q.y, q.z, q.w)",
    ));
    finish(ctx, b).map(|k| vec![k])
}

/// x's pieces restricted to channels c0..c1, renumbered from 0 (as a concat slice's are).
fn restrict(x: &ValuePlan, c0: usize, c1: usize) -> Vec<Piece> {
    (x.pieces.iter())
        .filter(|p| p.c0 < c1 && c0 < p.c1)
        .map(|p| {
            let (a, b) = (p.c0.max(c0), p.c1.min(c1));
            Piece {
                c0: a - c0,
                c1: b - c0,
                offset: p.offset + (a - p.c0) as u64 * p.strides[1],
                ..p.clone()
            }
        })
        .collect()
}
