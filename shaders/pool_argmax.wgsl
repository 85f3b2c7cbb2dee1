// Coordinates of the first maximum of window (oh, ow): strictly greater replaces, so the first
// of equal values wins; NaN replaces, as in the reference. Every window holds a real element
// (PAD <= K / 2).
fn argmax(n: u32, c: u32, oh: u32, ow: u32) -> vec2<u32> {
    let h0 = i32(oh * STRIDE) - i32(PAD);
    let w0 = i32(ow * STRIDE) - i32(PAD);
    var best = vec2<u32>(0u);
    var m = 0.0;
    var found = false;
    for (var kh = 0u; kh < K; kh++) {
        let h = h0 + i32(kh);
        if (h < 0 || h >= i32(X_H)) {
            continue;
        }
        for (var kw = 0u; kw < K; kw++) {
            let w = w0 + i32(kw);
            if (w < 0 || w >= i32(X_W)) {
                continue;
            }
            let v = ld_x(n, c, u32(h), u32(w));
            if (!found || v > m || v != v) {
                found = true;
                m = v;
                best = vec2<u32>(u32(h), u32(w));
            }
        }
    }
    return best;
}
