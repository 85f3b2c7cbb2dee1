//! Convolutions as register-tiled implicit GEMMs: one GEMM template (`shaders/gemm.wgsl`) over
//! the operand functions of each op's template (conv2d, conv_transpose2d here; the weight
//! gradients in `conv_grad.rs`), with the tiles of `Target::conv_tiles`. All global memory goes
//! through the generated `ld_`/`st_` accessors, so a fused load or store composes with it.

use super::{coop, Ctx, Dispatch, KernelBuilder};
use crate::{ConvTiles, Kernel, PanelLayout, Panels, Precision, ValuePlan};
use ir::ops::{Conv2d, ConvTranspose2d};
use std::fmt::Write;

const GEMM: &str = include_str!("../../../shaders/gemm.wgsl");
const GEMM_DIRECT: &str = include_str!("../../../shaders/gemm_direct.wgsl");
const CONV2D: &str = include_str!("../../../shaders/conv2d.wgsl");
const CONV_TRANSPOSE2D: &str = include_str!("../../../shaders/conv_transpose2d.wgsl");

/// Good on lavapipe (8-wide SIMD over the invocations of a workgroup, one workgroup per CPU
/// thread, per-invocation loads done lane by lane, each costing several instructions): no
/// workgroup memory (its barriers are expensive there) and a 32 x 8 register tile, so 8
/// gathered input loads serve 256 multiply-adds; the 32 weights are 4 loads, one row per
/// subgroup lane, broadcast (`Target::subgroup_size`). Measured with `cargo run --release
/// --example conv_gflops` on a 2-core machine (Mesa 25, 2 threads), 3x3 64->64 at 256x256:
/// 16 x 16 tiles 33-34 GFLOP/s, 32 x 8 42-43 (and 31-32 against 34-36 for a 1x1 256->64 at
/// 128x128); before the broadcast (Mesa 22), 16 x 1 tiles ran at 2.8-3.5, 8 x 8 at 11.6-15.9 and
/// 16 x 16 at 21-23, on one thread.
impl Default for ConvTiles {
    fn default() -> Self {
        ConvTiles {
            bm: 32,
            bn: 256,
            bk: 0,
            tm: 32,
            tn: 8,
        }
    }
}

impl ConvTiles {
    /// Invocations per workgroup.
    pub fn invocations(&self) -> u32 {
        (self.bm / self.tm.max(1)) * (self.bn / self.tn.max(1))
    }

    /// Whether `bk` is 0: the GEMM without workgroup memory (`shaders/gemm_direct.wgsl`).
    pub fn direct(&self) -> bool {
        self.bk == 0
    }

    /// Whether a GEMM template can use these tiles: register tiles divide the block, a
    /// workgroup of at most 256 invocations (WebGPU's guaranteed minimum) that loads whole rows
    /// of each slice, and at most 16 KiB of workgroup memory (also guaranteed); `direct` tiles
    /// have one row of invocations (`bm` = `tm`) and at most 256 accumulators per invocation.
    pub fn check(&self) -> Result<(), String> {
        let t = *self;
        let wg = self.invocations();
        let sizes = [t.bm, t.bn, t.tm, t.tn].iter().all(|&v| v > 0);
        let ok = match t.direct() {
            true => {
                sizes
                    && t.bm == t.tm
                    && t.bn.is_multiple_of(t.tn)
                    && (1..=256).contains(&wg)
                    && t.tm * t.tn <= 256
            }
            false => {
                sizes
                    && t.bm.is_multiple_of(t.tm)
                    && t.bn.is_multiple_of(t.tn)
                    && (1..=256).contains(&wg)
                    && wg.is_multiple_of(t.bk)
                    && wg.is_multiple_of(t.bn)
                    && (t.bm * t.bk).is_multiple_of(wg)
                    && (t.bk * t.bn).is_multiple_of(wg)
                    && (t.bm + t.bn) * t.bk * 4 <= 16384
            }
        };
        match ok {
            true => Ok(()),
            false => Err(format!("conv tiles {t:?} do not fit the GEMM template")),
        }
    }

