// Sum of v over the workgroup, which is one subgroup (compiler::Target::subgroup_reductions):
// no workgroup memory and no barrier. Every invocation gets the result.

fn wg_sum(lid: u32, v: f32) -> f32 {
    return subgroupAdd(v);
}
