// Grouped 2-D convolution (PyTorch's `groups`; depthwise when each group is one channel):
// y[n, o, oh, ow] = b[o] + sum over c < CG, kh, kw of
//                   x[n, (o / OG) * CG + c, oh*STRIDE + kh - PAD, ow*STRIDE + kw - PAD] * w[o, c, kh, kw]
// An output sums only CG * KH * KW products (9 for a depthwise 3x3): too few to fill the
// GEMM's tiles, whose rows would mostly idle. An invocation computes RUN adjacent outputs of a
// row (Y_RUNS a row, the last cut at the row's end; TOTAL invocations) instead: their windows overlap, so for each channel and kernel row it
// loads the (RUN - 1) * STRIDE + KW input columns once, and KW weights, for RUN * KW
// multiply-adds. RUN_DECL, RUN_STEP and RUN_STORE are generated (codegen/grouped_conv.rs).

fn x_or_zero(n: u32, c: u32, h: u32, w: i32) -> f32 {
    if (w < 0 || w >= i32(X_W)) {
        return 0.0;
    }
    return ld_x(n, c, h, u32(w));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let q = unflat(i, vec4<u32>(Y_N, Y_C, Y_H, Y_RUNS));
    let p = vec4<u32>(q.xyz, q.w * RUN);
    let c0 = (p.y / OG) * CG;
    let h0 = i32(p.z * STRIDE) - i32(PAD);
    let w0 = i32(p.w * STRIDE) - i32(PAD);
RUN_DECL
    for (var c = 0u; c < CG; c++) {
        for (var kh = 0u; kh < KH; kh++) {
            let h = h0 + i32(kh);
            if (h < 0 || h >= i32(X_H)) {
                continue;
            }
RUN_STEP
        }
    }
RUN_STORE
}
