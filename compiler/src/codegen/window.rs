//! Ops that read a spatial window of their input: reflection padding and max pooling, and their
//! gradients (gathers: each output element sums what reaches it, so no atomics are needed).

use super::grouped_conv::runs_a_row;
use super::{Ctx, Dispatch, KernelBuilder};
use crate::Kernel;
use ir::ops::{MaxPool2d, MaxPool2dGrad, ReflectPad, ReflectPadGrad};
use std::fmt::Write;

const REFLECT_PAD: &str = include_str!("../../../shaders/reflect_pad.wgsl");
const MAX_POOL2D: &str = include_str!("../../../shaders/max_pool2d.wgsl");
const REFLECT_PAD_GRAD: &str = include_str!("../../../shaders/reflect_pad_grad.wgsl");
const MAX_POOL2D_GRAD: &str = include_str!("../../../shaders/max_pool2d_grad.wgsl");
const MAX_POOL2D_GRAD_CELLS: &str = include_str!("../../../shaders/max_pool2d_grad_cells.wgsl");
/// The first maximum of a pooling window, which both max-pool gradients find.
const POOL_ARGMAX: &str = include_str!("../../../shaders/pool_argmax.wgsl");
/// The windows holding an input pixel, which pooling gradients gather over.
pub(super) const POOL_WINDOWS: &str = include_str!("../../../shaders/pool_windows.wgsl");

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

/// Outputs of a row per max-pool invocation (the last run of a row cut at its end): a run's
/// windows share their overlapping columns, which halved the generator's 3x3 stride-1 pools on
/// lavapipe (`runtime/examples/jit_cost.rs`).
const POOL_RUN: usize = 4;

pub(super) fn max_pool2d(ctx: &Ctx, o: &MaxPool2d) -> Result<Kernel, String> {
    let (mut b, total) = xy(ctx)?;
    b.u32("K", o.kernel as u64)?;
    b.u32("STRIDE", o.stride as u64)?;
    b.u32("PAD", o.pad as u64)?;
    let run = POOL_RUN;
    let (mut decl, mut step) = (String::new(), String::new());
    let store = super::grouped_conv::run_stores(ctx, &mut b, run, "m")?;
    for r in 0..run {
        let _ = writeln!(decl, "    var m_{r} = LOWEST;");
    }
    for t in 0..(run - 1) * o.stride + o.kernel {
        let _ = writeln!(
            step,
            "        let v_{t} = x_or_lowest(p.x, p.y, u32(h), w0 + {t});"
        );
    }
    for r in 0..run {
        for kw in 0..o.kernel {
            let _ = writeln!(step, "        m_{r} = max(m_{r}, v_{});", r * o.stride + kw);
        }
    }
    let src = (MAX_POOL2D.replace("RUN_DECL\n", &decl))
        .replace("RUN_STEP\n", &step)
        .replace("RUN_STORE\n", &store);
    let total = total / ctx.out()?.shape[3] as u64 * runs_a_row(ctx, run)?;
    ctx.kernel("max_pool2d", &src, b, Dispatch::Threads { total, wg: 256 })
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

/// Each input pixel gathers gy from the windows whose first maximum it is; where windows do
/// not overlap (no padding, STRIDE >= K), each window writes its cell of pixels instead, its
/// maximum found once rather than once per pixel.
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
    b.code(POOL_ARGMAX);
    if o.pad == 0 && o.stride >= o.kernel {
        let [n, c, h, w] = ir::shape4(&x.shape);
        let total = (n * c * h.div_ceil(o.stride) * w.div_ceil(o.stride)) as u64;
        let wg = 256;
        return ctx.kernel(
            "max_pool2d_grad",
            MAX_POOL2D_GRAD_CELLS,
            b,
            Dispatch::Threads { total, wg },
        );
    }
    b.code(POOL_WINDOWS);
    let gather = match unrolled_gather(o.kernel, o.stride) {
        Some(code) => code,
        None => LOOP_GATHER.to_string(),
    };
    let src = MAX_POOL2D_GRAD.replace("GATHER\n", &gather);
    let total = ir::numel(&gx.shape) as u64;
    ctx.kernel(
        "max_pool2d_grad",
        &src,
        b,
        Dispatch::Threads { total, wg: 256 },
    )
}

