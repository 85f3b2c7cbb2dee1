// Winograd products of a 3x3 conv, the products (ir/src/ops/winograd/):
// m[a, o, n, t] = sum_c u[a, o, c] * v[a, c, n, t], GROUPS = A^2 GEMMs of shaders/gemm.wgsl, group a:
// row m = o, k = c (numbered a * GK + c), column = (n, t) (numbered a * GN + n * V_W + t).

fn group_k(grp: u32) -> u32 {
    return GK;
}

fn a_at(m: u32, k: u32, grp: u32) -> f32 {
    return ld_u(grp, m, k - grp * GK, 0u);
}

// (_, n, t) of a column (its group comes to b_at as grp).
fn b_col(col: u32) -> vec4<i32> {
    let c = col % GN;
    return vec4<i32>(0, i32(c / V_W), i32(c % V_W), 0);
}

fn b_at(c: vec4<i32>, k: u32, grp: u32) -> f32 {
    return ld_v(grp, k - grp * GK, u32(c.y), u32(c.z));
}

fn c_st(m: u32, col: u32, v: f32) {
    let c = col % GN;
    st_m(col / GN, m, c / V_W, c % V_W, v);
}
