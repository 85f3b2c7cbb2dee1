//! The op enum: one variant per op, each defined in its own file under `ops/`. This file only
//! dispatches; what an op means lives with its definition.

use crate::ops::*;
use crate::{Graph, NodeId, Shape, Tensor};
use num_traits::Float;

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A value fed at run time, named as the graph names it.
    Input {
        name: String,
    },
    /// A trainable parameter with its initialiser.
    Param {
        init: Init,
    },
    /// A constant tensor written in the model file.
    Const(Const),
    /// inputs: x [N,C,H,W], weight [O,C,kh,kw] (OIHW), optional bias [O]
    Conv2d(Conv2d),
    /// inputs: x [N,C,H,W], weight [C,O,kh,kw] (IOHW as PyTorch), optional bias [O]
    ConvTranspose2d(ConvTranspose2d),
    ReflectPad(ReflectPad),
    InstanceNorm(InstanceNorm),
    /// Compile-time parts of InstanceNorm (`ops/norm_parts.rs`): per-plane (mean, rstd), and the
    /// normalisation with them.
    InstanceNormStats(InstanceNormStats),
    InstanceNormApply(InstanceNormApply),
    PlaneStat(PlaneStat),
    PlaneMeans(PlaneMeans),
    Unary(Unary),
    Binary(Binary),
    /// Per-channel x * scale[c] + shift[c] (ImageNet normalisation, [-1,1] -> [0,1]).
    ChannelAffine(ChannelAffine),
    /// Concatenation along the channel axis (1).
    Concat(Concat),
    MaxPool2d(MaxPool2d),
    Dropout(Dropout),
    Reduce(Reduce),
    // Ops that backward passes need (each still an ordinary op with a shape rule and a CPU
    // reference, so a backward graph compiles and differentiates like any other).
    /// inputs: x [N,C,H,W], gy [N,O,Ho,Wo] -> conv2d's weight gradient [O,C,kh,kw]
    Conv2dWeightGrad(Conv2dWeightGrad),
    /// inputs: x [N,C,H,W], gy [N,O,Ho,Wo] -> conv_transpose2d's weight gradient [C,O,kh,kw]
    ConvTranspose2dWeightGrad(ConvTranspose2dWeightGrad),
    /// The adjoint of ReflectPad.
    ReflectPadGrad(ReflectPadGrad),
    /// inputs: x, gy -> max_pool2d's input gradient.
    MaxPool2dGrad(MaxPool2dGrad),
    /// Broadcast to a shape.
    Expand(Expand),
    /// Channels c0..c1.
    ChannelSlice(ChannelSlice),
    Reshape(Reshape),
    // A stride-1 3x3 conv2d as Winograd's F(m x m, 3 x 3) (`ops/winograd.rs`), which the
    // compiler rewrites convs into after autodiff.
    WinogradWeight(WinogradWeight),
    WinogradInput(WinogradInput),
    WinogradGemm(WinogradGemm),
    WinogradOutput(WinogradOutput),
}

impl Op {
    /// Short name shown in plans and errors (`conv2d`, `relu`, ...).
    pub fn kind_name(&self) -> String {
        match self {
            Op::Input { .. } => "input".into(),
            Op::Param { .. } => "param".into(),
            Op::Const(_) => "const".into(),
            Op::Conv2d(_) => "conv2d".into(),
            Op::ConvTranspose2d(_) => "conv_transpose2d".into(),
            Op::ReflectPad(_) => "reflect_pad".into(),
            Op::InstanceNorm(_) => "instance_norm".into(),
            Op::InstanceNormStats(_) => "instance_norm_stats".into(),
            Op::InstanceNormApply(_) => "instance_norm_apply".into(),
            Op::PlaneStat(_) => "plane_stat".into(),
            Op::PlaneMeans(_) => "plane_means".into(),
            Op::Unary(u) => u.name().into(),
            Op::Binary(b) => b.name().into(),
            Op::ChannelAffine(_) => "channel_affine".into(),
            Op::Concat(_) => "concat".into(),
            Op::MaxPool2d(_) => "max_pool2d".into(),
            Op::Dropout(_) => "dropout".into(),
            Op::Reduce(r) => r.name().into(),
            Op::Conv2dWeightGrad(_) => "conv2d_weight_grad".into(),
            Op::ConvTranspose2dWeightGrad(_) => "conv_transpose2d_weight_grad".into(),
            Op::ReflectPadGrad(_) => "reflect_pad_grad".into(),
            Op::MaxPool2dGrad(_) => "max_pool2d_grad".into(),
            Op::Expand(_) => "expand".into(),
            Op::ChannelSlice(_) => "channel_slice".into(),
            Op::Reshape(_) => "reshape".into(),
            Op::WinogradWeight(_) => "winograd_weight".into(),
            Op::WinogradInput(_) => "winograd_input".into(),
            Op::WinogradGemm(_) => "winograd_gemm".into(),
            Op::WinogradOutput(_) => "winograd_output".into(),
        }
    }

