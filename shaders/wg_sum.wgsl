// Sum of v over the workgroup, a tree in workgroup memory; every invocation gets the result.
// Call from uniform control flow.

var<workgroup> part: array<f32, WG>;

fn wg_sum(lid: u32, v: f32) -> f32 {
    part[lid] = v;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k = k / 2u) {
        if (lid < k) {
            part[lid] += part[lid + k];
        }
        workgroupBarrier();
    }
    let total = part[0];
    // Everyone has read the total before a next call overwrites it.
    workgroupBarrier();
    return total;
}
