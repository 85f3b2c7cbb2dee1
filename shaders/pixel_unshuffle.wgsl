// Space to depth (PyTorch's PixelUnshuffle by R), the inverse of pixel_shuffle, as the value of
// the elementwise template: y[n, c, h, w] = x[n, c / (R*R), h*R + (c / R) % R, w*R + c % R].

fn value(n: u32, c: u32, h: u32, w: u32) -> f32 {
    return ld_x(n, c / (R * R), h * R + (c / R) % R, w * R + c % R);
}
