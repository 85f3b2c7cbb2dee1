// Winograd products of a 3x3 conv, the inputs' transform (ir/src/ops/winograd/):
// v[a, c, n, t] = (BT d B)[a] for the square patch d of channel c under output tile t (tile row
// t / TILES_W, column t % TILES_W; patches STEP apart, from PAD before), zero outside the image. One
// invocation per (c, n, t), t fastest so that neighbouring invocations store neighbouring
// elements. TRANSFORM loads the patch `d_k_l` with `x_at`, transforms it and stores it (see
// codegen/winograd.rs).

fn x_at(n: u32, c: u32, h: i32, w: i32) -> f32 {
    if (h < 0 || h >= i32(X_H) || w < 0 || w >= i32(X_W)) {
        return 0.0;
    }
    return ld_x(n, c, u32(h), u32(w));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let t = i % V_W;
    let n = (i / V_W) % V_H;
    let c = i / (V_W * V_H);
    let h0 = i32((t / TILES_W) * STEP) - i32(PAD);
    let w0 = i32((t % TILES_W) * STEP) - i32(PAD);
TRANSFORM
}
