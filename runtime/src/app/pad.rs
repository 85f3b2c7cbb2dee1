//! Whole images through a size-agnostic generator (`irdc deblur`, `irdc eval`, validation in
//! training): the multiple its height and width must have, and the reflection padding to it and
//! the crop back.

use ir::Tensor;

/// The smallest power of two m such that the generator maps an m·k-sized image to one of the
/// same size (its down- and up-sampling need it; IRD-GAN: 4). Found by building the graph, which
/// runs only the shape rules, so it follows the model file rather than a constant here. `None`:
/// the graph changes the size of every image tried (it is no image-to-image generator).
pub fn size_multiple(model: &ir::front::Model, graph: &str, input: &str) -> Option<usize> {
    let keeps_size = |s: usize| {
        let shape = vec![1, 3, s, s];
        model
            .build_with(
                graph,
                &[(input.to_string(), shape.clone())],
                &compiler::differentiate::Autodiff,
            )
            .is_ok_and(|g| g.outputs.len() == 1 && g.nodes[g.outputs[0].1].shape == shape)
    };
    // Odd multiples (3m, 5m) so that m is not satisfied by accident by a larger power of two.
    (0..8)
        .map(|k| 1usize << k)
        .find(|&m| keeps_size(3 * m) && keeps_size(5 * m))
}

/// Pad `[1, 3, h, w]` at the bottom and right to `[1, 3, ph, pw]` by reflection without repeating
/// the edge (`c b | a b c | b a`, PyTorch's ReflectionPad2d, as the generator's own padding).
pub fn reflect_pad(t: &Tensor<f32>, ph: usize, pw: usize) -> Tensor<f32> {
    let (h, w) = (t.shape[2], t.shape[3]);
    let mut out = Tensor::zeros(&[1, 3, ph, pw]);
    for c in 0..3 {
        for y in 0..ph {
            for x in 0..pw {
                out.data[(c * ph + y) * pw + x] =
                    t.data[(c * h + reflect(y, h)) * w + reflect(x, w)];
            }
        }
    }
    out
}

/// Index `i >= 0` reflected into `0..n` (any distance; a single row or column is repeated).
fn reflect(i: usize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let m = i % (2 * (n - 1));
    if m < n {
        m
    } else {
        2 * (n - 1) - m
    }
}

/// The top-left `[1, 3, h, w]` of an image tensor.
pub fn crop(t: &Tensor<f32>, h: usize, w: usize) -> Tensor<f32> {
    let (th, tw) = (t.shape[2], t.shape[3]);
    let mut out = Tensor::zeros(&[1, 3, h, w]);
    for c in 0..3 {
        for y in 0..h {
            let src = (c * th + y) * tw;
            out.data[(c * h + y) * w..(c * h + y + 1) * w].copy_from_slice(&t.data[src..src + w]);
        }
    }
    out
}
