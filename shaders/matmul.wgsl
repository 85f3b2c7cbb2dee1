// Batched matrix product y[b1, b2] = A(b1, b2) B(b1, b2), A and B the operands' last two axes,
// each swapped where the op transposes it (codegen writes the operands' coordinates in),
// as GROUPS = Y_N * Y_C GEMMs of shaders/gemm.wgsl: group grp = (b1, b2), row m, k numbered
// grp * GK + k, column grp * GN + n. A broadcast batch axis has size 1 in its operand, whose
// accessor ignores that coordinate.

fn group_k(grp: u32) -> u32 {
    return GK;
}

fn a_at(m: u32, k: u32, grp: u32) -> f32 {
    let kk = k - grp * GK;
    return ld_a(grp / Y_C, grp % Y_C, A_AT);
}

// (n, _, _) of a column (its group comes to b_at as grp).
fn b_col(col: u32) -> vec4<i32> {
    return vec4<i32>(i32(col % GN), 0, 0, 0);
}

fn b_at(c: vec4<i32>, k: u32, grp: u32) -> f32 {
    let kk = k - grp * GK;
    let n = u32(c.x);
    return ld_b(grp / Y_C, grp % Y_C, B_AT);
}

fn c_st(m: u32, col: u32, v: f32) {
    let grp = col / GN;
    st_y(grp / Y_C, grp % Y_C, m, col % GN, v);
}
