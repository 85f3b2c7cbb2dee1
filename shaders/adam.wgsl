// Adam, bias-corrected exactly as PyTorch's torch.optim.Adam (single-tensor path), over one
// network's parameters laid end to end: p, m, v and g are flat arrays of the same length.
// The scalars are computed on the host in f64 for step t and rounded to f32, as PyTorch does:
//   s[0] = 1 - beta1          (lerp weight)      s[1] = beta2
//   s[2] = 1 - beta2          s[3] = lr / (1 - beta1^t)
//   s[4] = sqrt(1 - beta2^t)  s[5] = eps         s[6] = element count (as f32 bits of a u32)
//   m = lerp(m, g, 1 - beta1); v = v * beta2 + g * g * (1 - beta2)
//   p = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)

@group(0) @binding(0) var<storage, read_write> p: array<f32>;
@group(0) @binding(1) var<storage, read_write> m: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read> s: array<f32>;

// PyTorch's lerp: the form depends on the weight, for accuracy at either end.
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if (w < 0.5) {
        return a + w * (b - a);
    }
    return b - (b - a) * (1.0 - w);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= bitcast<u32>(s[6])) {
        return;
    }
    let gi = g[i];
    let mi = lerp(m[i], gi, s[0]);
    let vi = v[i] * s[1] + gi * gi * s[2];
    m[i] = mi;
    v[i] = vi;
    let denom = sqrt(vi) / s[4] + s[5];
    p[i] = p[i] - s[3] * (mi / denom);
}
