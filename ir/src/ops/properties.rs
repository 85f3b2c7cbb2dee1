//! What the compiler's passes ask of an op, and what it costs. Each op states its own, as a
//! `PROPERTIES` constant and a [`Flops`] impl beside its shape rule and CPU reference;
//! [`crate::Op`] dispatches, and passes ask it rather than keeping lists of ops.

/// An op's properties; `Properties::NONE` for an op that has none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Properties {
    /// Each output element from the same element of its inputs (broadcasting): fusion may
    /// compute it inside the kernels that read it.
    pub elementwise: bool,
    /// Plain arithmetic on elements (a unary, a binary, a per-channel affine): a producer's
    /// store can compute it on the way out.
    pub store_epilogue: bool,
    /// Its kernel reads each input element many times (a convolution's window, pooling):
    /// fusion limits what it computes in those loads.
    pub rereads: bool,
    /// A GEMM whose store can carry the elementwise chain that reads its output.
    pub stores_through: bool,
    /// Cheap enough to compute twice: the backward pass may recompute it rather than keep it.
    pub cheap: bool,
    /// Output channel c depends on input channel c of its one input alone.
    pub channelwise: bool,
    /// Each output element is one element of its one input, at coordinates computed from its
    /// own (a pixel shuffle): fusion may compute it in its readers' loads, as an elementwise op.
    pub reindexes: bool,
    /// Made only by the compiler (autodiff, lowering, Winograd); a model file cannot name it.
    pub internal: bool,
    /// One workgroup reduces each (n, c) plane, and every invocation ends holding the plane's
    /// results (an instance norm's statistics): its kernel may also compute an elementwise
    /// reader of them (`compiler::plane_apply`).
    pub reduces_planes: bool,
    /// Its value is other values' bytes, with no kernel of its own where the memory plan places
    /// it (a concat's inputs are written into its channels; a channel slice is a view of its
    /// input's): nothing can be computed in its loads.
    pub channel_view: bool,
}

impl Properties {
    pub const NONE: Properties = Properties {
        elementwise: false,
        store_epilogue: false,
        rereads: false,
        stores_through: false,
        cheap: false,
        channelwise: false,
        reindexes: false,
        internal: false,
        reduces_planes: false,
        channel_view: false,
    };
    /// A unary or binary elementwise op of plain arithmetic.
    pub const ARITHMETIC: Properties = Properties {
        elementwise: true,
        store_epilogue: true,
        ..Properties::NONE
    };
    /// A convolution-like GEMM (a conv, its weight gradient).
    pub const GEMM: Properties = Properties {
        rereads: true,
        stores_through: true,
        ..Properties::NONE
    };
    /// A part of an op the compiler splits, or a backward-only op.
    pub const INTERNAL: Properties = Properties {
        internal: true,
        ..Properties::NONE
    };
}

/// Floating-point operations of one node of an op, from its input and output shapes: a
/// multiply-add is 2, an elementwise op 1 per output element, a reduction 1 per input element,
/// pure data movement (pads, concatenation, slices, reshapes) 0, the default.
pub trait Flops {
    fn flops(&self, _inputs: &[&[usize]], _out: &[usize]) -> u64 {
        0
    }
}

/// Elements of a shape, as u64.
pub fn elements(shape: &[usize]) -> u64 {
    crate::numel(shape) as u64
}

/// Input channels times kernel area of a weight `[a, b, kh, kw]`, the channels at
/// `channel_axis`; 0 for another rank.
pub fn window(w: &[usize], channel_axis: usize) -> u64 {
    match w {
        [_, _, kh, kw] => (w[channel_axis] * kh * kw) as u64,
        _ => 0,
    }
}
