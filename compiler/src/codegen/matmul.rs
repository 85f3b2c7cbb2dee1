//! Batched matrix products as a batch of GEMMs (`gemm/`), one group per batch position; the
//! template (`shaders/matmul.wgsl`) reads each operand in its own or its transposed layout.

use super::gemm::{gemm, Groups};
use super::{Ctx, KernelBuilder};
use crate::Kernel;
use ir::ops::MatMul;

const MATMUL: &str = include_str!("../../../shaders/matmul.wgsl");

pub(super) fn matmul(ctx: &Ctx, o: &MatMul) -> Result<Kernel, String> {
    let (a, bv, y) = (ctx.input(0, "a")?, ctx.input(1, "b")?, ctx.out()?);
    let mut b = KernelBuilder::default();
    b.load("a", a)?;
    b.load("b", bv)?;
    b.store("y", y)?;
    b.dims("Y", &y.shape)?;
    let [b1, b2, m, n] = ir::shape4(&y.shape);
    let [_, _, a_rows, a_cols] = ir::shape4(&a.shape);
    let k = if o.trans_a { a_rows } else { a_cols };
    // Row m and k of A, k and column n of B, at the operands' own coordinates.
    let a_at = if o.trans_a { "kk, m" } else { "m, kk" };
    let b_at = if o.trans_b { "n, kk" } else { "kk, n" };
    let src = MATMUL.replace("A_AT", a_at).replace("B_AT", b_at);
    // Any of a product's extents may be a count of pixels (attention over an image's).
    let sizes = ([m, n, k], [true; 3]);
    let (src, dispatch) = gemm(&mut b, ctx, &src, sizes, Groups::Batch(b1 * b2), None)?;
    ctx.kernel("matmul", &src, b, dispatch)
}
