//! The kernels of Winograd's products (`ir/src/ops/winograd/`): three transforms, one
//! invocation per matrix they transform, written out from the transform matrices (zero
//! coefficients dropped, so F(4, 3)'s input transform is a few adds per value), and the
//! products as a batch of GEMMs in the conv GEMM template (`gemm::gemm`). The kinds differ
//! only in their matrices and in where a tile's patch and outputs lie.

use super::gemm::{gemm, Groups};
use super::{Ctx, Dispatch, KernelBuilder};
use crate::Kernel;
use ir::ops::{winograd_tiles, WinogradInput, WinogradOutput, WinogradTransforms, WinogradWeight};
use std::fmt::Write;

const WEIGHT: &str = include_str!("../../../shaders/winograd_weight.wgsl");
const INPUT: &str = include_str!("../../../shaders/winograd_input.wgsl");
const GEMM: &str = include_str!("../../../shaders/winograd_gemm.wgsl");
const OUTPUT: &str = include_str!("../../../shaders/winograd_output.wgsl");

pub(super) fn weight(ctx: &Ctx, o: &WinogradWeight) -> Result<Kernel, String> {
    let tf = WinogradTransforms::of(o.tile, o.kind)?;
    let (w, u) = (ctx.input(0, "weight")?, ctx.out()?);
    let mut b = KernelBuilder::default();
    b.load("w", w)?;
    b.store("u", u)?;
    let [_, _, c_in, _] = ir::shape4(&u.shape);
    b.u32("C_IN", c_in as u64)?;
    let taps = grid(3, 3, |r, s| format!("g_{r}_{s}"));
    let mut code = String::new();
    for (r, row) in taps.iter().enumerate() {
        for (s, name) in row.iter().enumerate() {
            let _ = match o.transposed {
                true => writeln!(code, "    let {name} = ld_w(c, o, {}u, {}u);", 2 - r, 2 - s),
                false => writeln!(code, "    let {name} = ld_w(o, c, {r}u, {s}u);"),
            };
        }
    }
    let out = transform2d(&tf.g, &taps, "u", &mut code);
    for (a, name) in out.iter().flatten().enumerate() {
        let _ = writeln!(code, "    st_u({a}u, o, c, 0u, {name});");
    }
    let weights = w.shape[0] * w.shape[1];
    transform_kernel(ctx, ("winograd_weight", WEIGHT), &code, b, weights)
}

pub(super) fn input(ctx: &Ctx, o: &WinogradInput) -> Result<Kernel, String> {
    let tf = WinogradTransforms::of(o.tile, o.kind)?;
    let (x, v) = (ctx.input(0, "x")?, ctx.out()?);
    let mut b = KernelBuilder::default();
    // An invocation loads one channel's patch: an inlined norm's statistics once, not per value.
    b.channel_runs = true;
    b.load("x", x)?;
    b.store("v", v)?;
    b.dims("X", &x.shape)?;
    b.dims("V", &v.shape)?;
    let [_, _, h, w] = ir::shape4(&x.shape);
    let (_, tw) = (o.tiles(&tf, h, w))
        .ok_or_else(|| format!("winograd_input: no output for a {h}x{w} input"))?;
    b.u32("STEP", tf.step as u64)?;
    b.size("TILES_W", tw as u64)?;
    b.u32("PAD", o.pad as u64)?;
    let patch = grid(tf.patch(), tf.patch(), |k, l| format!("d_{k}_{l}"));
    let mut code = String::new();
    for (k, row) in patch.iter().enumerate() {
        for (l, name) in row.iter().enumerate() {
            let _ = writeln!(code, "    let {name} = x_at(n, c, h0 + {k}, w0 + {l});");
        }
    }
    let out = transform2d(&tf.bt, &patch, "v", &mut code);
    for (a, name) in out.iter().flatten().enumerate() {
        let _ = writeln!(code, "    st_v({a}u, c, n, t, {name});");
    }
    let alpha = tf.alpha();
    let patches = ir::numel(&v.shape) / (alpha * alpha);
    transform_kernel(ctx, ("winograd_input", INPUT), &code, b, patches)
}

/// m[a] = u[a] v[a]: rows are output channels, k the input channels, columns (n, tile); A
/// groups, each of the GEMM's whole k range.
pub(super) fn products(ctx: &Ctx) -> Result<Kernel, String> {
    let (u, v, m) = (ctx.input(0, "u")?, ctx.input(1, "v")?, ctx.out()?);
    let mut b = KernelBuilder::default();
    b.load("u", u)?;
    b.load("v", v)?;
    b.store("m", m)?;
    b.dims("V", &v.shape)?;
    let [a, o, c, _] = ir::shape4(&u.shape);
    let [_, _, n, t] = ir::shape4(&v.shape);
    let sizes = ([o, n * t, c], [false, true, false]);
    let (src, dispatch) = gemm(&mut b, ctx, GEMM, sizes, Groups::Batch(a), None)?;
    ctx.kernel("winograd_gemm", &src, b, dispatch)
}

