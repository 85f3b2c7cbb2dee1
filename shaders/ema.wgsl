// An exponential moving average of a network's weights, laid end to end as in adam.wgsl:
//   e = lerp(e, p, 1 - decay)      (PyTorch's `ema.lerp_(p, 1 - decay)`, as timm's ModelEma)
// one dispatch over the flat parameter buffer after each generator update. Scalars:
//   s[0] = 1 - decay (f32, from the host's f64)   s[1] = element count (f32 bits of a u32)

@group(0) @binding(0) var<storage, read> p: array<f32>;
@group(0) @binding(1) var<storage, read_write> e: array<f32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;

// PyTorch's lerp, as in adam.wgsl.
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if (w < 0.5) {
        return a + w * (b - a);
    }
    return b - (b - a) * (1.0 - w);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= bitcast<u32>(s[1])) {
        return;
    }
    e[i] = lerp(e[i], p[i], s[0]);
}
