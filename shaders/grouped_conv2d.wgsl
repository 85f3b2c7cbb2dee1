// Grouped 2-D convolution (PyTorch's `groups`; depthwise when each group is one channel), one
// invocation per output element:
// y[n, o, oh, ow] = b[o] + sum over c < CG, kh, kw of
//                   x[n, (o / OG) * CG + c, oh*STRIDE + kh - PAD, ow*STRIDE + kw - PAD] * w[o, c, kh, kw]
// An output sums only CG * KH * KW products (9 for a depthwise 3x3): too few to fill the
// GEMM's tiles, whose rows would mostly idle.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let p = unflat(i, vec4<u32>(Y_N, Y_C, Y_H, Y_W));
    let c0 = (p.y / OG) * CG;
    let h0 = i32(p.z * STRIDE) - i32(PAD);
    let w0 = i32(p.w * STRIDE) - i32(PAD);
    var acc = ld_b(0u, 0u, 0u, p.y);
    for (var c = 0u; c < CG; c++) {
        for (var kh = 0u; kh < KH; kh++) {
            let h = h0 + i32(kh);
            if (h < 0 || h >= i32(X_H)) {
                continue;
            }
            for (var kw = 0u; kw < KW; kw++) {
                let w = w0 + i32(kw);
                if (w < 0 || w >= i32(X_W)) {
                    continue;
                }
                acc += ld_x(p.x, c0 + c, u32(h), u32(w)) * ld_w(p.y, c, kh, kw);
            }
        }
    }
    st_y(p.x, p.y, p.z, p.w, acc);
}
