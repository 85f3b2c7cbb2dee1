// The gradient of max pooling, as a gather (no atomics): every input pixel sums gy over the
// windows whose first maximum (row-major, as the CPU reference and PyTorch) it is.
// gx[n, c, h, w] = sum over (oh, ow) with argmax(n, c, oh, ow) == (h, w) of gy[n, c, oh, ow]
// GATHER (codegen/window.rs) adds up `acc`: for small windows, unrolled over the NB x NB input
// neighbourhood that the windows holding the pixel cover, each element loaded once; otherwise
// a loop that finds each such window's maximum with `argmax` (pool_argmax.wgsl; `windows`:
// pool_windows.wgsl).

// x at (h, w), 0 outside the input (its `inside` flag keeps it out of every maximum).
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
    let p = unflat(i, vec4<u32>(X_N, X_C, X_H, X_W));
    var acc = 0.0;
GATHER
    st_gx(p.x, p.y, p.z, p.w, acc);
}
