// The weight gradient of a convolution (and of a transposed one), as a correlation:
// out[a, b, ki, kj] = sum over n, i, j of s[n, a, i, j] * g[n, b, i*STRIDE + ki - PAD, j*STRIDE + kj - PAD]
// conv2d:           s = gy [N, O, Ho, Wo], g = x  [N, C, H, W],   out [O, C, KH, KW]
// conv_transpose2d: s = x  [N, C, H, W],   g = gy [N, O, Ho, Wo], out [C, O, KH, KW]
// in the GEMM of shaders/gemm.wgsl: m = a, col = (b, ki, kj), k = (n, i, j), the long sum.

fn a_at(m: u32, k: u32, grp: u32) -> f32 {
    let t = k / S_W;
    return ld_s(t / S_H, m, t % S_H, k % S_W);
}

// (b, ki - PAD, kj - PAD).
fn b_col(col: u32) -> vec4<i32> {
    let t = col / KW;
    return vec4<i32>(i32(t / KH), i32(t % KH) - i32(PAD), i32(col % KW) - i32(PAD), 0);
}

fn b_at(c: vec4<i32>, k: u32, grp: u32) -> f32 {
    let t = k / S_W;
    let gh = i32((t % S_H) * STRIDE) + c.y;
    let gw = i32((k % S_W) * STRIDE) + c.z;
    if (gh < 0 || gh >= i32(G_H) || gw < 0 || gw >= i32(G_W)) {
        return 0.0;
    }
    return ld_g(t / S_H, u32(c.x), u32(gh), u32(gw));
}

fn c_st(m: u32, col: u32, v: f32) {
    let t = col / KW;
    st_out(m, t / KH, t % KH, col % KW, v);
}
