// Direct 2-D convolution, zero padding, with stride.
// y[n, o, oh, ow] = b[o] + sum_{ci, kh, kw} x[n, ci, oh*STRIDE + kh - PAD, ow*STRIDE + kw - PAD] * w[o, ci, kh, kw]
// One invocation: a register tile of 4 consecutive output channels (co..co+3) x 4 consecutive
// output pixels (ow0..ow0+3) of one row, so each loaded input serves 4 multiply-adds and each
// loaded weight 4 more. Consecutive invocations are consecutive pixel quads.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let p = unflat(i, vec4<u32>(Y_N, CO_BLOCKS, Y_H, W_BLOCKS));
    let n = p.x;
    let co = p.y * 4u;
    let oh = p.z;
    let ow0 = p.w * 4u;
    // Channels past Y_C (the last, partial tile) read the last real channel and are not stored.
    let o = min(vec4<u32>(co, co + 1u, co + 2u, co + 3u), vec4<u32>(Y_C - 1u));
    let bias = vec4<f32>(ld_b(0u, 0u, 0u, o.x), ld_b(0u, 0u, 0u, o.y), ld_b(0u, 0u, 0u, o.z), ld_b(0u, 0u, 0u, o.w));
    // acc[q]: the 4 output channels of pixel ow0 + q.
    var acc = array<vec4<f32>, 4>(bias, bias, bias, bias);
    let ih0 = i32(oh * STRIDE) - i32(PAD);
    let iw0 = i32(ow0 * STRIDE) - i32(PAD);
    for (var ci = 0u; ci < X_C; ci++) {
        for (var kh = 0u; kh < KH; kh++) {
            let ih = ih0 + i32(kh);
            if (ih < 0 || ih >= i32(X_H)) {
                continue;
            }
            for (var kw = 0u; kw < KW; kw++) {
                let wv = vec4<f32>(ld_w(o.x, ci, kh, kw), ld_w(o.y, ci, kh, kw), ld_w(o.z, ci, kh, kw), ld_w(o.w, ci, kh, kw));
                for (var q = 0u; q < 4u; q++) {
                    // Pixels past Y_W (the last, partial quad) compute on and are not stored.
                    let iw = iw0 + i32(q * STRIDE + kw);
                    if (iw >= 0 && iw < i32(X_W)) {
                        acc[q] += ld_x(n, ci, u32(ih), u32(iw)) * wv;
                    }
                }
            }
        }
    }
    for (var q = 0u; q < 4u; q++) {
        let ow = ow0 + q;
        if (ow < Y_W) {
            st_y(n, co, oh, ow, acc[q].x);
            if (co + 1u < Y_C) { st_y(n, co + 1u, oh, ow, acc[q].y); }
            if (co + 2u < Y_C) { st_y(n, co + 2u, oh, ow, acc[q].z); }
            if (co + 3u < Y_C) { st_y(n, co + 3u, oh, ow, acc[q].w); }
        }
    }
}
