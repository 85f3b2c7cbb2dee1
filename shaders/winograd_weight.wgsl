// Winograd products of a 3x3 conv, the weights' transform (ir/src/ops/winograd/):
// u[a, o, c] = (G w[o, c] GT)[a], one invocation per (o, c) (of a transposed conv's weight, w[c, o]
// flipped). TRANSFORM loads the 3 x 3 taps `g_r_s`, computes the A^2 transformed values
// (codegen/winograd.rs writes it out from the matrices) and stores them.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let o = i / C_IN;
    let c = i % C_IN;
TRANSFORM
}
