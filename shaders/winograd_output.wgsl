// Winograd products of a 3x3 conv, the outputs' transform (ir/src/ops/winograd/):
// y[n, o, tile t] = AT m[., o, n, t] A + b[o], one invocation per (n, o, t), t fastest.
// TRANSFORM loads the A^2 products `m_i_j`, transforms them and fills an array `out` (TILE x TILE, row
// major; see codegen/winograd.rs). The stores are a loop: `st_y` carries the consumer's fused
// epilogue, and one copy of it keeps llvmpipe's compile time down (codegen/gemm/micro_tile.rs,
// `store_loop`). Pixels of edge tiles past the output are not stored.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let t = i % M_W;
    let o = (i / M_W) % M_C;
    let n = i / (M_W * M_C);
TRANSFORM
    let h0 = (t / TILES_W) * TILE;
    let w0 = (t % TILES_W) * TILE;
    let bias = ld_b(0u, 0u, 0u, o);
    for (var e = 0u; e < TILE * TILE; e++) {
        let h = h0 + e / TILE;
        let w = w0 + e % TILE;
        if (h < Y_H && w < Y_W) {
            st_y(n, o, h, w, out[e] + bias);
        }
    }
}
