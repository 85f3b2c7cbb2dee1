// Instance normalisation, one workgroup per (n, c) over the X_H x X_W plane:
// y = (x - mean) / sqrt(var + EPS), biased variance. Two passes (mean, then the mean of squared
// deviations) rather than E[x^2] - mean^2, which cancels badly in f32.

// wg_sum: shaders/wg_sum.wgsl, or wg_sum_subgroup.wgsl; plane_start and plane_next:
// shaders/plane_walk.wgsl (codegen/reduce.rs).

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = flat_index(wid, nwg, 1u);
    // The same for the whole workgroup: wg_sum (barriers, or subgroupAdd) needs uniform control flow.
    if (g >= TOTAL) {
        return;
    }
    let n = g / X_C;
    let c = g % X_C;
    let count = X_H * X_W;
    var s = 0.0;
    for (var p = plane_start(lid); p.h < X_H; plane_next(&p)) {
        s += ld_x(n, c, p.h, p.w);
    }
    let mean = wg_sum(lid, s) / f32(count);
    var q = 0.0;
    for (var p = plane_start(lid); p.h < X_H; plane_next(&p)) {
        let d = ld_x(n, c, p.h, p.w) - mean;
        q += d * d;
    }
    let inv = inverseSqrt(wg_sum(lid, q) / f32(count) + EPS);
    for (var p = plane_start(lid); p.h < X_H; plane_next(&p)) {
        st_y(n, c, p.h, p.w, (ld_x(n, c, p.h, p.w) - mean) * inv);
    }
}
