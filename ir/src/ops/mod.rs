//! The op set. Each file defines its ops' attributes, shape rules, CPU references and
//! vector-Jacobian products (written in IR ops, so they can be differentiated again), in one place.

mod avg_pool;
mod check;
mod concat;
mod conv;
mod conv_grad;
mod dropout;
mod elementwise;
mod layer_norm;
mod layout;
mod matmul;
mod norm;
mod norm_parts;
mod pad;
mod pool;
mod properties;
mod reach;
mod reduce;
mod resize;
mod shuffle;
mod softmax;
mod source;
pub mod vjp;
mod winograd;
mod winograd_transforms;

pub use avg_pool::{AvgPool, AvgPoolGrad};
pub use concat::{ChannelSlice, Concat};
pub use conv::{Conv2d, ConvTranspose2d};
pub use conv_grad::{Conv2dWeightGrad, ConvTranspose2dWeightGrad};
pub use dropout::{
    dropout_hash, dropout_salt, per_sample as dropout_per_sample, Dropout, DROPOUT_SEED,
    DROPOUT_WGSL,
};
pub use elementwise::{broadcast_shapes, wgsl_f32, Binary, ChannelAffine, Unary, ERF_WGSL};
pub use layer_norm::LayerNorm;
pub use layout::{sum_to, Expand, Reshape};
pub use matmul::MatMul;
pub use norm::InstanceNorm;
pub use norm_parts::{InstanceNormApply, InstanceNormStats, PlaneMeans, PlaneStat};
pub use pad::{ReflectPad, ReflectPadGrad};
pub use pool::{MaxPool2d, MaxPool2dGrad};
pub use properties::{Flops, Properties};
pub use reach::{Reach, Spatial};
pub use reduce::{Reduce, ReduceKind};
pub use resize::{Resize, ResizeGrad, ResizeMode};
pub use shuffle::{PixelShuffle, PixelUnshuffle};
pub use softmax::Softmax;
pub use source::{Const, Init};
pub use winograd::{
    winograd_tiles, WinogradGemm, WinogradInput, WinogradKind, WinogradOutput, WinogradTransforms,
    WinogradWeight,
};
