//! The GEMM behind every convolution-like kernel (conv2d, conv_transpose2d, the weight
//! gradients, Winograd's products): the tiles (`tiles.rs`, `Target::conv_tiles` fitted to each
//! GEMM), and three strategies that write the register tile out: workgroup tiles staging both
//! operands in workgroup memory (`shaders/gemm.wgsl`, GPUs), direct tiles reading them straight
//! from the arenas (`shaders/gemm_direct.wgsl`, CPU adapters; both in `micro_tile.rs`), and
//! cooperative matrices at the f16 precision (`coop.rs`). Its users only define the operand
//! functions (`a_at`, `b_at`, `group_k`) in their op template and call [`gemm`].

pub(super) mod coop;
mod micro_tile;
pub(super) mod tiles;

use super::{Ctx, Dispatch, KernelBuilder};
use crate::{ConvTiles, Precision};
use micro_tile::{fill, micro_tile, GEMM};
use tiles::MAX_WINDOW_ROWS;

/// Whether `target`'s GEMMs run on cooperative matrices (`coop.rs`).
pub(crate) fn uses_coop_matrices(target: &crate::Target) -> bool {
    coop::Layout::of(target).is_some()
}

/// A batch of GEMMs in one kernel (see shaders/gemm.wgsl), whose op template defines `group_k`.
#[derive(Clone, Copy)]
pub(crate) enum Groups {
    /// One GEMM: `group_k` is GK.
    One,
    /// This many GEMMs whose k's decode alike (Winograd's products): one k loop, over the
    /// dispatch's group.
    Batch(usize),
    /// This many GEMMs whose k's decode differently (a transposed conv's output phases, each
    /// with its own taps): direct tiles run one k loop per group, with `grp` a literal in each,
    /// so the op's decode folds into constants: faster kernels for a longer compile.
    /// (benches/README.md, "Seventh session", has the figures.)
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

/// Add the GEMM's sizes `[GM, GN, GK]` (per group; with whether each depends on the image
/// size) and tile constants to `b`; returns the op
/// template followed by the GEMM template with its register tile written out, and the dispatch.
/// `groups` is a batch of GEMMs ([`Groups`]); one GEMM gets the default `group_k`: all GK k's.
/// `row` is a stride-1 conv2d's row of taps, which direct tiles with few rows walk as a window
/// ([`RowTaps`]).
pub(crate) fn gemm(
    b: &mut KernelBuilder,
    ctx: &Ctx,
    op_src: &str,
    ([gm, gn, gk], sized): ([usize; 3], [bool; 3]),
    groups: Groups,
    row: Option<RowTaps>,
) -> Result<(String, Dispatch), String> {
    // At the f16 precision, cooperative matrices where the device has them (`coop.rs`).
    let coop = coop::Layout::of(ctx.target);
    let t = match coop {
        Some(_) => coop::TILES,
        None => {
            ctx.target.conv_tiles.check()?;
            // Taking sizes as data, the tiles are those of a large GEMM at every size.
            let data = ctx.target.sizes == crate::Sizes::Data;
            let fit = |v: usize, sized: bool| if data && sized { 1 << 30 } else { v };
            ctx.target
                .conv_tiles
                .fitted(fit(gm, sized[0]), fit(gn, sized[1]))
        }
    };
    let group_count = groups.count();
    // Direct tiles load A's rows one per subgroup lane and broadcast them where the device has
    // subgroups: a load every lane makes of one address is gathered lane by lane on CPUs.
    let lanes = ctx.target.subgroup_size();
    let broadcast = (t.direct() && lanes > 0)
        .then_some(lanes)
        .filter(|&l| t.invocations() % l == 0);
    // Whether a row's width splits into runs depends on the size.
    let row = row.filter(|_| ctx.target.sizes == crate::Sizes::Specialised);
    let window = row.filter(|r| t.direct() && r.pays(t)).map(|r| r.taps);
    let m_tiles = gm.div_ceil(t.bm as usize);
    let n_tiles = gn.div_ceil(t.bn as usize);
    let one_group = "fn group_k(grp: u32) -> u32 {\n    return GK;\n}\n";
    let group_k = match groups {
        Groups::One => one_group,
        _ => "",
    };
    let [gm_sized, gn_sized, gk_sized] = sized;
    for (name, v, size) in [
        ("GM", gm, gm_sized),
        ("GN", gn, gn_sized),
        ("GK", gk, gk_sized),
        ("M_TILES", m_tiles, gm_sized),
        ("N_TILES", n_tiles, gn_sized),
    ] {
        match size {
            true => b.size(name, v as u64)?,
            false => b.u32(name, v as u64)?,
        }
    }
    for (name, v) in [
        ("GROUPS", group_count),
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
            let tile = micro_tile(t, broadcast, window, groups, staged);
            ("", tile)
        }
    };
    let src =
        format!("alias staged = {staged};\n{decls}{op_src}\n{group_k}\n{BLOCK_FUNCTIONS}\n{tile}");
    let count = (m_tiles * n_tiles * group_count) as u64;
    let wg = t.invocations();
    Ok((src, Dispatch::Groups { count, wg }))
}

/// A stride-1 conv2d's `taps` (KW) along output rows of `width` pixels. A direct GEMM with few
/// rows is bound by its gathered input loads (one per TM multiply-adds). Walked as a window
/// instead, an invocation takes TN adjacent pixels of one row, so for each (channel, kernel
/// row) TN + KW - 1 loads feed KW x TM x TN multiply-adds. A tall tile already shares its loads
/// across rows and loses to the plain loop as a window, so the window is for tiles of at most
/// 8 rows (`runtime/examples/jit_cost.rs` measures both).
pub(crate) struct RowTaps {
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

/// The first row and the column tile of workgroup `g`.
const BLOCK_FUNCTIONS: &str = "fn block_m0(g: u32) -> u32 {\n    return (g % M_TILES) * BM;\n}\n\
     fn block_n_tile(g: u32) -> u32 {\n    return g / M_TILES;\n}\n";