    /// These tiles for a GEMM of `gm` rows and `gn` columns. Direct tiles far larger than the
    /// GEMM (a conv at 4x4 pixels, a layer of 8 channels) halve their register tile, keeping
    /// the workgroup, while that still covers the GEMM. Then the workgroup may get fewer
    /// invocations (down to [`MIN_DIRECT_INVOCATIONS`]) where that leaves fewer columns in the
    /// last block that are computed only to be dropped: 1156 columns (a 34x34 output) take
    /// 1280 in blocks of 256 and 1216 in blocks of 64; a 64-channel 3x3 weight gradient's 576
    /// take 768 and 576. Last, a tile of many rows (more than a window of taps has,
    /// [`RowTaps`]) keeps at least [`MIN_TALL_TILE_COLUMNS`] columns where its workgroup can
    /// shed invocations for them (down to [`MIN_DIRECT_INVOCATIONS`]): an invocation's columns
    /// share its loads of A (one per row and k, broadcast), so a Winograd product of 16 tiles
    /// and 256 channels runs as 8 invocations of 2 columns rather than 16 of 1, half the loads
    /// of A per multiply-add. Workgroup-memory tiles are kept as they are.
    pub fn fitted(self, gm: usize, gn: usize) -> ConvTiles {
        let mut t = self;
        if !t.direct() {
            return t;
        }
        while t.tn > 1 && t.tn.is_multiple_of(2) && (t.bn / 2) as usize >= gn {
            (t.tn, t.bn) = (t.tn / 2, t.bn / 2);
        }
        while t.tm > 1 && t.tm.is_multiple_of(2) && (t.tm / 2) as usize >= gm {
            (t.tm, t.bm) = (t.tm / 2, t.bm / 2);
        }
        let padded = |bn: u32| gn.div_ceil(bn as usize) * bn as usize;
        let mut bn = t.bn;
        while bn.is_multiple_of(2)
            && (bn / 2).is_multiple_of(t.tn)
            && bn / 2 / t.tn >= MIN_DIRECT_INVOCATIONS
        {
            bn /= 2;
            if padded(bn) < padded(t.bn) {
                t.bn = bn;
            }
        }
        while gm > MAX_WINDOW_ROWS as usize
            && t.tn < MIN_TALL_TILE_COLUMNS
            && t.invocations().is_multiple_of(2)
            && t.invocations() / 2 >= MIN_DIRECT_INVOCATIONS
        {
            t.tn *= 2;
        }
        t
    }
}

/// The most rows of a tile that walks a window of taps ([`RowTaps`]).
const MAX_WINDOW_ROWS: u32 = 8;

/// The fewest columns [`ConvTiles::fitted`] leaves a register tile of more rows than that.
const MIN_TALL_TILE_COLUMNS: u32 = 4;

/// The fewest invocations [`ConvTiles::fitted`] gives a direct workgroup: lavapipe runs 8
/// invocations side by side in one 256-bit SIMD register, so fewer would leave lanes idle.
pub const MIN_DIRECT_INVOCATIONS: u32 = 8;

pub(super) fn conv2d(ctx: &Ctx, o: &Conv2d) -> Result<Kernel, String> {
    conv(ctx, ("conv2d", CONV2D), o.stride, o.pad, o.bias, false)
}

/// The output size (with its `out_pad`) is already the node's shape; the gather needs only
/// stride and pad.
pub(super) fn conv_transpose2d(ctx: &Ctx, o: &ConvTranspose2d) -> Result<Kernel, String> {
    conv(
        ctx,
        ("conv_transpose2d", CONV_TRANSPOSE2D),
        o.stride,
        o.pad,
        o.bias,
        true,
    )
}

