// The weight gradient of a convolution (and of a transposed one), as a correlation:
// out[a, b, ki, kj] = sum over n, i, j of s[n, a, i, j] * g[n, b, i*STRIDE + ki - PAD, j*STRIDE + kj - PAD]
// conv2d:           s = gy [N, O, Ho, Wo], g = x  [N, C, H, W],   out [O, C, KH, KW]
// conv_transpose2d: s = x  [N, C, H, W],   g = gy [N, O, Ho, Wo], out [C, O, KH, KW]
// One workgroup per tile of 4 a-channels x 4 b-channels at one kernel offset (ki, kj): its
// invocations split the N x rows x cols pixels where the tap lands inside g (bounds computed
// once, so the loop has no bounds checks), each keeps a 4x4 register tile, then a tree sum.

var<workgroup> part: array<mat4x4<f32>, WG>;

// First i with i*STRIDE + k >= PAD.
fn first_in(k: u32) -> u32 {
    if (PAD > k) {
        return (PAD - k + STRIDE - 1u) / STRIDE;
    }
    return 0u;
}

// One past the last i < small with i*STRIDE + k - PAD < big.
fn end_in(k: u32, big: u32, small: u32) -> u32 {
    let t = big + PAD;
    if (t <= k) {
        return 0u;
    }
    return min(small, (t - 1u - k) / STRIDE + 1u);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let gi = flat_index(wid, nwg, 1u);
    // The same for the whole workgroup, so the barriers below stay in uniform control flow.
    if (gi >= TOTAL) {
        return;
    }
    let t = unflat(gi, vec4<u32>(A_BLOCKS, B_BLOCKS, KH, KW));
    let a0 = t.x * 4u;
    let b0 = t.y * 4u;
    let ki = t.z;
    let kj = t.w;
    // Channels past the end (a last, partial tile) read the last real channel and are not stored.
    let a = min(vec4<u32>(a0, a0 + 1u, a0 + 2u, a0 + 3u), vec4<u32>(S_C - 1u));
    let b = min(vec4<u32>(b0, b0 + 1u, b0 + 2u, b0 + 3u), vec4<u32>(G_C - 1u));
    let i0 = first_in(ki);
    let j0 = first_in(kj);
    let i1 = max(end_in(ki, G_H, S_H), i0);
    let j1 = max(end_in(kj, G_W, S_W), j0);
    let cols = j1 - j0;
    let plane = (i1 - i0) * cols;
    // acc[q][r]: a-channel a0 + q, b-channel b0 + r.
    var acc = mat4x4<f32>();
    for (var p = lid; p < S_N * plane; p += WG) {
        let n = p / plane;
        let r = p % plane;
        let i = i0 + r / cols;
        let j = j0 + r % cols;
        let gh = i * STRIDE + ki - PAD;
        let gw = j * STRIDE + kj - PAD;
        let sv = vec4<f32>(ld_s(n, a.x, i, j), ld_s(n, a.y, i, j), ld_s(n, a.z, i, j), ld_s(n, a.w, i, j));
        let gv = vec4<f32>(ld_g(n, b.x, gh, gw), ld_g(n, b.y, gh, gw), ld_g(n, b.z, gh, gw), ld_g(n, b.w, gh, gw));
        acc[0] += sv.x * gv;
        acc[1] += sv.y * gv;
        acc[2] += sv.z * gv;
        acc[3] += sv.w * gv;
    }
    part[lid] = acc;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k = k / 2u) {
        if (lid < k) {
            part[lid] += part[lid + k];
        }
        workgroupBarrier();
    }
    // Invocation q * 4 + r stores element (q, r) of the tile.
    if (lid < 16u) {
        let q = lid / 4u;
        let r = lid % 4u;
        if (a0 + q < S_C && b0 + r < G_C) {
            st_out(a0 + q, b0 + r, ki, kj, part[0][q][r]);
        }
    }
}
