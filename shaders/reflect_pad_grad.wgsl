// The gradient of reflection padding, as a gather (no atomics): every pixel of gx sums the
// padded positions of gy that reflect onto it (itself and up to one mirror on each side).
// gx[n, c, h, w] = sum over (i, j) with reflect(i) == h, reflect(j) == w of gy[n, c, i, j]

// Positions of the padded axis that reflect onto x, in increasing order; -1 where none:
// the mirror in the leading pad, x itself, the mirror in the trailing pad.
fn sources(x: u32, size: u32, before: u32, after: u32) -> vec3<i32> {
    var s = vec3<i32>(-1, i32(x + before), -1);
    if (x >= 1u && x <= before) {
        s.x = i32(before - x);
    }
    if (x + 1u < size && x + 1u + after >= size) {
        s.z = i32(before + 2u * (size - 1u) - x);
    }
    return s;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let p = unflat(i, vec4<u32>(GX_N, GX_C, GX_H, GX_W));
    let rows = sources(p.z, GX_H, PAD_TOP, PAD_BOTTOM);
    let cols = sources(p.w, GX_W, PAD_LEFT, PAD_RIGHT);
    var acc = 0.0;
    for (var a = 0u; a < 3u; a++) {
        if (rows[a] < 0) {
            continue;
        }
        for (var b = 0u; b < 3u; b++) {
            if (cols[b] >= 0) {
                acc += ld_gy(p.x, p.y, u32(rows[a]), u32(cols[b]));
            }
        }
    }
    st_gx(p.x, p.y, p.z, p.w, acc);
}
