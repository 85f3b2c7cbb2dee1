// Softmax along one axis: y = exp(x - max) / sum(exp(x - max)) over each row of LEN elements,
// at the row's start o (0 on the axis; ROWS_* is the shape with the axis's extent 1) plus
// j * STEP. One workgroup per row: the maximum (wg_max), the sum of exponentials (wg_sum),
// then the stores, each pass reading the row again (codegen/reduce.rs).

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = flat_index(wid, nwg, 1u);
    // The same for the whole workgroup: wg_max and wg_sum need uniform control flow.
    if (g >= TOTAL) {
        return;
    }
    let o = unflat(g, vec4<u32>(ROWS_N, ROWS_C, ROWS_H, ROWS_W));
    // Every invocation starts from the row's first element, which is in every row.
    var m = ld_x(o.x, o.y, o.z, o.w);
    for (var j = lid; j < LEN; j += WG) {
        let p = o + j * STEP;
        m = max(m, ld_x(p.x, p.y, p.z, p.w));
    }
    let top = wg_max(lid, m);
    var s = 0.0;
    for (var j = lid; j < LEN; j += WG) {
        let p = o + j * STEP;
        s += exp(ld_x(p.x, p.y, p.z, p.w) - top);
    }
    let total = wg_sum(lid, s);
    for (var j = lid; j < LEN; j += WG) {
        let p = o + j * STEP;
        st_y(p.x, p.y, p.z, p.w, exp(ld_x(p.x, p.y, p.z, p.w) - top) / total);
    }
}
