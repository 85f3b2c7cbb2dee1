// The gradient of a max pool whose windows do not overlap (STRIDE >= K, no padding), as VGG's
// 2x2 stride-2 pools: one invocation per cell of STRIDE x STRIDE input pixels, cell (oh, ow)
// holding window (oh, ow) in its top left corner. It finds the window's first maximum once
// (`argmax`, pool_argmax.wgsl) and writes the cell's gx: gy at the maximum, 0 elsewhere and in
// the cells past the last window. The gather of shaders/max_pool2d_grad.wgsl loads the window
// once per pixel instead.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let q = unflat(i, vec4<u32>(X_N, X_C, (X_H + STRIDE - 1u) / STRIDE, (X_W + STRIDE - 1u) / STRIDE));
    let n = q.x;
    let c = q.y;
    let oh = q.z;
    let ow = q.w;
    // The maximum's input coordinates, or none (past the input) for a cell without a window.
    var best = vec2<u32>(X_H, X_W);
    var g = 0.0;
    if (oh < GY_H && ow < GY_W) {
        best = argmax(n, c, oh, ow);
        g = ld_gy(n, c, oh, ow);
    }
    for (var r = 0u; r < STRIDE; r++) {
        let h = oh * STRIDE + r;
        for (var s = 0u; s < STRIDE; s++) {
            let w = ow * STRIDE + s;
            if (h < X_H && w < X_W) {
                st_gx(n, c, h, w, select(0.0, g, h == best.x && w == best.y));
            }
        }
    }
}