/// The most compare-and-selects (windows holding a pixel times their elements) the unrolled
/// gather is generated with: a 3x3 stride-1 pool takes 81, a 5x5 one 625 (looped instead).
const MAX_UNROLLED_COMPARES: usize = 256;

/// Each window holding the pixel found by a loop over its elements (`argmax`): K x K loads per
/// window, K^2 windows for stride 1.
const LOOP_GATHER: &str = "    let rows = windows(p.z, GY_H);
    let cols = windows(p.w, GY_W);
    let me = vec2<u32>(p.z, p.w);
    for (var oh = rows.x; oh < rows.y; oh++) {
        for (var ow = cols.x; ow < cols.y; ow++) {
            if (all(argmax(p.x, p.y, oh, ow) == me)) {
                acc += ld_gy(p.x, p.y, oh, ow);
            }
        }
    }
";

/// The gather unrolled: the at most `ceil(K / STRIDE)` windows per axis that can hold the pixel
/// cover `nb = (ceil(K / STRIDE) - 1) * STRIDE + K` rows and columns of the input from (hb, wb),
/// loaded once each (25 loads for a 3x3 stride-1 pool, where the loop makes 81); each window's
/// first maximum is then a chain of selects over those values. None where that chain would be
/// long (large windows).
fn unrolled_gather(k: usize, s: usize) -> Option<String> {
    let nc = k.div_ceil(s);
    if nc * nc * k * k > MAX_UNROLLED_COMPARES {
        return None;
    }
    let nb = (nc - 1) * s + k;
    let mut out = String::new();
    let last = nc - 1;
    let _ = writeln!(
        out,
        "    let oh0 = (i32(p.z) + i32(PAD)) / i32(STRIDE) - {last};"
    );
    let _ = writeln!(
        out,
        "    let ow0 = (i32(p.w) + i32(PAD)) / i32(STRIDE) - {last};"
    );
    out.push_str("    let hb = oh0 * i32(STRIDE) - i32(PAD);\n");
    out.push_str("    let wb = ow0 * i32(STRIDE) - i32(PAD);\n");
    for t in 0..nb {
        let _ = writeln!(
            out,
            "    let in_r{t} = hb + {t} >= 0 && hb + {t} < i32(X_H);"
        );
        let _ = writeln!(
            out,
            "    let in_c{t} = wb + {t} >= 0 && wb + {t} < i32(X_W);"
        );
    }
    for r in 0..nb {
        for c in 0..nb {
            let _ = writeln!(
                out,
                "    let v_{r}_{c} = x_at(p.x, p.y, hb + {r}, wb + {c});"
            );
        }
    }
    for jr in 0..nc {
        for jc in 0..nc {
            let (r0, c0) = (jr * s, jc * s);
            let _ = writeln!(out, "    {{");
            let _ = writeln!(out, "        let oh = oh0 + {jr};");
            let _ = writeln!(out, "        let ow = ow0 + {jc};");
            // The pixel's place in this window, in the window's own rows and columns.
            let _ = writeln!(out, "        let kh = i32(p.z) - hb - {r0};");
            let _ = writeln!(out, "        let kw = i32(p.w) - wb - {c0};");
            out.push_str(
                "        if (oh >= 0 && oh < i32(GY_H) && ow >= 0 && ow < i32(GY_W) && kh >= 0 && kh < i32(K) && kw >= 0 && kw < i32(K)) {\n",
            );
            out.push_str("            var best = -1;\n            var m = 0.0;\n");
            for kh in 0..k {
                for kw in 0..k {
                    let (r, c) = (r0 + kh, c0 + kw);
                    let v = format!("v_{r}_{c}");
                    let _ = writeln!(
                        out,
                        "            if (in_r{r} && in_c{c} && (best < 0 || {v} > m || {v} != {v})) {{ m = {v}; best = {}; }}",
                        kh * k + kw
                    );
                }
            }
            let _ = writeln!(
                out,
                "            if (best == kh * i32(K) + kw) {{ acc += ld_gy(p.x, p.y, u32(oh), u32(ow)); }}"
            );
            out.push_str("        }\n    }\n");
        }
    }
    Some(out)
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
