// Two plane means at once, one workgroup per (n, c) over the X_H x X_W planes of a and b (of one
// shape): y[n, c, 0, 0] = mean of a, y[n, c, 0, 1] = mean of b. An instance norm's gradient takes
// mean(g) and mean(g * y) of the same planes; one pass loads g once for both.

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
    var sa = 0.0;
    var sb = 0.0;
    for (var p = plane_start(lid); p.h < X_H; plane_next(&p)) {
        sa += ld_a(n, c, p.h, p.w);
        sb += ld_b(n, c, p.h, p.w);
    }
    let ma = wg_sum(lid, sa) / f32(count);
    let mb = wg_sum(lid, sb) / f32(count);
    if (lid == 0u) {
        st_y(n, c, 0u, 0u, ma);
        st_y(n, c, 0u, 1u, mb);
    }
    // APPLY
}
