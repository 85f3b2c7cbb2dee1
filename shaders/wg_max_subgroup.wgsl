// Maximum of v over the workgroup, which is one subgroup (as in shaders/wg_sum_subgroup.wgsl).

fn wg_max(lid: u32, v: f32) -> f32 {
    return subgroupMax(v);
}
