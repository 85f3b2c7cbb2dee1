//! The op set: one line per op in the list below (its variant, its type, the name plans and
//! errors show). Each op's meaning lives with its definition under `ops/`: fields, shape rule,
//! CPU reference, VJP in IR ops, `PROPERTIES` and FLOPs; this file only dispatches, and the list is
//! the one place a new op is added to it.

use crate::ops::*;
use crate::{Graph, NodeId, Shape, Tensor};
use num_traits::Float;

/// The `Op` enum and its dispatching methods from one list: `Variant(binding: Type) = name;`.
macro_rules! op_set {
    ($( $(#[$doc:meta])* $variant:ident($o:ident: $ty:ty) = $name:expr; )*) => {
        #[derive(Debug, Clone, PartialEq)]
        pub enum Op {
            /// A value fed at run time, named as the graph names it.
            Input { name: String },
            /// A trainable parameter with its initialiser.
            Param { init: Init },
            $( $(#[$doc])* $variant($ty), )*
        }

        impl Op {
            /// Short name shown in plans and errors (`conv2d`, `relu`, ...).
            pub fn kind_name(&self) -> String {
                match self {
                    Op::Input { .. } => "input".into(),
                    Op::Param { .. } => "param".into(),
                    $( Op::$variant($o) => String::from($name), )*
                }
            }

            /// The output shape from the input shapes, or a message saying what was expected
            /// and found.
            pub fn infer_shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
                match self {
                    Op::Input { .. } | Op::Param { .. } => Err(
                        "sources get their shape from the front end, not from a shape rule".into(),
                    ),
                    $( Op::$variant(o) => o.shape(inputs), )*
                }
            }

            /// The CPU reference: plain loops, the meaning of the op. Sources are fed, not
            /// evaluated.
            pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
                match self {
                    Op::Input { .. } | Op::Param { .. } => panic!("sources are fed, not evaluated"),
                    $( Op::$variant(o) => o.cpu(inputs, out_shape), )*
                }
            }

            /// The vector-Jacobian product: given `grad`, the gradient of a scalar with respect
            /// to `node`'s value (this op's output), push IR ops onto `g` that compute the
            /// gradient with respect to each input. One entry per input, None where no
            /// gradient flows (sources have no inputs). Errors say why an op cannot be
            /// differentiated.
            pub fn vjp(
                &self,
                g: &mut Graph,
                node: NodeId,
                grad: NodeId,
            ) -> Result<Vec<Option<NodeId>>, String> {
                match self {
                    Op::Input { .. } | Op::Param { .. } => Ok(vec![]),
                    $( Op::$variant(o) => o.vjp(g, node, grad), )*
                }
            }

            /// Floating-point operations of a node of this op (see [`Flops`]).
            pub fn flops(&self, inputs: &[&[usize]], out: &[usize]) -> u64 {
                match self {
                    Op::Input { .. } | Op::Param { .. } => 0,
                    $( Op::$variant(o) => o.flops(inputs, out), )*
                }
            }

            /// Where its output pixels read its inputs (`Reach`), for tiled runs.
            pub fn reach(&self, inputs: &[&[usize]]) -> Reach {
                match self {
                    Op::Input { .. } | Op::Param { .. } => Reach::Pixel,
                    $( Op::$variant(o) => o.reach(inputs), )*
                }
            }

            /// What passes ask of this op (see [`Properties`]): each op states its own.
            pub fn properties(&self) -> Properties {
                match self {
                    Op::Input { .. } | Op::Param { .. } => Properties::NONE,
                    $( Op::$variant(_) => <$ty>::PROPERTIES, )*
                }
            }

            /// Every variant's name and properties, in the list's order: for checks over all
            /// ops (no op a model file names is internal).
            pub const VARIANTS: &'static [(&'static str, Properties)] =
                &[$( (stringify!($variant), <$ty>::PROPERTIES), )*];
        }
    };
}

