//! The ONNX layers irdc has: Conv and ConvTranspose (their weights become the node's
//! `weight` and `bias` in PyTorch's layouts, which are ONNX's), MaxPool, InstanceNormalization
//! (its affine as Mul and Add), BatchNormalization (folded into such an affine), reflect Pad,
//! ReduceMean and ReduceSum, AveragePool and GlobalAveragePool.

use super::graph::{list, num, Builder, Known};
use super::ops::{lacks, Node, Refusal, Step};
use std::rc::Rc;

/// The one value of a per-axis attribute irdc takes a single number for (its kernels are
/// square, its strides and paddings the same on every side).
fn same(vs: &[i64], what: &str) -> Result<usize, Refusal> {
    match vs.first() {
        Some(&v) if v >= 0 && vs.iter().all(|&w| w == v) => Ok(v as usize),
        None => Ok(0),
        _ => lacks(format!(
            "with {what} {vs:?} (irdc takes one for every side)"
        )),
    }
}

/// Stride, padding and dilation of a convolution or pooling of a `k` x `k` window.
fn window(n: &Node, k: usize) -> Result<(usize, usize), Refusal> {
    if let Some(d) = n.a.ints("dilations")? {
        if d.iter().any(|&v| v != 1) {
            return lacks(format!("with dilations {d:?}"));
        }
    }
    let stride = same(&n.a.ints("strides")?.unwrap_or(vec![1]), "strides")?.max(1);
    let pad = match n.a.string("auto_pad", "NOTSET")?.as_str() {
        "NOTSET" => same(&n.a.ints("pads")?.unwrap_or_default(), "pads")?,
        "VALID" => 0,
        // With stride 1 and an odd kernel, SAME pads k / 2 on every side.
        "SAME_UPPER" | "SAME_LOWER" if stride == 1 && k % 2 == 1 => k / 2,
        other => {
            return lacks(format!(
                "with auto_pad {other} (stride {stride}, kernel {k})"
            ))
        }
    };
    Ok((stride, pad))
}

/// The known tensor of input `i`, or a refusal saying that it is computed in the graph.
pub(super) fn known_input(
    b: &Builder,
    n: &Node,
    i: usize,
    what: &str,
) -> Result<Rc<Known>, Refusal> {
    let name = n.input(i).ok_or_else(|| anyhow::anyhow!("has no {what}"))?;
    match b.known(name)? {
        Some(k) => Ok(k),
        None => lacks(format!("with a {what} computed in the graph")),
    }
}

/// Conv or ConvTranspose (grouped too) with a square kernel and the same padding on every side.
pub fn conv(b: &mut Builder, n: &Node, transposed: bool) -> Step {
    n.only(&[
        "kernel_shape",
        "strides",
        "pads",
        "dilations",
        "group",
        "auto_pad",
        "output_padding",
    ])?;
    let w = known_input(b, n, 1, "weight")?;
    let &[c0, c1, kh, kw] = w.shape.as_slice() else {
        return lacks(format!(
            "with a weight of shape {:?} (irdc's are 2-d)",
            w.shape
        ));
    };
    if kh != kw {
        return lacks(format!("with a {kh}x{kw} kernel (irdc's are square)"));
    }
    let group = n.a.int("group", 1)?;
    if group < 1 {
        return lacks(format!("with group {group}"));
    }
    let (stride, pad) = window(n, kh)?;
    // A transposed weight is [C, O / group, k, k].
    let out = if transposed { c1 * group as usize } else { c0 };
    let bias = match n.input(2) {
        Some(_) => Some(known_input(b, n, 2, "bias")?),
        None => None,
    };
    let (x, rank) = b.operand(n.first()?)?;
    if rank != 4 {
        return lacks(format!("of an input of rank {rank} (irdc's are NCHW)"));
    }
    let id = n.ident_after(b, &w.name);
    let mut fields = vec![
        ("in", x),
        ("out", out.to_string()),
        ("kernel", kh.to_string()),
        ("stride", stride.to_string()),
        ("pad", pad.to_string()),
    ];
    if transposed {
        let out_pad = n.a.ints("output_padding")?.unwrap_or_default();
        fields.push(("out_pad", same(&out_pad, "output_padding")?.to_string()));
    }
    fields.push(("bias", bias.is_some().to_string()));
    if group != 1 {
        fields.push(("groups", group.to_string()));
    }
    b.push(&id, if transposed { "ConvT" } else { "Conv" }, &fields);
    b.param(format!("{id}.weight"), &w);
    if let Some(bias) = bias {
        b.param(format!("{id}.bias"), &bias);
    }
    n.defines(b, id, 4);
    Ok(())
}

/// The attributes both poolings read (`pool` checks their values).
const POOL_ATTRIBUTES: [&str; 6] = [
    "kernel_shape",
    "strides",
    "pads",
    "dilations",
    "auto_pad",
    "ceil_mode",
];

