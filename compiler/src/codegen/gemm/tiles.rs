//! The direct and workgroup GEMM tiles (`crate::ConvTiles`): the default for CPU adapters,
//! what a GEMM template can use, and how a block is fitted to a GEMM smaller than it.

use crate::ConvTiles;

/// Good on lavapipe (8-wide SIMD over the invocations of a workgroup, one workgroup per CPU
/// thread, per-invocation loads done lane by lane, each costing several instructions): no
/// workgroup memory (its barriers are expensive there) and a 32 x 8 register tile, so 8
/// gathered input loads serve 256 multiply-adds; the 32 weights are 4 loads, one row per
/// subgroup lane, broadcast (`Target::subgroup_size`). `cargo run --release --example
/// conv_gflops` compares tiles (figures in docs/cpu-adapters.md).
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
    /// `gemm::RowTaps`) keeps at least [`MIN_TALL_TILE_COLUMNS`] columns where its workgroup can
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
        while t.tm > MAX_WINDOW_ROWS
            && t.tn < MIN_TALL_TILE_COLUMNS
            && t.invocations().is_multiple_of(2)
            && t.invocations() / 2 >= MIN_DIRECT_INVOCATIONS
        {
            t.tn *= 2;
        }
        t
    }
}

/// The most rows of a tile that walks a window of taps (`gemm::RowTaps`).
pub(super) const MAX_WINDOW_ROWS: u32 = 8;

/// The fewest columns [`ConvTiles::fitted`] leaves a register tile of more rows than that.
const MIN_TALL_TILE_COLUMNS: u32 = 4;

/// The fewest invocations [`ConvTiles::fitted`] gives a direct workgroup: lavapipe runs 8
/// invocations side by side in one 256-bit SIMD register, so fewer would leave lanes idle.
pub const MIN_DIRECT_INVOCATIONS: u32 = 8;

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
        for (gm, gn) in [
            (3, 100),
            (1, 20),
            (256, 16),
            (256, 32),
            (512, 1156),
            (7, 9999),
        ] {
            let t = ConvTiles::default().fitted(gm, gn);
            assert!(
                t.check().is_ok() && t.invocations() >= MIN_DIRECT_INVOCATIONS,
                "{t:?}"
            );
        }
    }
}
