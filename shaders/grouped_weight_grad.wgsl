// The weight gradient of a grouped convolution (and of a grouped transposed one), one invocation
// per weight element, as the correlation of shaders/weight_grad.wgsl within a group:
// out[a, b, ki, kj] = sum over n, i, j of s[n, a, i, j] * g[n, (a / AG) * OUT_C + b, i*STRIDE + ki - PAD, j*STRIDE + kj - PAD]
// conv2d:           s = gy [N, O, Ho, Wo], g = x  [N, C, H, W],   out [O, C / groups, KH, KW]
// conv_transpose2d: s = x  [N, C, H, W],   g = gy [N, O, Ho, Wo], out [C, O / groups, KH, KW]
// with AG = S_C / groups. A depthwise weight has few elements, each a long sum: a GPU would
// want the sum split across a workgroup.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let p = unflat(i, vec4<u32>(OUT_N, OUT_C, OUT_H, OUT_W));
    let gc = (p.x / AG) * OUT_C + p.y;
    var acc = 0.0;
    for (var n = 0u; n < S_N; n++) {
        for (var si = 0u; si < S_H; si++) {
            let gh = i32(si * STRIDE + p.z) - i32(PAD);
            if (gh < 0 || gh >= i32(G_H)) {
                continue;
            }
            for (var sj = 0u; sj < S_W; sj++) {
                let gw = i32(sj * STRIDE + p.w) - i32(PAD);
                if (gw < 0 || gw >= i32(G_W)) {
                    continue;
                }
                acc += ld_s(n, p.x, si, sj) * ld_g(n, gc, u32(gh), u32(gw));
            }
        }
    }
    st_out(p.x, p.y, p.z, p.w, acc);
}
