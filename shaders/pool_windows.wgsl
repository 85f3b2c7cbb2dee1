// The windows of a K x K pooling with STRIDE and PAD that hold input index i: window starts o
// with o*STRIDE - PAD <= i <= o*STRIDE - PAD + K - 1, within 0..size, as [lo, hi).
fn windows(i: u32, size: u32) -> vec2<u32> {
    let ip = i + PAD;
    var lo = 0u;
    if (ip + 1u > K) {
        lo = (ip + 1u - K + STRIDE - 1u) / STRIDE;
    }
    return vec2<u32>(lo, min(size, ip / STRIDE + 1u));
}