fn conv(
    ctx: &Ctx,
    (template, src): (&str, &str),
    stride: usize,
    pad: usize,
    bias: bool,
    phases: bool,
) -> Result<Kernel, String> {
    let (x, w, y) = (ctx.input(0, "x")?, ctx.input(1, "weight")?, ctx.out()?);
    // k runs channel-major, so every column of a k step reads the same input channel.
    let mut b = KernelBuilder::default();
    b.channel_runs = true;
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
    let cin = ir::shape4(&x.shape)[1];
    for (name, v) in [("KH", kh), ("KW", kw), ("STRIDE", stride), ("PAD", pad)] {
        b.u32(name, v as u64)?;
    }
    let (src, dispatch) = match phases {
        // One GEMM group per output phase (shaders/conv_transpose2d.wgsl), each sized for the
        // largest phase.
        true => {
            let (rows, cols) = (oh.div_ceil(stride), ow.div_ceil(stride));
            b.u32("PH_ROWS", rows as u64)?;
            b.u32("PW_COLS", cols as u64)?;
            let taps = kh.div_ceil(stride) * kw.div_ceil(stride);
            let sizes = [co, n * rows * cols, cin * taps];
            // A is the weight [C_in, C_out, KH, KW]: row m is C_out, k runs over (C_in, taps).
            let a = PanelSource {
                weight: w,
                row_dim: 1,
                phase_stride: stride,
            };
            gemm(
                &mut b,
                ctx,
                src,
                sizes,
                Groups::Phases(stride * stride),
                Some(a),
                None,
            )?
        }
        // A is the weight itself, row-major (OIHW).
        false => {
            let a = PanelSource {
                weight: w,
                row_dim: 0,
                phase_stride: 1,
            };
            let sizes = [co, n * oh * ow, cin * kh * kw];
            let row = (stride == 1).then_some(RowTaps {
                taps: kw as u32,
                width: ow,
            });
            gemm(&mut b, ctx, src, sizes, Groups::One, Some(a), row)?
        }
    };
    ctx.kernel(template, &src, b, dispatch)
}

/// A batch of GEMMs in one kernel (see shaders/gemm.wgsl), whose op template defines `group_k`.
#[derive(Clone, Copy)]
pub(super) enum Groups {
    /// One GEMM: `group_k` is GK.
    One,
    /// This many GEMMs whose k's decode alike (Winograd's products): one k loop, over the
    /// dispatch's group.
    Batch(usize),
    /// This many GEMMs whose k's decode differently (a transposed conv's output phases, each
    /// with its own taps): direct tiles run one k loop per group, with `grp` a literal in each,
    /// so the op's decode folds into constants (up1 of the generator alone on lavapipe, `jit_cost
    /// WORKGROUPS=256`: 90.9 -> 72.1 ms; its compile 0.64 -> 1.45 s).
    Phases(usize),
}

impl Groups {
    fn count(self) -> usize {
        match self {
            Groups::One => 1,
            Groups::Batch(n) | Groups::Phases(n) => n,
        }
    }
}

