// Sum (times SCALE: 1 or 1/R_TOTAL for a mean) over the reduced dims, keeping them as size 1.
// One workgroup per output element: each invocation sums a strided share of the R_TOTAL
// elements, then wg_sum (shaders/wg_sum.wgsl, or wg_sum_subgroup.wgsl: codegen/reduce.rs).

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = flat_index(wid, nwg, 1u);
    // The same for the whole workgroup: wg_sum (barriers, or subgroupAdd) needs uniform control flow.
    if (g >= TOTAL) {
        return;
    }
    // Output coordinates: 0 in every reduced dim, where the offsets r then run.
    let o = unflat(g, vec4<u32>(Y_N, Y_C, Y_H, Y_W));
    var s = 0.0;
    for (var j = lid; j < R_TOTAL; j += WG) {
        let r = o + unflat(j, vec4<u32>(R_N, R_C, R_H, R_W));
        s += ld_x(r.x, r.y, r.z, r.w);
    }
    let total = wg_sum(lid, s);
    if (lid == 0u) {
        st_y(o.x, o.y, o.z, o.w, total * SCALE);
    }
    // APPLY
}
