// Direct 2-D convolution, zero padding, with stride.
// y[n, o, oh, ow] = b[o] + sum_{ci, kh, kw} x[n, ci, oh*STRIDE + kh - PAD, ow*STRIDE + kw - PAD] * w[o, ci, kh, kw]
// One invocation: 4 consecutive output channels (co..co+3) of one output pixel. Consecutive
// invocations are consecutive pixels, so a workgroup mostly shares its weights.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let p = unflat(i, vec4<u32>(Y_N, CO_BLOCKS, Y_H, Y_W));
    let n = p.x;
    let co = p.y * 4u;
    let oh = p.z;
    let ow = p.w;
    // Channels past Y_C (the last, partial tile) read the last real channel and are not stored.
    let o = min(vec4<u32>(co, co + 1u, co + 2u, co + 3u), vec4<u32>(Y_C - 1u));
    var acc = vec4<f32>(ld_b(0u, 0u, 0u, o.x), ld_b(0u, 0u, 0u, o.y), ld_b(0u, 0u, 0u, o.z), ld_b(0u, 0u, 0u, o.w));
    let ih0 = i32(oh * STRIDE) - i32(PAD);
    let iw0 = i32(ow * STRIDE) - i32(PAD);
    for (var ci = 0u; ci < X_C; ci++) {
        for (var kh = 0u; kh < KH; kh++) {
            let ih = ih0 + i32(kh);
            if (ih < 0 || ih >= i32(X_H)) {
                continue;
            }
            for (var kw = 0u; kw < KW; kw++) {
                let iw = iw0 + i32(kw);
                if (iw < 0 || iw >= i32(X_W)) {
                    continue;
                }
                let xv = ld_x(n, ci, u32(ih), u32(iw));
                let wv = vec4<f32>(ld_w(o.x, ci, kh, kw), ld_w(o.y, ci, kh, kw), ld_w(o.z, ci, kh, kw), ld_w(o.w, ci, kh, kw));
                acc += xv * wv;
            }
        }
    }
    st_y(n, co, oh, ow, acc.x);
    if (co + 1u < Y_C) { st_y(n, co + 1u, oh, ow, acc.y); }
    if (co + 2u < Y_C) { st_y(n, co + 2u, oh, ow, acc.z); }
    if (co + 3u < Y_C) { st_y(n, co + 3u, oh, ow, acc.w); }
}