/// Add the GEMM's sizes `[GM, GN, GK]` (per group) and tile constants to `b`; returns the op
/// template followed by the GEMM template with its register tile written out, and the dispatch.
/// `groups` is a batch of GEMMs ([`Groups`]); one GEMM gets the default `group_k`: all GK k's.
/// `a_panels` is the weight that `a_at` reads, which direct tiles then read from uniform panels
/// where the target allows ([`Panels`]).
/// `row` is a stride-1 conv2d's row of taps, which direct tiles with few rows walk as a window
/// ([`RowTaps`]).
pub(super) fn gemm(
    b: &mut KernelBuilder,
    ctx: &Ctx,
    op_src: &str,
    [gm, gn, gk]: [usize; 3],
    groups: Groups,
    a_panels: Option<PanelSource>,
    row: Option<RowTaps>,
) -> Result<(String, Dispatch), String> {
    // At the f16 precision, cooperative matrices where the device has them (`coop.rs`).
    let coop = coop::Layout::of(ctx.target);
    let t = match coop {
        Some(_) => coop::TILES,
        None => {
            ctx.target.conv_tiles.check()?;
            ctx.target.conv_tiles.fitted(gm, gn)
        }
    };
    let group_count = groups.count();
    // A subgroup broadcast of A's rows beats uniform panels where the device has subgroups
    // (3x3 64->64 at 64x64 on one lavapipe thread: 17.5 against 13.9 GFLOP/s, and 9.9 with
    // neither) and needs neither a pack kernel nor a dispatch per block; panels are for the rest.
    let lanes = ctx.target.subgroup_size;
    let broadcast = (t.direct() && lanes > 0)
        .then_some(lanes)
        .filter(|&l| t.invocations() % l == 0);
    let panels = match broadcast {
        Some(_) => None,
        None => a_panels.and_then(|a| panels(ctx.target, t, a, [gm, gk, group_count])),
    };
    let window = row
        .filter(|r| t.direct() && panels.is_none() && r.pays(t))
        .map(|r| r.taps);
    let m_tiles = gm.div_ceil(t.bm as usize);
    let n_tiles = gn.div_ceil(t.bn as usize);
    let one_group = "fn group_k(grp: u32) -> u32 {\n    return GK;\n}\n";
    let group_k = match groups {
        Groups::One => one_group,
        _ => "",
    };
    for (name, v) in [
        ("GM", gm),
        ("GN", gn),
        ("GK", gk),
        ("GROUPS", group_count),
        ("M_TILES", m_tiles),
        ("N_TILES", n_tiles),
        ("BM", t.bm as usize),
        ("BN", t.bn as usize),
        ("BK", t.bk as usize),
        ("TM", t.tm as usize),
        ("TN", t.tn as usize),
        ("K_STEP", coop.map_or(1, |l| l.side as usize)),
        ("A_TILE", (t.bm * t.bk) as usize),
        ("B_TILE", (t.bk * t.bn) as usize),
    ] {
        b.u32(name, v as u64)?;
    }
    // Only workgroup tiles stage their operands, in the target's precision (see `Precision`).
    let staged = match t.direct() {
        true => Precision::F32,
        false => ctx.target.precision,
    };
    b.f16 |= staged == Precision::F16;
    b.coop_matrix |= coop.is_some();
    let (decls, tile) = match coop {
        Some(l) => {
            let (decl, step, store) = coop::tile(l);
            let tile = fill(GEMM, coop::PARAMS, &decl, "", &step, &store);
            (coop::declarations(), tile)
        }
        None => {
            let tile = micro_tile(t, panels.as_ref(), broadcast, window, groups, staged);
            ("", tile)
        }
    };
    let src = format!(
        "{}alias staged = {staged};\n{decls}{op_src}\n{group_k}\n{}\n{tile}",
        panels.as_ref().map_or(String::new(), panel_bindings),
        block_functions(panels.is_some()),
    );
    // With panels, one dispatch per block of rows and group (the runtime issues them).
    let count = match panels.is_some() {
        true => n_tiles as u64,
        false => (m_tiles * n_tiles * group_count) as u64,
    };
    b.panels = panels;
    let wg = t.invocations();
    Ok((src, Dispatch::Groups { count, wg }))
}

/// A stride-1 conv2d's `taps` (KW) along output rows of `width` pixels. A direct GEMM with few
/// rows is bound by its gathered input loads (one per TM multiply-adds): the generator's last
/// conv, 64 -> 3 channels 7x7, ran at 8 GFLOP/s. Walked as a window instead, an invocation takes
/// TN adjacent pixels of one row, so for each (channel, kernel row) TN + KW - 1 loads feed
/// KW x TM x TN multiply-adds (that conv: 137 -> 50 ms on lavapipe, 2 threads). A tall tile
/// already shares its loads across rows and gains nothing: 3x3 256->64 at 64x64 took 35.5 ms
/// as a window with 32 rows against 27.5 for the plain loop, and 26.5 with 16 rows (best of 6,
/// `runtime/examples/jit_cost.rs`), so the window is for tiles of at most 8 rows.
pub(super) struct RowTaps {
    pub taps: u32,
    pub width: usize,
}

impl RowTaps {
    /// Whether tiles `t` walk these taps as a window: few rows, more than one tap, and rows of
    /// whole runs of TN pixels, so that no invocation's pixels cross into the next row.
    fn pays(&self, t: ConvTiles) -> bool {
        t.tm <= MAX_WINDOW_ROWS && self.taps > 1 && self.width.is_multiple_of(t.tn as usize)
    }
}

/// A conv's weight as a GEMM's A operand: its dimension `row_dim` is the GEMM's row, the other
/// of its first two the channels of k, which runs over (channel, taps of the group's phase) as
/// [`PanelLayout`] says; `phase_stride` is 1 for one GEMM, the stride for a transposed conv's
/// phases.
pub(super) struct PanelSource<'a> {
    pub weight: &'a ValuePlan,
    pub row_dim: usize,
    pub phase_stride: usize,
}

