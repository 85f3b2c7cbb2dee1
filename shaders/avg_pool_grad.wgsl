// The adjoint of average pooling, as a gather (no atomics), the value of the elementwise
// template over gx: each pixel sums gy over the windows that hold it, divided by K^2
// (`windows`: pool_windows.wgsl).

fn value(n: u32, c: u32, h: u32, w: u32) -> f32 {
    let rows = windows(h, GY_H);
    let cols = windows(w, GY_W);
    var acc = 0.0;
    for (var oh = rows.x; oh < rows.y; oh++) {
        for (var ow = cols.x; ow < cols.y; ow++) {
            acc += ld_gy(n, c, oh, ow);
        }
    }
    return acc / f32(K * K);
}
