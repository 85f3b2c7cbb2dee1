// The GEMM of shaders/gemm.wgsl without workgroup memory, for CPUs (lavapipe): a workgroup
// computes BM (= TM) rows of C for BN = WG * TN columns, each invocation all TM rows of its TN
// columns n0 + lid + j * WG, reading A and B straight through the op's operand functions.
// A's row and k are the same for every invocation of the workgroup (uniform); the only
// per-invocation (gathered) loads are B's, one per TM multiply-adds. Out-of-range rows and
// columns read a clamped, in-range element and are not stored.
// MICRO_LOOP is the k loop over a_at and b_at; block_m0 and block_n_tile place the workgroup.
// On a device with subgroups, EXTRA_PARAMS is the subgroup lane: each lane loads a different row of A and subgroupBroadcast hands them out, one
// gather for a subgroup's worth of rows instead of one per row.
// MICRO_STORE stores the tile through a loop (codegen's `store_loop`): one copy of `c_st`, the
// consumer's fused epilogue, keeps llvmpipe's compile time in check.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>EXTRA_PARAMS) {
    let g = flat_index(wid, nwg, 1u);
    if (g >= TOTAL) {
        return;
    }
    let m0 = block_m0(g);
    // A batch of GROUPS GEMMs (see shaders/gemm.wgsl): this workgroup's group, its column
    // tile, and the group's columns and k's in the operand functions' numbering.
    let n_tile = block_n_tile(g);
    let grp = n_tile / N_TILES;
    let n0 = (n_tile % N_TILES) * BN;
    let col_base = grp * GN;
    let k_base = grp * GK;
    let k_end = k_base + group_k(grp);
    let tx = lid;
    let ty = 0u;
MICRO_DECL
MICRO_LOOP
MICRO_STORE
}
