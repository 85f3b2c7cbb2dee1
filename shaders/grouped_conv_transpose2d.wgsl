// Grouped transposed 2-D convolution (weight [C, O / groups, KH, KW]) as a gather, one
// invocation per output element:
// y[n, o, oh, ow] = b[o] + sum over c < CG, kh, kw with oh + PAD - kh = ih * STRIDE (and the same
//                   for w) of x[n, (o / OG) * CG + c, ih, iw] * w[(o / OG) * CG + c, o % OG, kh, kw]

// The input row (or column) that kernel tap k brings to output position o, or -1 where none does.
fn source(o: u32, k: u32, size: u32) -> i32 {
    let t = i32(o + PAD) - i32(k);
    if (t < 0 || t % i32(STRIDE) != 0 || t / i32(STRIDE) >= i32(size)) {
        return -1;
    }
    return t / i32(STRIDE);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let p = unflat(i, vec4<u32>(Y_N, Y_C, Y_H, Y_W));
    let c0 = (p.y / OG) * CG;
    let og = p.y % OG;
    var acc = ld_b(0u, 0u, 0u, p.y);
    for (var kh = 0u; kh < KH; kh++) {
        let ih = source(p.z, kh, X_H);
        if (ih < 0) {
            continue;
        }
        for (var kw = 0u; kw < KW; kw++) {
            let iw = source(p.w, kw, X_W);
            if (iw < 0) {
                continue;
            }
            for (var c = 0u; c < CG; c++) {
                acc += ld_x(p.x, c0 + c, u32(ih), u32(iw)) * ld_w(c0 + c, og, kh, kw);
            }
        }
    }
    st_y(p.x, p.y, p.z, p.w, acc);
}
