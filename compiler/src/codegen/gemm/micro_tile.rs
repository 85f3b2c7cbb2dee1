//! The register tile of the GEMM templates (`shaders/gemm.wgsl`, `shaders/gemm_direct.wgsl`),
//! written out for one set of tiles: its accumulators, its k loop (over groups or a window
//! of taps; A's rows broadcast across subgroup lanes where the device has them) and its
//! stores. `gemm/mod.rs` fills in the rest of a GEMM kernel.

use super::Groups;
use crate::{ConvTiles, Precision};
use std::fmt::Write;

pub(super) const GEMM: &str = include_str!("../../../../shaders/gemm.wgsl");
const GEMM_DIRECT: &str = include_str!("../../../../shaders/gemm_direct.wgsl");

/// The GEMM template with its register tile unrolled: `c_i_j` for row i < tm, column j < tn,
/// row `m0 + ty + i * (BM / TM)`, column `n0 + tx + j * (BN / TN)`.
/// Direct tiles with `broadcast` lanes: lane l loads rows l, l + lanes, ... and broadcasts them. With `window`
/// (a conv2d's KW, see `gemm::RowTaps`) the direct tile's columns are `n0 + tx * TN + j` instead,
/// and the loop runs over input channels and kernel rows.
pub(super) fn micro_tile(
    t: ConvTiles,
    broadcast: Option<u32>,
    window: Option<u32>,
    groups: Groups,
    staged: Precision,
) -> String {
    let (rows, cols) = (0..t.tm, 0..t.tn);
    // Staged f16 operands are widened for the multiply: f16 x f16 is exact in f32.
    let widen = match staged {
        Precision::F32 => "",
        Precision::F16 => "f32",
    };
    let (mut decl, mut step, mut store) = (String::new(), String::new(), String::new());
    for i in rows.clone() {
        for j in cols.clone() {
            let _ = writeln!(decl, "    var c_{i}_{j} = 0.0;");
        }
    }
    if let Some(taps) = window {
        let lp = window_loop(t, broadcast, taps, &mut decl).replace(GRP_ARG, "0u");
        store_loop(t, "n0 + tx * TN + (e % TN)", &mut store);
        return fill(GEMM_DIRECT, lane_param(broadcast), &decl, &lp, "", &store);
    }
    let template = match t.direct() {
        true => {
            // The columns' b_col once; rows past GM read row GM - 1 (uniform, in range).
            for j in cols.clone() {
                let _ = writeln!(
                    decl,
                    "    let col_{j} = b_col(col_base + min(n0 + tx + {j}u * WG, GN - 1u));"
                );
                let _ = writeln!(step, "        let b_{j} = b_at(col_{j}, k, {GRP_ARG});");
            }
            step.push_str(&a_loads(t, broadcast, "k", ""));
            GEMM_DIRECT
        }
        false => GEMM,
    };
    for i in rows.clone().filter(|_| !t.direct()) {
        let _ = writeln!(
            step,
            "            let a_{i} = {widen}(tile_a[kk * BM + ty + {i}u * (BM / TM)]);"
        );
    }
    for j in cols.clone().filter(|_| !t.direct()) {
        let _ = writeln!(
            step,
            "            let b_{j} = {widen}(tile_b[kk * BN + tx + {j}u * (BN / TN)]);"
        );
    }
    for i in rows.clone() {
        for j in cols.clone() {
            let _ = writeln!(step, "            c_{i}_{j} += a_{i} * b_{j};");
        }
    }
    match t.direct() {
        true => store_loop(t, "n0 + tx + (e % TN) * (BN / TN)", &mut store),
        false => store_unrolled(t, &mut store),
    }
    let lp = match groups {
        Groups::Phases(n) if t.direct() => group_loops(n, &step),
        _ => format!("    for (var k = k_base; k < k_end; k++) {{\n{step}    }}\n")
            .replace(GRP_ARG, "grp"),
    };
    fill(template, lane_param(broadcast), &decl, &lp, &step, &store)
}

/// The lane parameter that broadcast loads of A need (see [`a_loads`]).
fn lane_param(broadcast: Option<u32>) -> &'static str {
    match broadcast {
        Some(_) => ", @builtin(subgroup_invocation_id) sg_lane: u32",
        None => "",
    }
}

/// `template` with its placeholders filled in.
/// `params` are the entry point's parameters past the template's own.
pub(super) fn fill(
    template: &str,
    params: &str,
    decl: &str,
    lp: &str,
    step: &str,
    store: &str,
) -> String {
    template
        .replace("EXTRA_PARAMS", params)
        .replace("MICRO_DECL\n", decl)
        .replace("MICRO_LOOP\n", lp)
        .replace("MICRO_STEP\n", step)
        .replace("MICRO_STORE\n", store)
}

