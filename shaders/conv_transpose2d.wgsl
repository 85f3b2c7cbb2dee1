// Transposed 2-D convolution (PyTorch's ConvTranspose2d, weight [C_in, C_out, KH, KW]) as a
// gather, in the implicit GEMM of shaders/gemm.wgsl:
// y[n, o, oh, ow] = b[o] + sum over ci, kh, kw with oh = ih*STRIDE - PAD + kh (and the same for w)
//                   of x[n, ci, ih, iw] * w[ci, o, kh, kw]
// Only taps with kh = (oh + PAD) mod STRIDE (mod STRIDE) hit the strided input grid, so the
// output is split into its STRIDE x STRIDE phases (ph, pw) = ((oh + PAD) % STRIDE, ...), one
// GEMM group each (grp = ph * STRIDE + pw): m = o, col = (n, j, i) with oh = first row of the
// phase + j * STRIDE, k = (ci, a, b) over the phase's taps kh = ph + a * STRIDE,
// kw = pw + b * STRIDE. No multiply-add goes to a tap that misses (a stride-2 3x3 would waste
// three in four otherwise). PH_ROWS x PW_COLS is the largest phase; smaller ones skip the rest.

// Taps of a phase in one dimension: kernel positions p, p + STRIDE, ... below k.
fn phase_taps(p: u32, k: u32) -> u32 {
    return select(0u, (k - p + STRIDE - 1u) / STRIDE, p < k);
}

fn group_k(grp: u32) -> u32 {
    return X_C * phase_taps(grp / STRIDE, KH) * phase_taps(grp % STRIDE, KW);
}

// (n, oh, ow, group) of a column, numbered grp * GN + col.
fn out_pixel(col: u32) -> vec4<u32> {
    let grp = col / GN;
    let c = col % GN;
    let t = c / PW_COLS;
    let ph = grp / STRIDE;
    let pw = grp % STRIDE;
    let oh = (ph + STRIDE - PAD % STRIDE) % STRIDE + (t % PH_ROWS) * STRIDE;
    let ow = (pw + STRIDE - PAD % STRIDE) % STRIDE + (c % PW_COLS) * STRIDE;
    return vec4<u32>(t / PH_ROWS, oh, ow, grp);
}

// (ci, a, b, group) of a k numbered grp * GK + k: the phase's tap kh = ph + a * STRIDE,
// kw = pw + b * STRIDE of input channel ci. Where the GEMM runs a k loop per group (codegen's
// `micro_tile`), `grp` is a literal there, and the tap counts below fold into constants, so a
// k step divides by none of them (benches/README.md measures it).
fn tap(kg: u32, grp: u32) -> vec4<u32> {
    let k = kg - grp * GK;
    let tw = phase_taps(grp % STRIDE, KW);
    let taps = phase_taps(grp / STRIDE, KH) * tw;
    let t = k % taps;
    return vec4<u32>(k / taps, t / tw, t % tw, grp);
}

fn a_at(m: u32, k: u32, grp: u32) -> f32 {
    let t = tap(k, grp);
    return ld_w(t.x, m, t.w / STRIDE + t.y * STRIDE, t.w % STRIDE + t.z * STRIDE);
}

// (n, (oh + PAD - ph) / STRIDE, (ow + PAD - pw) / STRIDE): the input row of the phase's first
// tap; tap kh = ph + a * STRIDE reads that row minus a.
fn b_col(col: u32) -> vec4<i32> {
    let p = out_pixel(col);
    let ph = p.w / STRIDE;
    let pw = p.w % STRIDE;
    return vec4<i32>(i32(p.x), i32((p.y + PAD - ph) / STRIDE), i32((p.z + PAD - pw) / STRIDE), 0);
}

fn b_at(c: vec4<i32>, k: u32, grp: u32) -> f32 {
    let t = tap(k, grp);
    let ih = c.y - i32(t.y);
    let iw = c.z - i32(t.z);
    if (ih < 0 || ih >= i32(X_H) || iw < 0 || iw >= i32(X_W)) {
        return 0.0;
    }
    return ld_x(u32(c.x), t.x, u32(ih), u32(iw));
}

fn c_st(m: u32, col: u32, v: f32) {
    let p = out_pixel(col);
    if (p.y < Y_H && p.z < Y_W) {
        st_y(p.x, m, p.y, p.z, v + ld_b(0u, 0u, 0u, m));
    }
}
