// Depth to space (PyTorch's PixelShuffle by R), the value of the elementwise template:
// y[n, c, h, w] = x[n, c*R*R + (h % R)*R + w % R, h / R, w / R].

fn value(n: u32, c: u32, h: u32, w: u32) -> f32 {
    return ld_x(n, c * R * R + (h % R) * R + w % R, h / R, w / R);
}
