//! The op set. Each file defines its ops' attributes, shape rules and CPU references, and later
//! their vector-Jacobian products, in one place.

mod check;
mod concat;
mod conv;
mod dropout;
mod elementwise;
mod norm;
mod pad;
mod pool;
mod reduce;
mod source;

pub use concat::Concat;
pub use conv::{Conv2d, ConvTranspose2d};
pub use dropout::Dropout;
pub use elementwise::{broadcast_shapes, wgsl_f32, Binary, ChannelAffine, Unary};
pub use norm::InstanceNorm;
pub use pad::ReflectPad;
pub use pool::MaxPool2d;
pub use reduce::{Reduce, ReduceKind};
pub use source::{Const, Init};
