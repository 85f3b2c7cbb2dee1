// Average pooling over K x K windows with stride, the value of the elementwise template;
// padding counts as zeros and every window divides by K^2 (PyTorch's count_include_pad=True).
// y[n, c, oh, ow] = sum over kh, kw of x[n, c, oh*STRIDE + kh - PAD, ow*STRIDE + kw - PAD] / K^2

fn value(n: u32, c: u32, h: u32, w: u32) -> f32 {
    let h0 = i32(h * STRIDE) - i32(PAD);
    let w0 = i32(w * STRIDE) - i32(PAD);
    var acc = 0.0;
    for (var kh = 0u; kh < K; kh++) {
        let r = h0 + i32(kh);
        if (r < 0 || r >= i32(X_H)) {
            continue;
        }
        for (var kw = 0u; kw < K; kw++) {
            let q = w0 + i32(kw);
            if (q >= 0 && q < i32(X_W)) {
                acc += ld_x(n, c, u32(r), u32(q));
            }
        }
    }
    return acc / f32(K * K);
}
