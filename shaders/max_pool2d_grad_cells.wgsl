// The gradient of a max pool whose windows do not overlap (STRIDE >= K, no padding), as VGG's
// 2x2 stride-2 pools: one invocation per cell of STRIDE x STRIDE input pixels, cell (oh, ow)
// holding window (oh, ow) in its top left corner. It finds the window's first maximum once
// (row-major; strictly greater replaces, NaN replaces, as the CPU reference) and writes the
// cell's gx: gy at the maximum, 0 elsewhere and in the cells past the last window. The gather
// of shaders/max_pool2d_grad.wgsl loads the window once per pixel instead.

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
    var best = vec2<u32>(STRIDE, STRIDE);
    var g = 0.0;
    if (oh < GY_H && ow < GY_W) {
        var m = 0.0;
        var found = false;
        for (var kh = 0u; kh < K; kh++) {
            for (var kw = 0u; kw < K; kw++) {
                let v = ld_x(n, c, oh * STRIDE + kh, ow * STRIDE + kw);
                if (!found || v > m || v != v) {
                    found = true;
                    m = v;
                    best = vec2<u32>(kh, kw);
                }
            }
        }
        g = ld_gy(n, c, oh, ow);
    }
    for (var r = 0u; r < STRIDE; r++) {
        let h = oh * STRIDE + r;
        for (var s = 0u; s < STRIDE; s++) {
            let w = ow * STRIDE + s;
            if (h < X_H && w < X_W) {
                st_gx(n, c, h, w, select(0.0, g, r == best.x && s == best.y));
            }
        }
    }
}
