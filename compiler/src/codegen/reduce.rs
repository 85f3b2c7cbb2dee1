//! Kernels that reduce with a workgroup (one workgroup per output item, summed by `wg_sum`):
//! instance normalisation, Sum/Mean reductions and softmax.

use super::{Ctx, Dispatch, KernelBuilder};
use crate::{Kernel, ValuePlan};
use ir::ops::{InstanceNorm, InstanceNormStats, LayerNorm, Reduce, ReduceKind, Softmax};

const INSTANCE_NORM: &str = include_str!("../../../shaders/instance_norm.wgsl");
const LAYER_NORM: &str = include_str!("../../../shaders/layer_norm.wgsl");
const INSTANCE_NORM_STATS: &str = include_str!("../../../shaders/instance_norm_stats.wgsl");
const PLANE_MEANS: &str = include_str!("../../../shaders/plane_means.wgsl");
const REDUCE: &str = include_str!("../../../shaders/reduce.wgsl");
const WG_SUM: &str = include_str!("../../../shaders/wg_sum.wgsl");
const WG_SUM_SUBGROUP: &str = include_str!("../../../shaders/wg_sum_subgroup.wgsl");
const PLANE_WALK_FNS: &str = include_str!("../../../shaders/plane_walk.wgsl");
const SOFTMAX: &str = include_str!("../../../shaders/softmax.wgsl");
const WG_MAX: &str = include_str!("../../../shaders/wg_max.wgsl");
const WG_MAX_SUBGROUP: &str = include_str!("../../../shaders/wg_max_subgroup.wgsl");
/// Invocations per workgroup of the tree sum (a power of two).
const WG: u32 = 256;

/// A reduction template with its `wg_sum`, and the workgroup size that goes with it: one
/// subgroup summing with `subgroupAdd` where the target asks for it
/// (`Target::subgroup_reductions`), else a tree of `WG` invocations.
fn summing(ctx: &Ctx, template: &str) -> (String, u32) {
    match subgroup(ctx) {
        Some(lanes) => (format!("{WG_SUM_SUBGROUP}\n{template}"), lanes),
        None => (format!("{WG_SUM}\n{template}"), WG),
    }
}

/// The subgroup size where the target reduces with subgroups.
fn subgroup(ctx: &Ctx) -> Option<u32> {
    let t = ctx.target;
    (t.policy.subgroup_reductions && t.subgroup_size() > 0).then(|| t.subgroup_size())
}

/// A normalisation's kernel builder: its input `x` (returned) and output `y`, x's dims, `EPS`.
fn normalising<'a>(ctx: &'a Ctx, eps: f64) -> Result<(KernelBuilder, &'a ValuePlan), String> {
    let (x, y) = (ctx.input(0, "x")?, ctx.out()?);
    let mut b = KernelBuilder::default();
    b.load("x", x)?;
    b.store("y", y)?;
    b.dims("X", &x.shape)?;
    b.f32("EPS", eps);
    Ok((b, x))
}

/// One workgroup per (n, c): mean, then variance about it (two passes, for accuracy), then
/// normalise.
pub(super) fn instance_norm(ctx: &Ctx, o: &InstanceNorm) -> Result<Kernel, String> {
    let (b, x) = normalising(ctx, o.eps)?;
    let [n, c, _, _] = ir::shape4(&x.shape);
    let count = (n * c) as u64;
    let (src, wg) = summing(ctx, &format!("{PLANE_WALK_FNS}\n{INSTANCE_NORM}"));
    ctx.kernel("instance_norm", &src, b, Dispatch::Groups { count, wg })
}

/// The lowered first half of an instance norm: one workgroup per (n, c) stores the plane's mean
/// and 1 / sqrt(var + eps) at w = 0 and 1 of `[N, C, 1, 2]`. The normalisation itself is
/// elementwise (`InstanceNormApply`), so fusion computes it in the kernels that read it.
pub(super) fn instance_norm_stats(ctx: &Ctx, o: &InstanceNormStats) -> Result<Kernel, String> {
    let (mut b, x) = normalising(ctx, o.eps)?;
    let [n, c, _, _] = ir::shape4(&x.shape);
    let count = (n * c) as u64;
    let (src, wg) = summing(ctx, &format!("{PLANE_WALK_FNS}\n{INSTANCE_NORM_STATS}"));
    let src = apply(ctx, &mut b, &src, &["mean", "rstd"], PLANE_WALK)?;
    ctx.kernel(
        "instance_norm_stats",
        &src,
        b,
        Dispatch::Groups { count, wg },
    )
}

