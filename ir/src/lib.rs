//! irdc's intermediate representation.
//!
//! A model file (`front`) expands into a flat [`Graph`] of [`Node`]s whose [`Op`]s come from the
//! op set in `ops/`. Every op is defined once there: its attributes, its shape rule and its CPU
//! reference (the test oracle, generic over f32 and f64). Nothing in this crate knows IRD-GAN.

pub mod cpu;
pub mod front;
pub mod graph;
pub mod init;
pub mod op;
pub mod ops;
pub mod tensor;

pub use graph::{Graph, Node, NodeId, ValueKind};
pub use op::Op;
pub use tensor::Tensor;

/// Shapes are NCHW-style lists of dimension sizes; rank 1 to 4. Layouts treat a shorter shape as
/// left-padded with 1s (a conv bias `[C]` is stored like `[1, 1, 1, C]`).
pub type Shape = Vec<usize>;

/// Pad a shape on the left with 1s to rank 4, the form kernels and layouts index with.
pub fn shape4(shape: &[usize]) -> [usize; 4] {
    let mut s = [1usize; 4];
    let k = shape.len().min(4);
    s[4 - k..].copy_from_slice(&shape[shape.len() - k..]);
    s
}

/// Number of elements of a shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}
