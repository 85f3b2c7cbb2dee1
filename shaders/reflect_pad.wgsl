// Reflection padding (PyTorch's ReflectionPad2d: the edge pixel is not repeated).
// y[n, c, h, w] = x[n, c, reflect(h - PAD_TOP, X_H), reflect(w - PAD_LEFT, X_W)]

fn reflect(i: i32, size: u32) -> u32 {
    let s = i32(size);
    var r = i;
    if (r < 0) {
        r = -r;
    }
    if (r >= s) {
        r = 2 * s - 2 - r;
    }
    return u32(r);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let p = unflat(i, vec4<u32>(Y_N, Y_C, Y_H, Y_W));
    let h = reflect(i32(p.z) - i32(PAD_TOP), X_H);
    let w = reflect(i32(p.w) - i32(PAD_LEFT), X_W);
    st_y(p.x, p.y, p.z, p.w, ld_x(p.x, p.y, h, w));
}
