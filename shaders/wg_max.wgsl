// Maximum of v over the workgroup, a tree in the workgroup memory `part` of shaders/wg_sum.wgsl
// (always generated with it); every invocation gets the result. Call from uniform control flow.

fn wg_max(lid: u32, v: f32) -> f32 {
    part[lid] = v;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k = k / 2u) {
        if (lid < k) {
            part[lid] = max(part[lid], part[lid + k]);
        }
        workgroupBarrier();
    }
    let top = part[0];
    // Everyone has read the maximum before a next call overwrites it.
    workgroupBarrier();
    return top;
}