/// Panels for a direct GEMM's A operand `a` (in one piece, never computed) with `rows` rows of
/// `gk` k's (the longest group's) in `groups` groups, if the target's uniform bindings hold at
/// least a column of 4 for every row of a block, and enough of them for all the chunks besides
/// the offsets uniform.
fn panels(
    target: &crate::Target,
    t: ConvTiles,
    a: PanelSource,
    [rows, gk, groups]: [usize; 3],
) -> Option<Panels> {
    let bytes = target.uniform_panel_bytes;
    let w = a.weight;
    let plain = w.fused.is_none() && w.kind != ir::ValueKind::Computed;
    let [piece] = &w.pieces[..] else {
        return None;
    };
    let [d0, d1, kh, kw] = ir::shape4(&w.shape);
    let s = piece.strides;
    let (channels, strides) = match a.row_dim {
        0 => (d1, [s[0], s[1], s[2], s[3]]),
        _ => (d0, [s[1], s[0], s[2], s[3]]),
    };
    let u = |v: u64| u32::try_from(v).ok();
    let layout = PanelLayout {
        channels: u(channels as u64)?,
        kh: u(kh as u64)?,
        kw: u(kw as u64)?,
        phase_stride: u(a.phase_stride as u64)?,
        strides: [
            u(strides[0])?,
            u(strides[1])?,
            u(strides[2])?,
            u(strides[3])?,
        ],
    };
    // The layout must number A's k's as the op's a_at does, the longest group first.
    let longest = (0..groups as u32).map(|g| layout.group_k(g)).max();
    let chunk_len = ((bytes / 4).saturating_sub(Panels::HEADER as u64) / t.bm as u64) / 4 * 4;
    let ok = t.direct() && plain && chunk_len > 0 && longest == u(gk as u64);
    let p = ok.then(|| Panels {
        arena: piece.arena,
        offset: piece.offset,
        rows: rows as u32,
        row_len: gk as u32,
        block_rows: t.bm,
        chunk_len: (chunk_len as usize).min(gk.next_multiple_of(4)) as u32,
        groups: groups as u32,
        layout,
    })?;
    (p.chunks() < target.max_uniform_buffers_per_stage).then_some(p)
}

/// `panel_c`, one uniform binding per chunk (group 2, binding c; see [`Panels`]).
fn panel_bindings(p: &Panels) -> String {
    (0..p.chunks())
        .map(|c| {
            format!(
                "@group(2) @binding({c}) var<uniform> panel_{c}: array<vec4<f32>, {}>;\n",
                p.binding_len() / 4
            )
        })
        .collect()
}

/// The first row and the column tile of workgroup `g`: with panels, the row and the group are
/// the dispatch's, from the header of its first binding, and `g` counts the group's column
/// tiles.
fn block_functions(panels: bool) -> &'static str {
    match panels {
        true => {
            "fn block_m0(g: u32) -> u32 {\n    return bitcast<u32>(panel_0[0].x);\n}\n\
                 fn block_n_tile(g: u32) -> u32 {\n    return bitcast<u32>(panel_0[0].y) * N_TILES + g;\n}\n"
        }
        false => {
            "fn block_m0(g: u32) -> u32 {\n    return (g % M_TILES) * BM;\n}\n\
                  fn block_n_tile(g: u32) -> u32 {\n    return g / M_TILES;\n}\n"
        }
    }
}