op_set! {
    /// A constant tensor written in the model file.
    Const(_o: Const) = "const";
    /// inputs: x [N,C,H,W], weight [O,C,kh,kw] (OIHW), optional bias [O]
    Conv2d(_o: Conv2d) = "conv2d";
    /// inputs: x [N,C,H,W], weight [C,O,kh,kw] (IOHW as PyTorch), optional bias [O]
    ConvTranspose2d(_o: ConvTranspose2d) = "conv_transpose2d";
    ReflectPad(_o: ReflectPad) = "reflect_pad";
    InstanceNorm(_o: InstanceNorm) = "instance_norm";
    /// Compile-time parts of InstanceNorm (`ops/norm_parts.rs`): per-plane (mean, rstd), and the
    /// normalisation with them.
    InstanceNormStats(_o: InstanceNormStats) = "instance_norm_stats";
    InstanceNormApply(_o: InstanceNormApply) = "instance_norm_apply";
    PlaneStat(_o: PlaneStat) = "plane_stat";
    PlaneMeans(_o: PlaneMeans) = "plane_means";
    Unary(u: Unary) = u.name();
    Binary(b: Binary) = b.name();
    /// Per-channel x * scale[c] + shift[c] (ImageNet normalisation, [-1,1] -> [0,1]).
    ChannelAffine(_o: ChannelAffine) = "channel_affine";
    /// Concatenation along the channel axis (1).
    Concat(_o: Concat) = "concat";
    MaxPool2d(_o: MaxPool2d) = "max_pool2d";
    Dropout(_o: Dropout) = "dropout";
    Reduce(r: Reduce) = r.name();
    // Ops that backward passes need (each still an ordinary op with a shape rule and a CPU
    // reference, so a backward graph compiles and differentiates like any other).
    /// inputs: x [N,C,H,W], gy [N,O,Ho,Wo] -> conv2d's weight gradient [O,C,kh,kw]
    Conv2dWeightGrad(_o: Conv2dWeightGrad) = "conv2d_weight_grad";
    /// inputs: x [N,C,H,W], gy [N,O,Ho,Wo] -> conv_transpose2d's weight gradient [C,O,kh,kw]
    ConvTranspose2dWeightGrad(_o: ConvTranspose2dWeightGrad) = "conv_transpose2d_weight_grad";
    /// The adjoint of ReflectPad.
    ReflectPadGrad(_o: ReflectPadGrad) = "reflect_pad_grad";
    /// inputs: x, gy -> max_pool2d's input gradient.
    MaxPool2dGrad(_o: MaxPool2dGrad) = "max_pool2d_grad";
    /// Broadcast to a shape.
    Expand(_o: Expand) = "expand";
    /// Channels c0..c1.
    ChannelSlice(_o: ChannelSlice) = "channel_slice";
    Reshape(_o: Reshape) = "reshape";
    // A stride-1 3x3 conv2d as Winograd's F(m x m, 3 x 3) (`ops/winograd/`), which the
    // compiler rewrites convs into after autodiff.
    WinogradWeight(_o: WinogradWeight) = "winograd_weight";
    WinogradInput(_o: WinogradInput) = "winograd_input";
    WinogradGemm(_o: WinogradGemm) = "winograd_gemm";
    WinogradOutput(_o: WinogradOutput) = "winograd_output";
    /// Depth to space and back (`ops/shuffle.rs`).
    PixelShuffle(_o: PixelShuffle) = "pixel_shuffle";
    PixelUnshuffle(_o: PixelUnshuffle) = "pixel_unshuffle";
    /// Upsampling by a whole factor, and its adjoint (`ops/resize.rs`).
    Resize(_o: Resize) = "resize";
    ResizeGrad(_o: ResizeGrad) = "resize_grad";
    /// Average pooling, and its adjoint (`ops/avg_pool.rs`).
    AvgPool(_o: AvgPool) = "avg_pool";
    AvgPoolGrad(_o: AvgPoolGrad) = "avg_pool_grad";
    /// inputs: a [B1,B2,M,K], b [B1,B2,K,N] -> [B1,B2,M,N] (either transposed, batch broadcast)
    MatMul(_o: MatMul) = "matmul";
    Softmax(_o: Softmax) = "softmax";
    /// Normalisation over channels at each pixel, with a per-channel affine (`ops/layer_norm.rs`).
    LayerNorm(_o: LayerNorm) = "layer_norm";
}