/// MaxPool of a square window, without ceil mode or the indices output.
pub fn max_pool(b: &mut Builder, n: &Node) -> Step {
    n.only(&[&POOL_ATTRIBUTES[..], &["storage_order"]].concat())?;
    if n.has_output(1) {
        return lacks("with its indices output");
    }
    pool(b, n, "MaxPool")
}

/// AveragePool as irdc's, which divides every window by its size: padding counted in
/// (`count_include_pad` 1), or no padding.
pub fn avg_pool(b: &mut Builder, n: &Node) -> Step {
    n.only(&[&POOL_ATTRIBUTES[..], &["count_include_pad"]].concat())?;
    pool(b, n, "AvgPool")
}

/// A pooling of a square window with one padding, no ceil mode, as irdc's `op`.
fn pool(b: &mut Builder, n: &Node, op: &str) -> Step {
    if n.a.int("ceil_mode", 0)? != 0 {
        return lacks("with ceil_mode 1");
    }
    let kernel = n.a.ints("kernel_shape")?.unwrap_or_default();
    let k = match same(&kernel, "kernel_shape")? {
        0 => return Err(anyhow::anyhow!("has no kernel_shape").into()),
        k => k,
    };
    let (stride, pad) = window(n, k)?;
    if pad > k / 2 {
        return lacks(format!("with pad {pad} > kernel / 2 ({k})"));
    }
    if op == "AvgPool" && pad > 0 && n.a.int("count_include_pad", 0)? == 0 {
        return lacks("with count_include_pad 0 and padding (irdc counts the padding in)");
    }
    let (x, rank) = b.operand(n.first()?)?;
    let id = n.ident(b);
    let fields = [
        ("in", x),
        ("kernel", k.to_string()),
        ("stride", stride.to_string()),
        ("pad", pad.to_string()),
    ];
    b.push(&id, op, &fields);
    n.defines(b, id, rank);
    Ok(())
}

/// GlobalAveragePool: the mean over every axis after the channels, kept.
pub fn global_avg_pool(b: &mut Builder, n: &Node) -> Step {
    n.only(&[])?;
    let (x, rank) = b.operand(n.first()?)?;
    if rank < 3 {
        return lacks(format!("of rank {rank}"));
    }
    let id = n.ident(b);
    let spatial: Vec<usize> = (2..rank).collect();
    b.push(&id, "Mean", &[("in", x), ("axes", list(&spatial))]);
    n.defines(b, id, rank);
    Ok(())
}

/// InstanceNorm, then the per-channel scale and shift as Mul and Add with [1, C, 1, 1] tensors.
pub fn instance_norm(b: &mut Builder, n: &Node) -> Step {
    n.only(&["epsilon"])?;
    let eps = n.a.float("epsilon", 1e-5)? as f64;
    let scale = known_input(b, n, 1, "scale")?;
    let shift = known_input(b, n, 2, "shift")?;
    let (x, rank) = b.operand(n.first()?)?;
    let id = n.ident_after(b, &scale.name);
    let norm = b.ident(&format!("{id}_norm"), "norm");
    b.push(&norm, "InstanceNorm", &[("in", x), ("eps", num(eps))]);
    affine(b, &id, norm, &scale, &shift);
    n.defines(b, id, rank);
    Ok(())
}

/// `x * scale + shift` with per-channel tensors `<id>_weight` and `<id>_bias`; the Add is `id`.
fn affine(b: &mut Builder, id: &str, x: String, scale: &Known, shift: &Known) {
    let (s, _) = b.channel_tensor(&format!("{id}_weight"), scale);
    let scaled = b.ident(&format!("{id}_scaled"), "scaled");
    b.push(&scaled, "Mul", &[("a", x), ("b", s)]);
    let (t, _) = b.channel_tensor(&format!("{id}_bias"), shift);
    b.push(id, "Add", &[("a", scaled), ("b", t)]);
}

