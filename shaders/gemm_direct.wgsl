// The GEMM of shaders/gemm.wgsl without workgroup memory, for CPUs (lavapipe): a workgroup
// computes BM (= TM) rows of C for BN = WG * TN columns, each invocation all TM rows of its TN
// columns n0 + lid + j * WG, reading A and B straight through the op's operand functions.
// A's row and k are the same for every invocation of the workgroup (uniform), so a CPU driver
// loads each A element once and broadcasts it; the only per-invocation (gathered) loads are
// B's, one per TM multiply-adds. Out-of-range rows and columns read a clamped, in-range element
// and are not stored.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = flat_index(wid, nwg, 1u);
    if (g >= TOTAL) {
        return;
    }
    let m0 = (g % M_TILES) * BM;
    // A batch of GROUPS GEMMs (see shaders/gemm.wgsl): this workgroup's group, its column
    // tile, and the group's columns and k's in the operand functions' numbering.
    let n_tile = g / M_TILES;
    let grp = n_tile / N_TILES;
    let n0 = (n_tile % N_TILES) * BN;
    let col_base = grp * GN;
    let k_base = grp * GK;
    let k_end = k_base + group_k(grp);
    let tx = lid;
    let ty = 0u;
MICRO_DECL
    for (var k = k_base; k < k_end; k++) {
MICRO_STEP
    }
MICRO_STORE
}