/// Two plane means in one pass: one workgroup per (n, c) stores the mean of a's plane at w = 0
/// and of b's at w = 1 of `[N, C, 1, 2]`.
pub(super) fn plane_means(ctx: &Ctx) -> Result<Kernel, String> {
    let (a, b_in, y) = (ctx.input(0, "a")?, ctx.input(1, "b")?, ctx.out()?);
    let mut b = KernelBuilder::default();
    b.load("a", a)?;
    b.load("b", b_in)?;
    b.store("y", y)?;
    b.dims("X", &a.shape)?;
    let [n, c, _, _] = ir::shape4(&a.shape);
    let count = (n * c) as u64;
    let (src, wg) = summing(ctx, &format!("{PLANE_WALK_FNS}\n{PLANE_MEANS}"));
    let src = apply(ctx, &mut b, &src, &["ma", "mb"], PLANE_WALK)?;
    ctx.kernel("plane_means", &src, b, Dispatch::Groups { count, wg })
}

/// The loop over a workgroup's plane in the plane templates, at `p`.
const PLANE_WALK: &str =
    "    for (var walk = plane_start(lid); walk.h < X_H; plane_next(&walk)) {\n        \
     let p = vec4<u32>(n, c, walk.h, walk.w);\n";

/// The template with its `// APPLY` line: nothing, or, where this reduction computes its
/// reader e (`plane_apply.rs`), a second walk (`walk`, the loop's head, at `p`) over what the
/// workgroup reduced, storing e, whose loads of this reduction read its `results` (every
/// invocation holds them) from a private array.
fn apply(
    ctx: &Ctx,
    b: &mut KernelBuilder,
    src: &str,
    results: &[&str],
    walk: &str,
) -> Result<String, String> {
    let Some(e) = ctx.applies else {
        return Ok(src.replace("    // APPLY\n", ""));
    };
    let node = &ctx.graph.nodes[e];
    b.local(ctx.id, "plane_results", results.len());
    for (k, &input) in node.inputs.iter().enumerate() {
        b.load(&format!("e{k}"), ctx.value(input)?)?;
    }
    let load = |k: usize, at: &str| format!("ld_e{k}({at})");
    let body = super::fused::body(&node.op, &node.shape, &load, "AFFINE_E", false)?;
    b.code(&body.decls);
    b.code(&body.function("fn applied(n: u32, c: u32, h: u32, w: u32) -> f32"));
    b.store("e", ctx.value(e)?)?;
    b.computes(&node.name);
    b.code(&format!(
        "var<private> plane_results: array<f32, {}>;",
        results.len()
    ));
    let mut code = String::new();
    for (i, r) in results.iter().enumerate() {
        code += &format!("    plane_results[{i}] = {r};\n");
    }
    code += walk;
    code += "        st_e(p.x, p.y, p.z, p.w, applied(p.x, p.y, p.z, p.w));\n    }\n";
    if !src.contains("    // APPLY\n") {
        return Err(format!(
            "template of `{}` has no // APPLY line",
            ctx.node.name
        ));
    }
    Ok(src.replace("    // APPLY\n", &code))
}