/// BatchNormalization as inference computes it: the running statistics folded into the
/// per-channel scale `scale / sqrt(var + eps)` and shift `B - mean * scale / sqrt(var + eps)`.
pub fn batch_norm(b: &mut Builder, n: &Node) -> Step {
    n.only(&["epsilon", "momentum", "training_mode", "spatial"])?;
    if n.a.int("training_mode", 0)? != 0 || (1..5).any(|i| n.has_output(i)) {
        return lacks("in training mode");
    }
    if n.a.int("spatial", 1)? != 1 {
        return lacks("with spatial 0");
    }
    let eps = n.a.float("epsilon", 1e-5)? as f64;
    let mut known = Vec::new();
    for (i, what) in ["scale", "B", "mean", "var"].iter().enumerate() {
        known.push(known_input(b, n, i + 1, what)?);
    }
    let [g, beta, mean, var] = [0, 1, 2, 3].map(|i| &known[i].values);
    let c = g.len();
    if [beta, mean, var].iter().any(|v| v.len() != c) {
        return Err(anyhow::anyhow!("has scale, B, mean and var of different sizes").into());
    }
    let a: Vec<f64> = (0..c).map(|i| g[i] / (var[i] + eps).sqrt()).collect();
    let folded = |k: &Known, values: Vec<f64>| Known {
        name: k.name.clone(),
        shape: vec![c],
        values,
        learnt: k.learnt,
    };
    let scale = folded(&known[0], a.clone());
    let shift = folded(
        &known[1],
        (0..c).map(|i| beta[i] - mean[i] * a[i]).collect(),
    );
    let (x, rank) = b.operand(n.first()?)?;
    let id = n.ident_after(b, &scale.name);
    affine(b, &id, x, &scale, &shift);
    n.defines(b, id, rank);
    Ok(())
}

/// Pad in reflect mode, of height and width only.
pub fn pad(b: &mut Builder, n: &Node) -> Step {
    n.only(&["mode", "pads", "value"])?;
    let mode = n.a.string("mode", "constant")?;
    let pads: Vec<i64> = match n.input(1) {
        Some(_) => known_ints(&*known_input(b, n, 1, "pads")?),
        None => n.a.ints("pads")?.unwrap_or_default(),
    };
    let (x, rank) = b.operand(n.first()?)?;
    let axes = match n.input(3) {
        Some(_) => axes(&known_ints(&*known_input(b, n, 3, "axes")?), rank)?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(anyhow::anyhow!("has {} pads for {} axes", pads.len(), axes.len()).into());
    }
    // [begin of each axis.., end of each axis..] spread over every axis of the input.
    let mut per_axis = vec![(0, 0); rank];
    for (i, &a) in axes.iter().enumerate() {
        per_axis[a] = (pads[i], pads[i + axes.len()]);
    }
    if per_axis.iter().all(|&p| p == (0, 0)) {
        let v = b.get(n.first()?)?.clone();
        b.define(&n.p.output[0], v);
        return Ok(());
    }
    if mode != "reflect" {
        return lacks(format!("in {mode} mode"));
    }
    let (top, bottom, left, right) = match per_axis.as_slice() {
        [(0, 0), (0, 0), (t, bo), (l, r)] if [t, bo, l, r].iter().all(|&&p| p >= 0) => {
            (*t, *bo, *l, *r)
        }
        _ => {
            return lacks(format!(
                "of pads {pads:?} (irdc pads height and width of NCHW)"
            ))
        }
    };
    let id = n.ident(b);
    let sides = format!("[{top}, {bottom}, {left}, {right}]");
    b.push(&id, "ReflectPad", &[("in", x), ("pad", sides)]);
    n.defines(b, id, rank);
    Ok(())
}

pub(super) fn known_ints(k: &Known) -> Vec<i64> {
    k.values.iter().map(|&v| v as i64).collect()
}

/// Axes counted from the end made positive, checked against `rank`.
pub(super) fn axes(raw: &[i64], rank: usize) -> Result<Vec<usize>, Refusal> {
    let r = rank as i64;
    (raw.iter())
        .map(|&a| match a {
            a if (0..r).contains(&a) => Ok(a as usize),
            a if (-r..0).contains(&a) => Ok((a + r) as usize),
            a => Err(anyhow::anyhow!("has axis {a} for an input of rank {rank}").into()),
        })
        .collect()
}

/// ReduceMean and ReduceSum keeping the reduced axes (axes an attribute before opsets 18 and
/// 13, an input since).
pub fn reduce(b: &mut Builder, n: &Node, mean: bool) -> Step {
    n.only(&["axes", "keepdims", "noop_with_empty_axes"])?;
    if n.a.int("keepdims", 1)? != 1 {
        return lacks("with keepdims 0 (irdc keeps the reduced axes)");
    }
    let raw = match n.input(1) {
        Some(_) => Some(known_ints(&*known_input(b, n, 1, "axes")?)),
        None => n.a.ints("axes")?,
    };
    let raw = raw.unwrap_or_default();
    if raw.is_empty() && n.a.int("noop_with_empty_axes", 0)? == 1 {
        let v = b.get(n.first()?)?.clone();
        b.define(&n.p.output[0], v);
        return Ok(());
    }
    let (x, rank) = b.operand(n.first()?)?;
    let mut axes = axes(&raw, rank)?;
    axes.sort_unstable();
    axes.dedup();
    let id = n.ident(b);
    let op = if mean { "Mean" } else { "Sum" };
    b.push(&id, op, &[("in", x), ("axes", list(&axes))]);
    n.defines(b, id, rank);
    Ok(())
}
