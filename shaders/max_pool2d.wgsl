// Max pooling over K x K windows with stride; padding counts as -infinity (it is skipped).
// y[n, c, oh, ow] = max over kh, kw of x[n, c, oh*STRIDE + kh - PAD, ow*STRIDE + kw - PAD]

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let p = unflat(i, vec4<u32>(Y_N, Y_C, Y_H, Y_W));
    let h0 = i32(p.z * STRIDE) - i32(PAD);
    let w0 = i32(p.w * STRIDE) - i32(PAD);
    // The lowest finite f32: a window always holds at least one real element (PAD < K).
    var m = -3.4028235e38;
    for (var kh = 0u; kh < K; kh++) {
        let h = h0 + i32(kh);
        if (h < 0 || h >= i32(X_H)) {
            continue;
        }
        for (var kw = 0u; kw < K; kw++) {
            let w = w0 + i32(kw);
            if (w < 0 || w >= i32(X_W)) {
                continue;
            }
            m = max(m, ld_x(p.x, p.y, u32(h), u32(w)));
        }
    }
    st_y(p.x, p.y, p.z, p.w, m);
}
