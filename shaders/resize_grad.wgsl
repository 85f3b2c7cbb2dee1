// The adjoint of the resize by S, as a gather (no atomics), the value of the elementwise
// template over gx: gx[n, c, h, w] sums gy over the outputs that read (h, w), each by the weight
// it was read with (taps: resize_taps.wgsl).

// The weight by which output index i reads input index k along an axis of `size` inputs.
fn tap_weight(i: u32, k: u32, size: u32) -> f32 {
    if (BILINEAR == 0u) {
        return select(0.0, 1.0, i / S == k);
    }
    let t = taps(i, size);
    return select(0.0, 1.0 - t.l1, t.i0 == k) + select(0.0, t.l1, t.i1 == k);
}

// The output indices [lo, hi) within 0..out that may read input index k: bilinear source
// coordinates within one of k lie in [(k - 1) S, (k + 2) S).
fn reach(k: u32, out: u32) -> vec2<u32> {
    if (BILINEAR == 0u) {
        return vec2<u32>(k * S, (k + 1u) * S);
    }
    return vec2<u32>(select(0u, (k - 1u) * S, k > 0u), min(out, (k + 2u) * S));
}

fn value(n: u32, c: u32, h: u32, w: u32) -> f32 {
    let rows = reach(h, GY_H);
    let cols = reach(w, GY_W);
    var acc = 0.0;
    for (var i = rows.x; i < rows.y; i++) {
        let wh = tap_weight(i, h, GX_H);
        if (wh == 0.0) {
            continue;
        }
        var row = 0.0;
        for (var j = cols.x; j < cols.y; j++) {
            let ww = tap_weight(j, w, GX_W);
            if (ww != 0.0) {
                row += ww * ld_gy(n, c, i, j);
            }
        }
        acc += wh * row;
    }
    return acc;
}