/// The GEMM template with its register tile unrolled: `c_i_j` for row i < tm, column j < tn,
/// row `m0 + ty + i * (BM / TM)`, column `n0 + tx + j * (BN / TN)`.
/// Direct tiles with `panels` read A from them, in one k loop per chunk; without, with
/// `broadcast` lanes, lane l loads rows l, l + lanes, ... and broadcasts them. With `window`
/// (a conv2d's KW, see [`RowTaps`]) the direct tile's columns are `n0 + tx * TN + j` instead,
/// and the loop runs over input channels and kernel rows.
fn micro_tile(
    t: ConvTiles,
    panels: Option<&Panels>,
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
            if panels.is_none() {
                step.push_str(&a_loads(t, broadcast, "k", ""));
            }
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
    let lp = match (panels, groups) {
        (Some(p), _) => panel_loops(p, t.tm, &step),
        (None, Groups::Phases(n)) if t.direct() => group_loops(n, &step),
        (None, _) => format!("    for (var k = k_base; k < k_end; k++) {{\n{step}    }}\n")
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
fn fill(template: &str, params: &str, decl: &str, lp: &str, step: &str, store: &str) -> String {
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

/// The window loop of a stride-1 conv2d ([`RowTaps`]) with `taps` = KW: for each input channel
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
/// coroutine pass grows with the number of basic blocks) against half a second for the loop, at
/// the same speed (3x3 64->64 at 64x64: 17.0 and 17.4 GFLOP/s).
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

/// The k loops over panels: chunk c covers the group's k in [c * chunk_len, ...), row i of the
/// block at element `HEADER + i * chunk_len` of `panel_c` (rows past GM read the zeros they
/// hold). k is numbered grp * GK + k, as `a_at` and `b_at` take it. Every group gets loops of
/// its own length, the dispatch's (uniform) group choosing among them: the bounds stay
/// constants, which lavapipe's loops need to be fast.
fn panel_loops(p: &Panels, tm: u32, step: &str) -> String {
    let group_loops = |grp: u32| {
        let (k0, gk) = (grp * p.row_len, p.layout.group_k(grp));
        let mut out = String::new();
        for lo in (0..gk).step_by(p.chunk_len as usize) {
            let c = lo / p.chunk_len;
            let hi = (lo + p.chunk_len).min(gk);
            let _ = writeln!(
                out,
                "    for (var k = {}u; k < {}u; k++) {{",
                k0 + lo,
                k0 + hi
            );
            let _ = writeln!(out, "        let kl = k - {}u;", k0 + lo);
            for i in 0..tm {
                let at = Panels::HEADER + i * p.chunk_len;
                let _ = writeln!(
                    out,
                    "        let a_{i} = panel_{c}[(kl + {at}u) / 4u][(kl + {at}u) % 4u];"
                );
            }
            out.push_str(&step.replace(GRP_ARG, &format!("{grp}u")));
            out.push_str("    }\n");
        }
        out
    };
    if p.groups == 1 {
        return group_loops(0);
    }
    let mut out = String::from("    switch grp {\n");
    for grp in 0..p.groups {
        let _ = writeln!(out, "    case {grp}u: {{\n{}    }}", group_loops(grp));
    }
    out.push_str("    default: {}\n    }\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fitted(gm: usize, gn: usize) -> [u32; 4] {
        let t = ConvTiles::default().fitted(gm, gn);
        [t.bm, t.bn, t.tm, t.tn]
    }

    #[test]
    fn fitted_tiles_waste_fewer_columns_and_rows() {
        // Large GEMMs, or ones the 256-column block already divides, keep the default.
        assert_eq!(fitted(64, 65536), [32, 256, 32, 8]);
        assert_eq!(fitted(512, 1024), [32, 256, 32, 8]);
        // 34 x 34 = 1156 output pixels: 5 blocks of 256 compute 1280, as 10 of 128 would (the
        // larger block wins a tie), 19 of 64 compute 1216.
        assert_eq!(fitted(512, 1156), [32, 64, 32, 8]);
        // A 64-channel 3x3 weight gradient (576 columns): 576 in blocks of 64 against 768.
        assert_eq!(fitted(128, 576), [32, 64, 32, 8]);
        // 16 rows halve the register tile's rows; 600 columns: blocks of 128 compute 640.
        assert_eq!(fitted(16, 600), [16, 128, 16, 8]);
        // Narrow GEMMs of many rows keep a few columns an invocation (a Winograd product's 16
        // columns: 8 invocations of 2, not 16 of 1; 32 columns: 8 of 4, not 32 of 1).
        assert_eq!(fitted(256, 16), [32, 16, 32, 2]);
        assert_eq!(fitted(256, 32), [32, 32, 32, 4]);
        assert_eq!(fitted(64, 100), [32, 128, 32, 4]);
        // Few rows halve the register tile first (one block of 32 x 4 columns covers 100),
        // then keep at least 8 invocations: 20 columns in 3 blocks of 8 rather than one of 32.
        assert_eq!(fitted(3, 100), [4, 128, 4, 4]);
        assert_eq!(fitted(1, 20), [1, 8, 1, 1]);
        for (gm, gn) in [(3, 100), (1, 20), (256, 16), (256, 32), (512, 1156), (7, 9999)] {
            let t = ConvTiles::default().fitted(gm, gn);
            assert!(
                t.check().is_ok() && t.invocations() >= MIN_DIRECT_INVOCATIONS,
                "{t:?}"
            );
        }
    }
}
