// Register-tiled GEMM, C[m, col] = sum over k < GK of A(m, k) * B(k, col), for m < GM and
// col < GN, over the operand functions of the op's own template (conv2d.wgsl, ...):
//   a_at(m, k, grp) -> f32            an element of A (read through the op's ld_ accessors),
//   b_col(col) -> vec4<i32>           what B's column `col` needs, worked out once per column,
//   b_at(c, k, grp) -> f32            an element of B in the column b_col gave `c`,
//   c_st(m, col, v)                   store a finished element (through the op's st_ accessor).
// A workgroup computes a BM x BN tile of C. It walks K in steps of BK, loading the A and B
// slices of each step into workgroup memory together (each invocation loads A_LOADS + B_LOADS
// elements, always the same B column, so b_col runs once), then each invocation accumulates its
// TM x TN register tile: rows ty + i * (BM / TM), columns tx + j * (BN / TN), the generated
// MICRO_* code below (unrolled, one variable per element, so the tile stays in registers).
// Out-of-range rows, columns and k are loaded as 0 and not stored.
// A GEMM may be a batch of GROUPS GEMMs with the same rows (a transposed convolution's output
// phases): group `grp` has at most GN columns, numbered grp * GN + col in b_col and c_st, and
// group_k(grp) <= GK k's, numbered grp * GK + k in a_at and b_at, which also get grp itself (a
// literal where codegen unrolls a loop per group). One group has group_k = GK.
// The tiles hold `staged` values, an alias codegen defines: f32, or f16 at the f16 precision
// (compiler::Precision: operands rounded as they are staged, the sums kept in f32).
// On cooperative matrices (codegen/gemm/coop.rs) the MICRO_* code is theirs instead: the inner loop
// steps K_STEP (the matrices' side) k's at a time, EXTRA_PARAMS numbers the subgroups, and
// MICRO_STORE goes through workgroup memory; otherwise K_STEP is 1 and EXTRA_PARAMS empty.

const A_LOADS: u32 = BM * BK / WG;
const B_LOADS: u32 = BK * BN / WG;

var<workgroup> tile_a: array<staged, A_TILE>;
var<workgroup> tile_b: array<staged, B_TILE>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>EXTRA_PARAMS) {
    let g = flat_index(wid, nwg, 1u);
    // The same for the whole workgroup, so the barriers below stay in uniform control flow.
    if (g >= TOTAL) {
        return;
    }
    // Workgroups next to each other share a column tile (the larger operand, for a conv).
    let m0 = (g % M_TILES) * BM;
    let n_tile = g / M_TILES;
    let grp = n_tile / N_TILES;
    let n0 = (n_tile % N_TILES) * BN;
    let col_base = grp * GN;
    let k_base = grp * GK;
    let gk = group_k(grp);
    let a_k = lid % BK;
    let a_m = lid / BK;
    let b_n = lid % BN;
    let b_k = lid / BN;
    let col = n0 + b_n;
    let col_in = col < GN;
    let info = b_col(col_base + min(col, GN - 1u));
    let tx = lid % (BN / TN);
    let ty = lid / (BN / TN);
MICRO_DECL
    for (var k0 = 0u; k0 < gk; k0 += BK) {
        let ka = k0 + a_k;
        for (var e = 0u; e < A_LOADS; e++) {
            let m = a_m + e * (WG / BK);
            var v = 0.0;
            if (m0 + m < GM && ka < gk) {
                v = a_at(m0 + m, k_base + ka, grp);
            }
            tile_a[a_k * BM + m] = staged(v);
        }
        for (var e = 0u; e < B_LOADS; e++) {
            let kk = b_k + e * (WG / BN);
            var v = 0.0;
            if (col_in && k0 + kk < gk) {
                v = b_at(info, k_base + k0 + kk, grp);
            }
            tile_b[kk * BN + b_n] = staged(v);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk += K_STEP) {
MICRO_STEP
        }
        workgroupBarrier();
    }
MICRO_STORE
}
