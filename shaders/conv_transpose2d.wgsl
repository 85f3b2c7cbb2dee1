// Transposed 2-D convolution (PyTorch's ConvTranspose2d, weight [C_in, C_out, KH, KW]), as a gather:
// y[n, o, oh, ow] = b[o] + sum over ci, kh, kw with oh = ih*STRIDE - PAD + kh (and the same for w)
//                   of x[n, ci, ih, iw] * w[ci, o, kh, kw]
// One invocation: 4 consecutive output channels of one output pixel, as in conv2d.

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
    for (var ci = 0u; ci < X_C; ci++) {
        for (var kh = 0u; kh < KH; kh++) {
            // ih * STRIDE = oh + PAD - kh must be a non-negative multiple of STRIDE below X_H * STRIDE.
            let th = i32(oh + PAD) - i32(kh);
            if (th < 0 || th % i32(STRIDE) != 0 || th / i32(STRIDE) >= i32(X_H)) {
                continue;
            }
            let ih = u32(th) / STRIDE;
            for (var kw = 0u; kw < KW; kw++) {
                let tw = i32(ow + PAD) - i32(kw);
                if (tw < 0 || tw % i32(STRIDE) != 0 || tw / i32(STRIDE) >= i32(X_W)) {
                    continue;
                }
                let xv = ld_x(n, ci, ih, u32(tw) / STRIDE);
                let wv = vec4<f32>(ld_w(ci, o.x, kh, kw), ld_w(ci, o.y, kh, kw), ld_w(ci, o.z, kh, kw), ld_w(ci, o.w, kh, kw));
                acc += xv * wv;
            }
        }
    }
    st_y(n, co, oh, ow, acc.x);
    if (co + 1u < Y_C) { st_y(n, co + 1u, oh, ow, acc.y); }
    if (co + 2u < Y_C) { st_y(n, co + 2u, oh, ow, acc.z); }
    if (co + 3u < Y_C) { st_y(n, co + 3u, oh, ow, acc.w); }
}