/// One workgroup per output element. Axes are those of the input's own shape (empty: all);
/// the kernel works on the rank-4 padded shape, where a reduced dim has extent 1 in `Y` and its
/// full extent in `R`.
pub(super) fn reduce(ctx: &Ctx, o: &Reduce) -> Result<Kernel, String> {
    let (x, y) = (ctx.input(0, "x")?, ctx.out()?);
    let rank = x.shape.len();
    if rank > 4 {
        return Err(format!(
            "{}: expected an input of rank 1 to 4, found {:?}",
            o.name(),
            x.shape
        ));
    }
    let xs = ir::shape4(&x.shape);
    let mut extent = [1usize; 4];
    for d in 0..rank {
        if o.axes.is_empty() || o.axes.contains(&d) {
            extent[d + 4 - rank] = xs[d + 4 - rank];
        }
    }
    if let Some(a) = o.axes.iter().find(|&&a| a >= rank) {
        return Err(format!(
            "{}: axis {a} is out of range for an input of rank {rank}",
            o.name()
        ));
    }
    let ys = ir::shape4(&y.shape);
    if (0..4).any(|d| ys[d] * extent[d] != xs[d]) {
        return Err(format!(
            "{}: output shape {:?} does not keep the reduced axes of {:?}",
            o.name(),
            y.shape,
            x.shape
        ));
    }
    let reduced: usize = extent.iter().product();
    let mut b = KernelBuilder::default();
    b.load("x", x)?;
    b.store("y", y)?;
    b.dims("Y", &y.shape)?;
    b.dims("R", &extent)?;
    b.size("R_TOTAL", reduced as u64)?;
    let scale = match o.kind {
        ReduceKind::Sum => 1.0,
        ReduceKind::Mean => 1.0 / reduced.max(1) as f64,
    };
    b.size_f32("SCALE", scale);
    let count = ir::numel(&y.shape) as u64;
    let (src, wg) = summing(ctx, REDUCE);
    let walk = "    for (var j = lid; j < R_TOTAL; j += WG) {\n        \
                let p = o + unflat(j, vec4<u32>(R_N, R_C, R_H, R_W));\n";
    let src = apply(ctx, &mut b, &src, &["total * SCALE"], walk)?;
    ctx.kernel("reduce", &src, b, Dispatch::Groups { count, wg })
}

/// One workgroup per row along the axis: its maximum, the sum of exponentials, then the stores
/// (shaders/softmax.wgsl). The rows are the input's shape with the axis's extent 1, and the
/// axis's step in rank-4 coordinates walks a row.
pub(super) fn softmax(ctx: &Ctx, o: &Softmax) -> Result<Kernel, String> {
    let (x, y) = (ctx.input(0, "x")?, ctx.out()?);
    o.shape(&[&x.shape])?;
    let axis = o.axis4(x.shape.len());
    let mut rows = ir::shape4(&x.shape);
    let len = std::mem::replace(&mut rows[axis], 1);
    let mut step = ["0u"; 4];
    step[axis] = "1u";
    let mut b = KernelBuilder::default();
    b.load("x", x)?;
    b.store("y", y)?;
    b.dims("ROWS", &rows)?;
    b.size("LEN", len as u64)?;
    b.code(&format!("const STEP = vec4<u32>({});", step.join(", ")));
    let max = match subgroup(ctx) {
        Some(_) => WG_MAX_SUBGROUP,
        None => WG_MAX,
    };
    let (src, wg) = summing(ctx, &format!("{max}\n{SOFTMAX}"));
    let count = ir::numel(&rows) as u64;
    ctx.kernel("softmax", &src, b, Dispatch::Groups { count, wg })
}

/// One invocation per pixel normalises its C channels (shaders/layer_norm.wgsl): a channel
/// reduction is short and strided, so a pixel's loop beats a workgroup's tree.
pub(super) fn layer_norm(ctx: &Ctx, o: &LayerNorm) -> Result<Kernel, String> {
    let (mut b, x) = normalising(ctx, o.eps)?;
    let affine = match o.affine {
        true => {
            b.load("w", ctx.input(1, "weight")?)?;
            b.load("b", ctx.input(2, "bias")?)?;
            "v * ld_w(0u, 0u, 0u, c) + ld_b(0u, 0u, 0u, c)"
        }
        false => "v",
    };
    let [n, _, h, w] = ir::shape4(&x.shape);
    let total = (n * h * w) as u64;
    let src = LAYER_NORM.replace("AFFINE", affine);
    ctx.kernel("layer_norm", &src, b, Dispatch::Threads { total, wg: 64 })
}
