// Transposed 2-D convolution (PyTorch's ConvTranspose2d, weight [C_in, C_out, KH, KW]) as a
// gather, in the implicit GEMM of shaders/gemm.wgsl:
// y[n, o, oh, ow] = b[o] + sum over ci, kh, kw with oh = ih*STRIDE - PAD + kh (and the same for w)
//                   of x[n, ci, ih, iw] * w[ci, o, kh, kw]
// m = o, k = (ci, kh, kw), col = (n, oh, ow). Taps that miss the strided input grid read 0.

fn a_at(m: u32, k: u32) -> f32 {
    let r = k % (KH * KW);
    return ld_w(k / (KH * KW), m, r / KW, r % KW);
}

// (n, oh + PAD, ow + PAD): a tap kh reads input row (oh + PAD - kh) / STRIDE if that divides.
fn b_col(col: u32) -> vec4<i32> {
    let ow = col % Y_W;
    let t = col / Y_W;
    return vec4<i32>(i32(t / Y_H), i32(t % Y_H + PAD), i32(ow + PAD), 0);
}

fn b_at(c: vec4<i32>, k: u32) -> f32 {
    let r = k % (KH * KW);
    let th = c.y - i32(r / KW);
    let tw = c.z - i32(r % KW);
    if (th < 0 || tw < 0) {
        return 0.0;
    }
    let ih = u32(th) / STRIDE;
    let iw = u32(tw) / STRIDE;
    if (u32(th) % STRIDE != 0u || u32(tw) % STRIDE != 0u || ih >= X_H || iw >= X_W) {
        return 0.0;
    }
    return ld_x(u32(c.x), k / (KH * KW), ih, iw);
}

fn c_st(m: u32, col: u32, v: f32) {
    let t = col / Y_W;
    st_y(t / Y_H, m, t % Y_H, col % Y_W, v + ld_b(0u, 0u, 0u, m));
}