    /// The output shape from the input shapes, or a message saying what was expected and found.
    pub fn infer_shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        match self {
            Op::Input { .. } | Op::Param { .. } => {
                Err("sources get their shape from the front end, not from a shape rule".into())
            }
            Op::Const(c) => Ok(c.shape.clone()),
            Op::Conv2d(o) => o.shape(inputs),
            Op::ConvTranspose2d(o) => o.shape(inputs),
            Op::ReflectPad(o) => o.shape(inputs),
            Op::InstanceNorm(o) => o.shape(inputs),
            Op::InstanceNormStats(o) => o.shape(inputs),
            Op::InstanceNormApply(o) => o.shape(inputs),
            Op::PlaneStat(o) => o.shape(inputs),
            Op::PlaneMeans(o) => o.shape(inputs),
            Op::Unary(o) => o.shape(inputs),
            Op::Binary(o) => o.shape(inputs),
            Op::ChannelAffine(o) => o.shape(inputs),
            Op::Concat(o) => o.shape(inputs),
            Op::MaxPool2d(o) => o.shape(inputs),
            Op::Dropout(o) => o.shape(inputs),
            Op::Reduce(o) => o.shape(inputs),
            Op::Conv2dWeightGrad(o) => o.shape(inputs),
            Op::ConvTranspose2dWeightGrad(o) => o.shape(inputs),
            Op::ReflectPadGrad(o) => o.shape(inputs),
            Op::MaxPool2dGrad(o) => o.shape(inputs),
            Op::Expand(o) => o.shape(inputs),
            Op::ChannelSlice(o) => o.shape(inputs),
            Op::Reshape(o) => o.shape(inputs),
            Op::WinogradWeight(o) => o.shape(inputs),
            Op::WinogradInput(o) => o.shape(inputs),
            Op::WinogradGemm(o) => o.shape(inputs),
            Op::WinogradOutput(o) => o.shape(inputs),
        }
    }

    /// The CPU reference: plain loops, the meaning of the op. Sources are not evaluated here.
    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        match self {
            Op::Input { .. } | Op::Param { .. } => panic!("sources are fed, not evaluated"),
            Op::Const(c) => c.cpu(),
            Op::Conv2d(o) => o.cpu(inputs, out_shape),
            Op::ConvTranspose2d(o) => o.cpu(inputs, out_shape),
            Op::ReflectPad(o) => o.cpu(inputs, out_shape),
            Op::InstanceNorm(o) => o.cpu(inputs, out_shape),
            Op::InstanceNormStats(o) => o.cpu(inputs, out_shape),
            Op::InstanceNormApply(o) => o.cpu(inputs, out_shape),
            Op::PlaneStat(o) => o.cpu(inputs, out_shape),
            Op::PlaneMeans(o) => o.cpu(inputs, out_shape),
            Op::Unary(o) => o.cpu(inputs, out_shape),
            Op::Binary(o) => o.cpu(inputs, out_shape),
            Op::ChannelAffine(o) => o.cpu(inputs, out_shape),
            Op::Concat(o) => o.cpu(inputs, out_shape),
            Op::MaxPool2d(o) => o.cpu(inputs, out_shape),
            Op::Dropout(o) => o.cpu(inputs, out_shape),
            Op::Reduce(o) => o.cpu(inputs, out_shape),
            Op::Conv2dWeightGrad(o) => o.cpu(inputs, out_shape),
            Op::ConvTranspose2dWeightGrad(o) => o.cpu(inputs, out_shape),
            Op::ReflectPadGrad(o) => o.cpu(inputs, out_shape),
            Op::MaxPool2dGrad(o) => o.cpu(inputs, out_shape),
            Op::Expand(o) => o.cpu(inputs, out_shape),
            Op::ChannelSlice(o) => o.cpu(inputs, out_shape),
            Op::Reshape(o) => o.cpu(inputs, out_shape),
            Op::WinogradWeight(o) => o.cpu(inputs, out_shape),
            Op::WinogradInput(o) => o.cpu(inputs, out_shape),
            Op::WinogradGemm(o) => o.cpu(inputs, out_shape),
            Op::WinogradOutput(o) => o.cpu(inputs, out_shape),
        }
    }

    /// The vector-Jacobian product: given `grad`, the gradient of a scalar with respect to
    /// `node`'s value (this op's output), push IR ops onto `g` that compute the gradient with
    /// respect to each input. One entry per input, None where no gradient flows (sources have
    /// no inputs). Errors say why an op cannot be differentiated.
    pub fn vjp(
        &self,
        g: &mut Graph,
        node: NodeId,
        grad: NodeId,
    ) -> Result<Vec<Option<NodeId>>, String> {
        match self {
            Op::Input { .. } | Op::Param { .. } | Op::Const(_) => Ok(vec![]),
            Op::Conv2d(o) => o.vjp(g, node, grad),
            Op::ConvTranspose2d(o) => o.vjp(g, node, grad),
            Op::ReflectPad(o) => o.vjp(g, node, grad),
            Op::InstanceNorm(o) => o.vjp(g, node, grad),
            Op::InstanceNormStats(o) => o.vjp(g, node, grad),
            Op::InstanceNormApply(o) => o.vjp(g, node, grad),
            Op::PlaneStat(o) => o.vjp(g, node, grad),
            Op::PlaneMeans(o) => o.vjp(g, node, grad),
            Op::Unary(o) => o.vjp(g, node, grad),
            Op::Binary(o) => o.vjp(g, node, grad),
            Op::ChannelAffine(o) => o.vjp(g, node, grad),
            Op::Concat(o) => o.vjp(g, node, grad),
            Op::MaxPool2d(o) => o.vjp(g, node, grad),
            Op::Dropout(o) => o.vjp(g, node, grad),
            Op::Reduce(o) => o.vjp(g, node, grad),
            Op::Conv2dWeightGrad(o) => o.vjp(g, node, grad),
            Op::ConvTranspose2dWeightGrad(o) => o.vjp(g, node, grad),
            Op::ReflectPadGrad(o) => o.vjp(g, node, grad),
            Op::MaxPool2dGrad(o) => o.vjp(g, node, grad),
            Op::Expand(o) => o.vjp(g, node, grad),
            Op::ChannelSlice(o) => o.vjp(g, node, grad),
            Op::Reshape(o) => o.vjp(g, node, grad),
            Op::WinogradWeight(o) => o.vjp(g, node, grad),
            Op::WinogradInput(o) => o.vjp(g, node, grad),
            Op::WinogradGemm(o) => o.vjp(g, node, grad),
            Op::WinogradOutput(o) => o.vjp(g, node, grad),
        }
    }

    /// What passes ask of this op (see [`Properties`]): each op states its own.
    pub fn properties(&self) -> Properties {
        match self {
            Op::Input { .. } | Op::Param { .. } => Properties::NONE,
            Op::Const(_) => Const::PROPERTIES,
            Op::Conv2d(_) => Conv2d::PROPERTIES,
            Op::ConvTranspose2d(_) => ConvTranspose2d::PROPERTIES,
            Op::ReflectPad(_) => ReflectPad::PROPERTIES,
            Op::InstanceNorm(_) => InstanceNorm::PROPERTIES,
            Op::InstanceNormStats(_) => InstanceNormStats::PROPERTIES,
            Op::InstanceNormApply(_) => InstanceNormApply::PROPERTIES,
            Op::PlaneStat(_) => PlaneStat::PROPERTIES,
            Op::PlaneMeans(_) => PlaneMeans::PROPERTIES,
            Op::Unary(_) => Unary::PROPERTIES,
            Op::Binary(_) => Binary::PROPERTIES,
            Op::ChannelAffine(_) => ChannelAffine::PROPERTIES,
            Op::Concat(_) => Concat::PROPERTIES,
            Op::MaxPool2d(_) => MaxPool2d::PROPERTIES,
            Op::Dropout(_) => Dropout::PROPERTIES,
            Op::Reduce(_) => Reduce::PROPERTIES,
            Op::Conv2dWeightGrad(_) => Conv2dWeightGrad::PROPERTIES,
            Op::ConvTranspose2dWeightGrad(_) => ConvTranspose2dWeightGrad::PROPERTIES,
            Op::ReflectPadGrad(_) => ReflectPadGrad::PROPERTIES,
            Op::MaxPool2dGrad(_) => MaxPool2dGrad::PROPERTIES,
            Op::Expand(_) => Expand::PROPERTIES,
            Op::ChannelSlice(_) => ChannelSlice::PROPERTIES,
            Op::Reshape(_) => Reshape::PROPERTIES,
            Op::WinogradWeight(_) => WinogradWeight::PROPERTIES,
            Op::WinogradInput(_) => WinogradInput::PROPERTIES,
            Op::WinogradGemm(_) => WinogradGemm::PROPERTIES,
            Op::WinogradOutput(_) => WinogradOutput::PROPERTIES,
        }
    }
}
