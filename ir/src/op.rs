//! The op enum: one variant per op, each defined in its own file under `ops/`. This file only
//! dispatches; what an op means lives with its definition.

use crate::ops::*;
use crate::{Shape, Tensor};
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
    Unary(Unary),
    Binary(Binary),
    /// Per-channel x * scale[c] + shift[c] (ImageNet normalisation, [-1,1] -> [0,1]).
    ChannelAffine(ChannelAffine),
    /// Concatenation along the channel axis (1).
    Concat(Concat),
    MaxPool2d(MaxPool2d),
    Dropout(Dropout),
    Reduce(Reduce),
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
            Op::Unary(u) => u.name().into(),
            Op::Binary(b) => b.name().into(),
            Op::ChannelAffine(_) => "channel_affine".into(),
            Op::Concat(_) => "concat".into(),
            Op::MaxPool2d(_) => "max_pool2d".into(),
            Op::Dropout(_) => "dropout".into(),
            Op::Reduce(r) => r.name().into(),
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
            Op::Unary(o) => o.shape(inputs),
            Op::Binary(o) => o.shape(inputs),
            Op::ChannelAffine(o) => o.shape(inputs),
            Op::Concat(o) => o.shape(inputs),
            Op::MaxPool2d(o) => o.shape(inputs),
            Op::Dropout(o) => o.shape(inputs),
            Op::Reduce(o) => o.shape(inputs),
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
            Op::Unary(o) => o.cpu(inputs, out_shape),
            Op::Binary(o) => o.cpu(inputs, out_shape),
            Op::ChannelAffine(o) => o.cpu(inputs, out_shape),
            Op::Concat(o) => o.cpu(inputs, out_shape),
            Op::MaxPool2d(o) => o.cpu(inputs, out_shape),
            Op::Dropout(o) => o.cpu(inputs, out_shape),
            Op::Reduce(o) => o.cpu(inputs, out_shape),
        }
    }
}