/// A direct tile's rows of A at k `k`, as `a_{i}{suffix}`: each row loaded, or with
/// `broadcast` lanes, one row per lane and broadcast. Rows past GM read row GM - 1 (uniform,
/// in range).
fn a_loads(t: ConvTiles, broadcast: Option<u32>, k: &str, suffix: &str) -> String {
    let mut out = String::new();
    match broadcast {
        None => {
            for i in 0..t.tm {
                let _ = writeln!(
                    out,
                    "        let a_{i}{suffix} = a_at(min(m0 + {i}u, GM - 1u), {k}, {GRP_ARG});"
                );
            }
        }
        Some(l) => {
            for q in 0..t.tm.div_ceil(l) {
                let _ = writeln!(
                    out,
                    "        let a_lane_{q}{suffix} = a_at(min(m0 + {}u + sg_lane, GM - 1u), {k}, {GRP_ARG});",
                    q * l
                );
            }
            for i in 0..t.tm {
                let _ = writeln!(
                    out,
                    "        let a_{i}{suffix} = subgroupBroadcast(a_lane_{}{suffix}, {}u);",
                    i / l,
                    i % l
                );
            }
        }
    }
    out
}

/// The window loop of a stride-1 conv2d (`gemm::RowTaps`) with `taps` = KW: for each input channel
/// and kernel row, the TN + KW - 1 inputs `v_s` of the invocation's run of TN pixels
/// (`b_window`), and tap kw of column j multiplies `v_{j + kw}`. The conv2d template numbers k
/// as (channel, kernel row, tap), one group.
fn window_loop(t: ConvTiles, broadcast: Option<u32>, taps: u32, decl: &mut String) -> String {
    decl.push_str("    let col0 = b_col(col_base + min(n0 + tx * TN, GN - 1u));\n");
    let mut lp = String::from(
        "    for (var ci = 0u; ci < X_C; ci++) {\n    for (var r = 0u; r < KH; r++) {\n",
    );
    for s in 0..t.tn + taps - 1 {
        let _ = writeln!(lp, "        let v_{s} = b_window(col0, ci, r, {s});");
    }
    for kw in 0..taps {
        let _ = writeln!(lp, "        let k_{kw} = (ci * KH + r) * KW + {kw}u;");
        lp.push_str(&a_loads(
            t,
            broadcast,
            &format!("k_{kw}"),
            &format!("_{kw}"),
        ));
        for i in 0..t.tm {
            for j in 0..t.tn {
                let _ = writeln!(lp, "            c_{i}_{j} += a_{i}_{kw} * v_{};", j + kw);
            }
        }
    }
    lp.push_str("    }\n    }\n");
    lp
}

/// The tile's stores, one `c_st` per element, unrolled: for GPUs, whose compilers keep a
/// fused store's loads and branches cheap and the tile in registers.
fn store_unrolled(t: ConvTiles, store: &mut String) {
    for i in 0..t.tm {
        let _ = writeln!(store, "    let m_{i} = m0 + ty + {i}u * (BM / TM);");
        for j in 0..t.tn {
            let _ = writeln!(
                store,
                "    if (m_{i} < GM && n0 + tx + {j}u * (BN / TN) < GN) {{ c_st(m_{i}, col_base + n0 + tx + {j}u * (BN / TN), c_{i}_{j}); }}"
            );
        }
    }
}

/// The tile's stores as a loop over a private copy of it, for direct tiles (lavapipe): `c_st`
/// carries the consumer's fused epilogue (its loads, an instance norm's statistics, branches),
/// and 256 unrolled copies of it made llvmpipe's LLVM spend up to a minute on one kernel (its
/// coroutine pass grows with the number of basic blocks); the loop compiles in a fraction of
/// that and runs as fast.
/// `column` is the expression of element e's column (the tile's numbering).
fn store_loop(t: ConvTiles, column: &str, store: &mut String) {
    let _ = writeln!(store, "    var tile: array<f32, {}>;", t.tm * t.tn);
    for i in 0..t.tm {
        for j in 0..t.tn {
            let _ = writeln!(store, "    tile[{}u] = c_{i}_{j};", i * t.tn + j);
        }
    }
    let _ = write!(
        store,
        "    for (var e = 0u; e < TM * TN; e++) {{
        let m = m0 + ty + (e / TN) * (BM / TM);
        let n = {column};
        if (m < GM && n < GN) {{
            c_st(m, col_base + n, tile[e]);
        }}
    }}
"
    );
}

/// Where the step code of a direct tile passes the k's group to `a_at` and `b_at`: replaced by
/// `grp`, or by a literal in a loop per group.
const GRP_ARG: &str = "GRP_ARG";

/// One k loop per group of `n`, the dispatch's (uniform) group choosing among them, `grp` a
/// literal in each ([`Groups::Phases`]).
fn group_loops(n: usize, step: &str) -> String {
    let mut out = String::from("    switch grp {\n");
    for grp in 0..n {
        let _ = writeln!(
            out,
            "    case {grp}u: {{\n    for (var k = {grp}u * GK; k < {grp}u * GK + group_k({grp}u); k++) {{\n{}    }}\n    }}",
            step.replace(GRP_ARG, &format!("{grp}u"))
        );
    }
    out.push_str("    default: {}\n    }\n");
    out
}
