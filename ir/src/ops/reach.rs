//! How far an op's output pixels reach into its inputs: what running a graph in spatial tiles
//! (`compiler::stream`) needs to know of each op. Each op states its own beside its shape rule;
//! [`crate::Op::reach`] dispatches.

/// Where one output pixel of an op reads its inputs, in the inputs' own pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The same pixel of each input (inputs without spatial extent, broadcast, are read whole):
    /// elementwise ops, channel mixing, a layer norm over channels.
    Pixel,
    /// Pixels as `Pixel`, and the output is its inputs' channels one after another: a tiled run
    /// may keep the parts rather than a copy (a dense block's growing concatenation).
    Stack,
    /// Input pixels at most this many pixels away from the output's own position (scaled to
    /// the input's size): convolutions, pools, pads, resampling.
    Window(usize),
    /// Whole planes of its inputs, each channel on its own, giving a value without spatial
    /// extent (a norm's statistics, a global mean): computed once the planes are complete.
    Planes,
    /// Positions mixed in ways tiles cannot follow (a reshape, a product over pixels).
    Whole,
}

/// An op's [`Reach`] for inputs of these shapes. The default is the safe answer: an op that
/// says nothing is never split into tiles.
pub trait Spatial {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Whole
    }
}

/// The largest kernel side of a weight `[a, b, kh, kw]` (0 for another rank), the window of a
/// convolution in its input's pixels.
pub fn kernel_side(inputs: &[&[usize]]) -> usize {
    match inputs.get(1) {
        Some([_, _, kh, kw]) => *kh.max(kw),
        _ => 0,
    }
}

/// The reach of a reduction or softmax over `axes` of a rank-4 value: channels alone stay in
/// the pixel, the two spatial axes together are whole planes, anything else is whole.
pub fn over_axes(axes: &[usize]) -> Reach {
    let spatial = axes.iter().filter(|&&a| a >= 2).count();
    match (axes.contains(&0), spatial) {
        (false, 0) => Reach::Pixel,
        (false, 2) if axes.len() <= 3 => Reach::Planes,
        _ => Reach::Whole,
    }
}

/// How far a window of `kernel` taps with `pad` on the leading side reaches from the output's
/// own position, in input pixels: a tap before it (the padding) or after it (the rest).
pub fn window_reach(kernel: usize, pad: usize) -> usize {
    pad.max(kernel.saturating_sub(1 + pad))
}
