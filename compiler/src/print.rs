//! A `Plan` as text (what `irdc plan` prints), JSON and Graphviz DOT.

use crate::Plan;
use std::fmt::Write;

/// Bytes for a person: `512 B`, `3.50 KiB`, `12.25 MiB`, `1.50 GiB`.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut x = b as f64;
    let mut u = 0;
    while x >= 1024.0 && u < UNITS.len() - 1 {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{x:.2} {}", UNITS[u])
    }
}

/// How many values the text shows unless `verbose`: the largest.
const SHOWN: usize = 20;

/// The plan as text: kernels in order, then the memory plan. `verbose` lists every value, not
/// only the largest 20.
pub fn text(plan: &Plan, verbose: bool) -> String {
    let m = &plan.memory;
    let mut s = String::new();
    let merged = match plan.unmerged_kernels == plan.kernels.len() {
        true => String::new(),
        false => format!("{} before merging, ", plan.unmerged_kernels),
    };
    let fused = match plan.unfused_kernels == plan.kernels.len() {
        true => String::new(),
        false => format!(" ({merged}{} before fusion)", plan.unfused_kernels),
    };
    let _ = writeln!(
        s,
        "plan `{}`: {} kernels{fused}, {} values",
        plan.graph,
        plan.kernels.len(),
        plan.values.len()
    );
    let _ = writeln!(s, "{}", plan.target.describe_policy());
    let passes = match plan.passes.is_empty() {
        true => "none".to_string(),
        false => plan.passes.join(", "),
    };
    let _ = writeln!(s, "graph passes: {passes}");
    if let Some(p) = plan.target.precision_summary() {
        let _ = writeln!(s, "{p}");
    }
    let _ = writeln!(s, "{}", plan.target.describe_sizes());
    if plan.prologue > 0 {
        let _ = writeln!(
            s,
            "kernels 0..{} depend only on frozen parameters and constants: they run on the first run only",
            plan.prologue
        );
    }
    let _ = writeln!(s, "\nkernels:");
    for (i, k) in plan.kernels.iter().enumerate() {
        let [x, y, z] = k.workgroups;
        let _ = writeln!(
            s,
            "  {i:>4}  {:<40} {:<16} {x}x{y}x{z}  [{}]",
            k.name,
            k.template,
            k.nodes.join(", ")
        );
    }
    let ratio = if m.naive_bytes == 0 {
        1.0
    } else {
        m.peak_bytes as f64 / m.naive_bytes as f64
    };
    let _ = writeln!(
        s,
        "\nmemory: peak {} planned, {} with one buffer per value ({:.2}x)",
        bytes(m.peak_bytes),
        bytes(m.naive_bytes),
        ratio
    );
    if m.forward_kept_bytes > 0 {
        let _ = writeln!(
            s,
            "forward values: {} recomputed; {} with every forward value kept",
            m.recomputed,
            bytes(m.forward_kept_bytes)
        );
    }
    for (i, a) in m.arenas.iter().enumerate() {
        let _ = writeln!(s, "  arena {i}: {}", bytes(a.bytes));
    }
    let mut order: Vec<usize> = (0..plan.values.len()).collect();
    let size = |v: usize| ir::numel(&plan.values[v].shape);
    order.sort_by_key(|&v| (std::cmp::Reverse(size(v)), v));
    let shown = if verbose {
        order.len()
    } else {
        order.len().min(SHOWN)
    };
    let _ = writeln!(s, "values ({shown} of {}, largest first):", order.len());
    for &v in &order[..shown] {
        let vp = &plan.values[v];
        let at: Vec<String> = vp
            .pieces
            .iter()
            .map(|p| format!("{}:{}", p.arena, p.offset * 4))
            .collect();
        let _ = write!(
            s,
            "  {:<40} {:<18} {:>12}  at {:<16} live {}..{}",
            vp.name,
            format!("{:?}", vp.shape),
            bytes(size(v) as u64 * 4),
            at.join(","),
            vp.live.0,
            vp.live.1
        );
        if let Some((r, c)) = vp.slice_of {
            let _ = write!(s, "  (slice of `{}` at channel {c})", plan.values[r].name);
        }
        if vp.fused.is_some() {
            s.push_str("  (fused: computed in the kernels that read it)");
        }
        s.push('\n');
    }
    if order.len() > shown {
        let _ = writeln!(s, "  ... {} more (verbose shows all)", order.len() - shown);
    }
    for g in &m.regions {
        let _ = writeln!(s, "region `{}` ({} channels):", g.name, g.channels);
        for &(v, c, n) in &g.slices {
            let _ = writeln!(s, "  {:>5}..{:<5} `{}`", c, c + n, plan.values[v].name);
        }
    }
    s
}

/// The plan as pretty JSON; each kernel's WGSL source only if `wgsl`.
pub fn json(plan: &Plan, wgsl: bool) -> serde_json::Result<String> {
    let mut v = serde_json::to_value(plan)?;
    if !wgsl {
        if let Some(ks) = v.get_mut("kernels").and_then(|k| k.as_array_mut()) {
            ks.iter_mut()
                .filter_map(|k| k.as_object_mut())
                .for_each(|k| {
                    k.remove("wgsl");
                });
        }
    }
    serde_json::to_string_pretty(&v)
}

/// The plan as Graphviz DOT: kernels as nodes, an edge from the kernel that last wrote a value to
/// each kernel that reads it, labelled with the value's name and shape. A value assembled in place
/// (a concat region read whole) gets an edge from the writer of each of its slices.
pub fn dot(plan: &Plan) -> String {
    let mut s = format!(
        "digraph \"{}\" {{\n  node [shape=box, fontname=monospace];\n",
        esc(&plan.graph)
    );
    let mut writer: Vec<Option<usize>> = vec![None; plan.values.len()];
    for (k, kernel) in plan.kernels.iter().enumerate() {
        let _ = writeln!(s, "  k{k} [label=\"{k}: {}\"];", esc(&kernel.name));
        for &v in &kernel.reads {
            for u in members(plan, v) {
                if let Some(w) = writer[u] {
                    let vp = &plan.values[u];
                    let _ = writeln!(
                        s,
                        "  k{w} -> k{k} [label=\"{} {:?}\"];",
                        esc(&vp.name),
                        vp.shape
                    );
                }
            }
        }
        for &v in &kernel.writes {
            if let Some(w) = writer.get_mut(v) {
                *w = Some(k);
            }
        }
    }
    s.push_str("}\n");
    s
}

/// `v` itself, and if it is a region or a slice of one, the slices that lie inside its channels.
fn members(plan: &Plan, v: usize) -> Vec<usize> {
    let Some(vp) = plan.values.get(v) else {
        return Vec::new();
    };
    let (r, first) = vp.slice_of.unwrap_or((v, 0));
    let c = ir::shape4(&vp.shape)[1];
    let mut out = vec![v];
    out.extend(
        plan.values
            .iter()
            .enumerate()
            .filter_map(|(u, up)| match up.slice_of {
                Some((ur, uc))
                    if u != v
                        && ur == r
                        && uc >= first
                        && uc + ir::shape4(&up.shape)[1] <= first + c =>
                {
                    Some(u)
                }
                _ => None,
            }),
    );
    out
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
