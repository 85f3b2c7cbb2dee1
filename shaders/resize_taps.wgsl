// What an upsampling by a whole factor S reads along one axis (PyTorch's interpolate with
// align_corners=False), shared by the resize and its adjoint: nearest (BILINEAR = 0) reads
// index i / S; bilinear the two neighbours of the half-pixel source coordinate.

struct Taps {
    i0: u32,
    i1: u32,
    // The weight of i1; i0 has 1 - l1.
    l1: f32,
}

// The source coordinate (i + 0.5) / S - 0.5, clamped at 0 as PyTorch does, between its
// neighbours along an axis of `size` input elements (the last one repeated at the far edge).
fn taps(i: u32, size: u32) -> Taps {
    let src = max((f32(i) + 0.5) / f32(S) - 0.5, 0.0);
    let i0 = u32(src);
    return Taps(i0, min(i0 + 1u, size - 1u), src - f32(i0));
}