pub(super) fn output(ctx: &Ctx, o: &WinogradOutput) -> Result<Kernel, String> {
    let tf = WinogradTransforms::of(o.tile, o.kind)?;
    let (m, y) = (ctx.input(0, "m")?, ctx.out()?);
    let mut b = KernelBuilder::default();
    b.load("m", m)?;
    match o.bias {
        true => b.load("b", ctx.input(1, "bias")?)?,
        false => b.zero("b"),
    }
    b.store("y", y)?;
    b.dims("M", &m.shape)?;
    b.dims("Y", &y.shape)?;
    let out_tile = tf.out_tile();
    let (_, tw) = winograd_tiles(out_tile, o.height, o.width);
    b.u32("TILE", out_tile as u64)?;
    b.size("TILES_W", tw as u64)?;
    let alpha = tf.alpha();
    let products = grid(alpha, alpha, |i, j| format!("m_{i}_{j}"));
    let mut code = String::new();
    for (a, name) in products.iter().flatten().enumerate() {
        let _ = writeln!(code, "    let {name} = ld_m({a}u, o, n, t);");
    }
    let out = transform2d(&tf.at, &products, "y", &mut code);
    let _ = writeln!(code, "    var out: array<f32, {}>;", out_tile * out_tile);
    for (e, name) in out.iter().flatten().enumerate() {
        let _ = writeln!(code, "    out[{e}] = {name};");
    }
    let tiles = ir::numel(&m.shape) / (alpha * alpha);
    transform_kernel(ctx, ("winograd_output", OUTPUT), &code, b, tiles)
}

/// The kernel of a transform's `template` with its `code` in place of TRANSFORM, one invocation
/// per matrix it transforms (`count` of them).
fn transform_kernel(
    ctx: &Ctx,
    (name, template): (&str, &str),
    code: &str,
    b: KernelBuilder,
    count: usize,
) -> Result<Kernel, String> {
    let src = template.replace("TRANSFORM\n", code);
    let total = count as u64;
    ctx.kernel(name, &src, b, Dispatch::Threads { total, wg: 64 })
}

/// A `rows` x `cols` grid of names.
fn grid(rows: usize, cols: usize, name: impl Fn(usize, usize) -> String) -> Vec<Vec<String>> {
    (0..rows)
        .map(|i| (0..cols).map(|j| name(i, j)).collect())
        .collect()
}

/// `L X LT` for the matrix of named values `x`, as WGSL lets appended to `code`: first the
/// rows `{prefix}r_i_l = sum_k L[i][k] x[k][l]`, then `{prefix}_i_j = sum_l L[j][l] r[i][l]`.
/// Returns the names of the result.
fn transform2d(
    l: &[Vec<f64>],
    x: &[Vec<String>],
    prefix: &str,
    code: &mut String,
) -> Vec<Vec<String>> {
    let cols = x.first().map_or(0, Vec::len);
    let rows = grid(l.len(), cols, |i, c| format!("{prefix}r_{i}_{c}"));
    for (i, row) in rows.iter().enumerate() {
        for (c, name) in row.iter().enumerate() {
            let column: Vec<&str> = x.iter().map(|r| r[c].as_str()).collect();
            let _ = writeln!(code, "    let {name} = {};", combination(&l[i], &column));
        }
    }
    let out = grid(l.len(), l.len(), |i, j| format!("{prefix}_{i}_{j}"));
    for (i, row) in out.iter().enumerate() {
        for (j, name) in row.iter().enumerate() {
            let terms: Vec<&str> = rows[i].iter().map(String::as_str).collect();
            let _ = writeln!(code, "    let {name} = {};", combination(&l[j], &terms));
        }
    }
    out
}

/// `sum_k coefs[k] * terms[k]` in WGSL, without the zero terms and without multiplying by +-1.
fn combination(coefs: &[f64], terms: &[&str]) -> String {
    let mut out = String::new();
    for (&c, t) in coefs.iter().zip(terms).filter(|(&c, _)| c != 0.0) {
        let (sign, mag) = if c < 0.0 { (" - ", -c) } else { (" + ", c) };
        let term = match mag == 1.0 {
            true => t.to_string(),
            false => format!("{} * {t}", ir::ops::wgsl_f32(mag)),
        };
        match (out.is_empty(), c < 0.0) {
            (true, true) => out = format!("-{term}"),
            (true, false) => out = term,
            (false, _) => out = format!("{out}{sign}{term}"),
        }
    }
    match out.is_empty() {
        true => "0.0".into(),
        false => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_skip_zeros_and_unit_factors() {
        assert_eq!(
            combination(&[4., 0., -5., 0., 1., 0.], &["a", "b", "c", "d", "e", "f"]),
            "4.0 * a - 5.0 * c + e"
        );
        assert_eq!(
            combination(&[0., -1., 0.5], &["a", "b", "c"]),
            "-b + 0.5 * c"
        );
        assert_eq!(combination(&[0., 0.], &["a", "b"]), "0.0");
    }
}
