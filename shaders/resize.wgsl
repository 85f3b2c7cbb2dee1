// Upsampling by a whole factor S, the value of the elementwise template (taps: resize_taps.wgsl):
// nearest y[n, c, h, w] = x[n, c, h / S, w / S]; bilinear weighs the four neighbours.

fn value(n: u32, c: u32, h: u32, w: u32) -> f32 {
    if (BILINEAR == 0u) {
        return ld_x(n, c, h / S, w / S);
    }
    let r = taps(h, X_H);
    let q = taps(w, X_W);
    let top = (1.0 - q.l1) * ld_x(n, c, r.i0, q.i0) + q.l1 * ld_x(n, c, r.i0, q.i1);
    let bottom = (1.0 - q.l1) * ld_x(n, c, r.i1, q.i0) + q.l1 * ld_x(n, c, r.i1, q.i1);
    return (1.0 - r.l1) * top + r.l1 * bottom;
}
