// Direct 2-D convolution, zero padding, with stride, as an implicit GEMM (shaders/gemm.wgsl):
// y[n, o, oh, ow] = b[o] + sum_{ci, kh, kw} x[n, ci, oh*STRIDE + kh - PAD, ow*STRIDE + kw - PAD] * w[o, ci, kh, kw]
// m = o, k = (ci, kh, kw), col = (n, oh, ow): A is the weight, B the input patches.

fn a_at(m: u32, k: u32, grp: u32) -> f32 {
    let r = k % (KH * KW);
    return ld_w(m, k / (KH * KW), r / KW, r % KW);
}

// (n, top row, left column) of the column's input window.
fn b_col(col: u32) -> vec4<i32> {
    let ow = col % Y_W;
    let t = col / Y_W;
    return vec4<i32>(i32(t / Y_H), i32((t % Y_H) * STRIDE) - i32(PAD), i32(ow * STRIDE) - i32(PAD), 0);
}

// The input at kernel row r and column offset s of the window whose top-left corner is `c`'s
// (zero outside the image): B's element at k = (ci, r, s), and the loads of a stride-1 conv's
// window loop (codegen's `window_loop`), whose s runs past KW over an invocation's pixels.
fn b_window(c: vec4<i32>, ci: u32, r: u32, s: i32) -> f32 {
    let ih = c.y + i32(r);
    let iw = c.z + s;
    if (ih < 0 || ih >= i32(X_H) || iw < 0 || iw >= i32(X_W)) {
        return 0.0;
    }
    return ld_x(u32(c.x), ci, u32(ih), u32(iw));
}

fn b_at(c: vec4<i32>, k: u32, grp: u32) -> f32 {
    let r = k % (KH * KW);
    return b_window(c, k / (KH * KW), r / KW, i32(r % KW));
}

fn c_st(m: u32, col: u32, v: f32) {
    let t = col / Y_W;
    st_y(t / Y_H, m, t % Y_H, col % Y_W, v + ld_b(0u, 0u, 0u, m));
}
