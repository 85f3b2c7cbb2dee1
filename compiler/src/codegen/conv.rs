//! Convolutions as register-tiled implicit GEMMs: one GEMM template (`shaders/gemm.wgsl`) over
//! the operand functions of each op's template (conv2d, conv_transpose2d here; the weight
//! gradients in `conv_grad.rs`), with the tiles of `Target::conv_tiles` fitted to each GEMM
//! (`tiles.rs`). All global memory goes through the generated `ld_`/`st_` accessors, so a
//! fused load or store composes with it.

use super::micro_tile::{fill, micro_tile, GEMM};
use super::tiles::MAX_WINDOW_ROWS;
use super::{coop, Ctx, Dispatch, KernelBuilder};
use crate::{ConvTiles, Kernel, PanelLayout, Panels, Precision, ValuePlan};
use ir::ops::{Conv2d, ConvTranspose2d};

const CONV2D: &str = include_str!("../../../shaders/conv2d.wgsl");
const CONV_TRANSPOSE2D: &str = include_str!("../../../shaders/conv_transpose2d.wgsl");

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
