//! The GEMM of `shaders/gemm.wgsl` on cooperative matrices (wgpu's experimental
//! `wgpu_cooperative_matrix`: tensor cores on NVIDIA), for the f16 precision where the device
//! offers square matrices with f16 operands and f32 sums (`Target::coop_matrix`).
//!
//! The workgroup stages the A and B slices of each k step as f16, as the register-tiled GEMM
//! does; then each subgroup multiplies its own PR x PC matrices of the block's C, of side S,
//! holding them across the k loop. At the end the subgroups store C to workgroup memory, and
//! every invocation stores its share of it through `c_st`, the op's (fused) store.

use crate::{ConvTiles, Target};
use std::fmt::Write;

/// The block of a cooperative GEMM: 64 x 64 of C, k in steps of 16, 128 invocations (the
/// register tile sizes only set the invocation count: nothing is tiled in registers).
pub(super) const TILES: ConvTiles = ConvTiles {
    bm: 64,
    bn: 64,
    bk: 16,
    tm: 4,
    tn: 8,
};

/// The workgroup memory a cooperative GEMM takes: the f16 slices of A and B, and C's block.
pub const WORKGROUP_BYTES: u32 = (TILES.bm + TILES.bn) * TILES.bk * 2 + TILES.bm * TILES.bn * 4;

/// Matrices of C a subgroup holds at most: 16 of side 16 are 32 f32 registers a lane on a
/// 32-lane subgroup.
const MAX_PER_SUBGROUP: u32 = 16;

/// How the block's C splits over the subgroups: matrices of side `side`, each subgroup `rows`
/// x `cols` of them, the subgroups in a grid `sg_cols` wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    pub side: u32,
    pub rows: u32,
    pub cols: u32,
    pub sg_cols: u32,
}

impl Layout {
    /// The layout for `target`, if its GEMMs run on cooperative matrices: the f16 precision,
    /// matrices offered, and one fixed subgroup size that splits the block evenly.
    pub fn of(target: &Target) -> Option<Layout> {
        let (side, lanes) = (target.coop_matrix(), target.subgroup_size());
        let f16 = target.precision == crate::Precision::F16;
        if !f16
            || !matches!(side, 8 | 16)
            || lanes == 0
            || !TILES.invocations().is_multiple_of(lanes)
        {
            return None;
        }
        let per_row = TILES.bm / side;
        let subgroups = TILES.invocations() / lanes;
        let per_subgroup = (per_row * per_row) / subgroups.max(1);
        let cols = per_subgroup.min(per_row);
        let rows = per_subgroup / cols.max(1);
        let fits = per_subgroup > 0
            && per_subgroup <= MAX_PER_SUBGROUP
            && per_row.is_multiple_of(cols)
            && per_row.is_multiple_of(rows.max(1))
            && rows * cols * subgroups == per_row * per_row;
        fits.then(|| Layout {
            side,
            rows,
            cols,
            sg_cols: per_row / cols,
        })
    }

    fn mat(&self, role: &str, ty: &str) -> String {
        format!("coop_mat{0}x{0}<{ty}, {role}>", self.side)
    }
}

/// Module-scope declarations: C's block in workgroup memory, filled at the end.
pub(super) fn declarations() -> &'static str {
    "var<workgroup> tile_c: array<f32, BM * BN>;\n"
}

/// The `main` parameter the subgroups' numbering needs.
pub(super) const PARAMS: &str = ", @builtin(subgroup_id) sg: u32";

/// The GEMM template's MICRO_DECL, MICRO_STEP (the inner k loop advances by K_STEP = side)
/// and MICRO_STORE for `l`.
pub(super) fn tile(l: Layout) -> (String, String, String) {
    let (mut decl, mut step, mut store) = (String::new(), String::new(), String::new());
    let _ = writeln!(
        decl,
        "    // This subgroup's {} x {} matrices of C.\n    let sg_r = sg / {}u;\n    let sg_c = sg % {}u;",
        l.rows, l.cols, l.sg_cols, l.sg_cols
    );
    // A's rows load column-major from tile_a (k-major, stride BM), B's columns row-major from
    // tile_b (stride BN): (count, C's coordinate, subgroup coordinate, operand, load, role,
    // tile, stride).
    let operands = [
        (l.rows, "row", "sg_r", "a", "coopLoad", "A", "tile_a", "BM"),
        (l.cols, "col", "sg_c", "b", "coopLoadT", "B", "tile_b", "BN"),
    ];
    for (count, coord, sg, x, load, role, tile, stride) in operands {
        for i in 0..count {
            let _ = writeln!(
                decl,
                "    let c_{coord}_{i} = ({sg} * {count}u + {i}u) * {}u;",
                l.side
            );
            let _ = writeln!(
                step,
                "            let {x}_{i} = {load}<{}>(&{tile}[kk * {stride} + c_{coord}_{i}], {stride});",
                l.mat(role, "f16")
            );
        }
    }
    for r in 0..l.rows {
        for c in 0..l.cols {
            let _ = writeln!(decl, "    var acc_{r}_{c} = {}();", l.mat("C", "f32"));
            let _ = writeln!(
                step,
                "            acc_{r}_{c} = coopMultiplyAdd(a_{r}, b_{c}, acc_{r}_{c});"
            );
            let _ = writeln!(
                store,
                "    coopStoreT(acc_{r}_{c}, &tile_c[c_row_{r} * BN + c_col_{c}], BN);"
            );
        }
    }
    store.push_str(
        "    workgroupBarrier();
    for (var e = lid; e < BM * BN; e += WG) {
        let m = e / BN;
        let n = e % BN;
        if (m0 + m < GM && n0 + n < GN) {
            c_st(m0 + m, col_base + n0 + n, tile_c[e]);
        }
    }
",
    );
    (decl, step, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(precision: crate::Precision, side: u32, lanes: u32) -> Option<Layout> {
        let limits = crate::Limits {
            coop_matrix: side,
            subgroup_size: lanes,
            ..Default::default()
        };
        let target = Target {
            precision,
            limits,
            ..Default::default()
        };
        Layout::of(&target)
    }

    #[test]
    fn subgroups_split_the_block_evenly() {
        use crate::Precision::*;
        // NVIDIA: 16x16 matrices, 32 lanes: 4 subgroups of 1 x 4 matrices.
        let l = layout(F16, 16, 32).unwrap();
        assert_eq!((l.rows, l.cols, l.sg_cols), (1, 4, 1));
        // lavapipe 26: 8x8, 8 lanes: 16 subgroups of 1 x 4 of the 8 x 8 matrices.
        let l = layout(F16, 8, 8).unwrap();
        assert_eq!((l.rows, l.cols, l.sg_cols), (1, 4, 2));
        // 64 lanes (AMD's wave64) with 16x16: 2 subgroups of 2 x 4.
        let l = layout(F16, 16, 64).unwrap();
        assert_eq!((l.rows, l.cols, l.sg_cols), (2, 4, 1));
        // 8x8 on 32 lanes: 4 subgroups of 2 x 8.
        let l = layout(F16, 8, 32).unwrap();
        assert_eq!((l.rows, l.cols, l.sg_cols), (2, 8, 1));
        // f32, no matrices, subgroups of no fixed size, or too many subgroups for the block.
        assert_eq!(layout(F32, 16, 32), None);
        assert_eq!(layout(F16, 0, 32), None);
        assert_eq!(layout(F16, 16, 0), None);
        assert_eq!(layout(F16, 16, 4), None);
    }
}
