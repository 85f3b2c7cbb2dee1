//! The op table of the model language: how each struct name (`Conv`, `Relu`, `Add`, ..) reads its
//! fields and becomes an `ir::Op` with its inputs. The shape rules live with the ops in `ops/`;
//! this file only translates names and defaults. Convolutions also declare their parameters.

use super::call::Call;
use super::error::R;
use super::fields::{expected, Fields};
use crate::ops::*;
use crate::{NodeId, Op, Shape};

/// Every op name the language knows, in the order messages list them.
pub const OP_NAMES: &[&str] = &[
    "Conv",
    "ConvT",
    "ReflectPad",
    "InstanceNorm",
    "Relu",
    "LeakyRelu",
    "Tanh",
    "Clamp",
    "Abs",
    "Neg",
    "Sqrt",
    "Square",
    "Exp",
    "Log",
    "Sigmoid",
    "Silu",
    "Softplus",
    "Erf",
    "Gelu",
    "Affine",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Max",
    "Min",
    "ChannelAffine",
    "Concat",
    "Slice",
    "MaxPool",
    "Dropout",
    "Sum",
    "Mean",
    "Const",
    "Param",
    "PixelShuffle",
    "PixelUnshuffle",
    "Resize",
    "AvgPool",
    "Reshape",
    "MatMul",
    "Softmax",
    "LayerNorm",
];

/// An op node ready to push: its inputs, then the parameters it owns (appended to its inputs,
/// named `<node path>.<suffix>`).
pub struct Built {
    pub op: Op,
    pub inputs: Vec<NodeId>,
    pub params: Vec<(&'static str, Shape, Init)>,
}

fn plain(op: Op, inputs: Vec<NodeId>) -> Built {
    Built {
        op,
        inputs,
        params: Vec::new(),
    }
}

/// Build op `name` from the call's fields; `None` if `name` is not an op.
pub fn build(name: &str, c: &mut Call) -> R<Option<Built>> {
    let unary =
        |c: &mut Call, u: Unary| -> R<Built> { Ok(plain(Op::Unary(u), vec![c.value("in")?])) };
    let binary = |c: &mut Call, b: Binary| -> R<Built> {
        let a = c.value("a")?;
        Ok(plain(Op::Binary(b), vec![a, c.value("b")?]))
    };
    let built = match name {
        "Conv" | "ConvT" => conv(c, name == "ConvT")?,
        "ReflectPad" => {
            let x = c.value("in")?;
            plain(
                Op::ReflectPad(ReflectPad {
                    pads: c.pads("pad")?,
                }),
                vec![x],
            )
        }
        "InstanceNorm" => {
            let x = c.value("in")?;
            plain(
                Op::InstanceNorm(InstanceNorm {
                    eps: c.num_or("eps", 1e-5)?,
                }),
                vec![x],
            )
        }
        "Relu" => unary(c, Unary::Relu)?,
        "LeakyRelu" => {
            let x = c.value("in")?;
            plain(
                Op::Unary(Unary::LeakyRelu {
                    slope: c.num("slope")?,
                }),
                vec![x],
            )
        }
        "Tanh" => unary(c, Unary::Tanh)?,
        "Sigmoid" => unary(c, Unary::Sigmoid)?,
        "Silu" => unary(c, Unary::Silu)?,
        "Softplus" => unary(c, Unary::Softplus)?,
        "Erf" => unary(c, Unary::Erf)?,
        // PyTorch's exact GELU, or with `tanh: true` its `approximate="tanh"` form.
        "Gelu" => {
            let x = c.value("in")?;
            let op = match c.bool_or("tanh", false)? {
                true => Unary::GeluTanh,
                false => Unary::Gelu,
            };
            plain(Op::Unary(op), vec![x])
        }
        "Clamp" => {
            let x = c.value("in")?;
            let min = c.num("min")?;
            plain(
                Op::Unary(Unary::Clamp {
                    min,
                    max: c.num("max")?,
                }),
                vec![x],
            )
        }
        "Abs" => unary(c, Unary::Abs)?,
        "Neg" => unary(c, Unary::Neg)?,
        "Sqrt" => unary(c, Unary::Sqrt)?,
        "Square" => unary(c, Unary::Square)?,
        "Exp" => unary(c, Unary::Exp)?,
        "Log" => unary(c, Unary::Log)?,
        "Affine" => {
            let x = c.value("in")?;
            let scale = c.num("scale")?;
            plain(
                Op::Unary(Unary::Affine {
                    scale,
                    shift: c.num("shift")?,
                }),
                vec![x],
            )
        }
        "Add" => binary(c, Binary::Add)?,
        "Sub" => binary(c, Binary::Sub)?,
        "Mul" => binary(c, Binary::Mul)?,
        "Div" => binary(c, Binary::Div)?,
        "Max" => binary(c, Binary::Max)?,
        "Min" => binary(c, Binary::Min)?,
        "ChannelAffine" => {
            let x = c.value("in")?;
            let scale = c.nums("scale")?;
            plain(
                Op::ChannelAffine(ChannelAffine {
                    scale,
                    shift: c.nums("shift")?,
                }),
                vec![x],
            )
        }
        "Concat" => plain(Op::Concat(Concat {}), c.values("in")?),
        "MaxPool" => {
            let x = c.value("in")?;
            let kernel = c.size("kernel")?;
            let stride = c.size_or("stride", kernel)?;
            plain(
                Op::MaxPool2d(MaxPool2d {
                    kernel,
                    stride,
                    pad: c.count_or("pad", 0)?,
                }),
                vec![x],
            )
        }
        "Dropout" => {
            let x = c.value("in")?;
            // The salt (from the node's path) and a training build's seed: front/dropout.rs.
            let p = c.num("p")?;
            plain(Op::Dropout(Dropout { p, salt: 0 }), vec![x])
        }
        // Channels `from..to` (NAFNet's SimpleGate multiplies the two halves).
        "Slice" => {
            let x = c.value("in")?;
            let channels = c.shape(x).get(1).copied().unwrap_or(0);
            let c0 = c.count_or("from", 0)?;
            let c1 = c.count_or("to", channels)?;
            plain(Op::ChannelSlice(ChannelSlice { c0, c1 }), vec![x])
        }
        "Sum" | "Mean" => {
            let x = c.value("in")?;
            let kind = if name == "Sum" {
                ReduceKind::Sum
            } else {
                ReduceKind::Mean
            };
            plain(
                Op::Reduce(Reduce {
                    kind,
                    axes: c.counts_or("axes", Vec::new())?,
                }),
                vec![x],
            )
        }
        "Const" => {
            let shape = c.sizes("shape")?;
            let mut values = c.nums("values")?;
            let n = crate::numel(&shape);
            if values.len() == 1 {
                values = vec![values[0]; n];
            } else if values.len() != n {
                return Err(c.err(format!(
                    "expected 1 or {n} values for shape {shape:?}, found {}",
                    values.len()
                )));
            }
            plain(Op::Const(Const { shape, values }), Vec::new())
        }
        "PixelShuffle" | "PixelUnshuffle" => {
            let x = c.value("in")?;
            let factor = c.size("factor")?;
            let op = match name {
                "PixelShuffle" => Op::PixelShuffle(PixelShuffle { factor }),
                _ => Op::PixelUnshuffle(PixelUnshuffle { factor }),
            };
            plain(op, vec![x])
        }
        "Resize" => {
            let x = c.value("in")?;
            let factor = c.size("factor")?;
            let mode = match c.word_or("mode", &["nearest", "bilinear"], "nearest")? {
                "bilinear" => ResizeMode::Bilinear,
                _ => ResizeMode::Nearest,
            };
            plain(Op::Resize(Resize { factor, mode }), vec![x])
        }
        "AvgPool" => {
            let x = c.value("in")?;
            let kernel = c.size("kernel")?;
            let stride = c.size_or("stride", kernel)?;
            let pad = c.count_or("pad", 0)?;
            plain(
                Op::AvgPool(AvgPool {
                    kernel,
                    stride,
                    pad,
                }),
                vec![x],
            )
        }
        // The same elements in the same order under a new shape (attention's heads).
        "Reshape" => {
            let x = c.value("in")?;
            let shape = c.sizes("shape")?;
            plain(Op::Reshape(Reshape { shape }), vec![x])
        }
        "MatMul" => {
            let a = c.value("a")?;
            let b = c.value("b")?;
            let trans_a = c.bool_or("trans_a", false)?;
            let trans_b = c.bool_or("trans_b", false)?;
            plain(Op::MatMul(MatMul { trans_a, trans_b }), vec![a, b])
        }
        // Along the last axis unless told.
        "Softmax" => {
            let x = c.value("in")?;
            let last = c.shape(x).len().saturating_sub(1);
            let axis = c.count_or("axis", last)?;
            plain(Op::Softmax(Softmax { axis }), vec![x])
        }
        "LayerNorm" => layer_norm(c)?,
        _ => return Ok(None),
    };
    Ok(Some(built))
}

/// `Param(shape, init = 0)`: a learnable tensor any op may read (NAFNet's per-channel scales, a
/// layer norm's weight). `init` is a number every element starts at, or `Normal(std)` (`Normal`
/// alone: the model's `init_std`).
pub fn param(c: &mut Call) -> R<(Shape, Init)> {
    let shape = c.sizes("shape")?;
    if shape.is_empty() || shape.len() > 4 {
        return Err(c.err(format!(
            "Param: expected a shape of rank 1 to 4, found {shape:?}"
        )));
    }
    let init = match c.f.get("init") {
        None => Init::Zeros,
        Some(v) => match Fields::of(v, true) {
            Some((Some("Normal"), fields)) => {
                let mut f = Fields::new("Normal", v.span, fields);
                let std = match f.get("std") {
                    Some(s) => c.num_of(s)?,
                    None => c.init_std,
                };
                f.finish()?;
                Init::Normal { std }
            }
            _ => Init::Fill {
                value: c
                    .num_of(v)
                    .map_err(|_| expected(v, "a number or `Normal(std: ..)`"))?,
            },
        },
    };
    Ok((shape, init))
}

/// `LayerNorm(in, eps = 1e-5, affine = true)`: over the channels at each pixel (LayerNorm2d),
/// owning `weight` (ones) and `bias` (zeros), one per channel, as PyTorch's.
fn layer_norm(c: &mut Call) -> R<Built> {
    let x = c.value("in")?;
    let eps = c.num_or("eps", 1e-5)?;
    let affine = c.bool_or("affine", true)?;
    let channels = c.shape(x).get(1).copied().unwrap_or(0);
    let params = match affine {
        true => vec![
            ("weight", vec![channels], Init::Fill { value: 1.0 }),
            ("bias", vec![channels], Init::Zeros),
        ],
        false => Vec::new(),
    };
    Ok(Built {
        op: Op::LayerNorm(LayerNorm { eps, affine }),
        inputs: vec![x],
        params,
    })
}

/// `Conv(in, out, kernel, stride = 1, pad = kernel / 2, bias = true, groups = 1)` and
/// `ConvT(in, out, kernel, stride, pad, out_pad, bias = true, groups = 1)`; input channels come
/// from the input.
fn conv(c: &mut Call, transposed: bool) -> R<Built> {
    let x = c.value("in")?;
    let out = c.size("out")?;
    let k = c.size("kernel")?;
    let (stride, pad) = if transposed {
        (c.size("stride")?, c.count("pad")?)
    } else {
        (c.size_or("stride", 1)?, c.count_or("pad", k / 2)?)
    };
    let out_pad = if transposed { c.count("out_pad")? } else { 0 };
    let bias = c.bool_or("bias", true)?;
    let groups = c.size_or("groups", 1)?;
    let op_name = if transposed { "ConvT" } else { "Conv" };
    let &[_, cin, _, _] = c.shape(x) else {
        return Err(c.err(format!(
            "{op_name}: expected an input of rank 4 [N, C, H, W], found {:?}",
            c.shape(x)
        )));
    };
    if !cin.is_multiple_of(groups) || !out.is_multiple_of(groups) {
        return Err(c.err(format!(
            "{op_name}: expected input channels ({cin}) and `out` ({out}) divisible by `groups` ({groups})"
        )));
    }
    let weight = if transposed {
        vec![cin, out / groups, k, k]
    } else {
        vec![out, cin / groups, k, k]
    };
    // PyTorch's default (kaiming_uniform with a = sqrt(5), and its bias rule): both uniform on
    // +-1 / sqrt(fan_in), fan_in being the weight's second dimension times the kernel's area.
    let (w_init, b_init) = match c.pytorch_init {
        true => {
            // At least one input: the bound stays finite (init_params relies on it).
            let bound = 1.0 / ((weight[1] * k * k).max(1) as f64).sqrt();
            (Init::Uniform { bound }, Init::Uniform { bound })
        }
        false => (Init::Normal { std: c.init_std }, Init::Zeros),
    };
    let mut params = vec![("weight", weight, w_init)];
    if bias {
        params.push(("bias", vec![out], b_init));
    }
    let op = if transposed {
        Op::ConvTranspose2d(ConvTranspose2d {
            stride,
            pad,
            out_pad,
            bias,
            groups,
        })
    } else {
        Op::Conv2d(Conv2d {
            stride,
            pad,
            bias,
            groups,
        })
    };
    Ok(Built {
        op,
        inputs: vec![x],
        params,
    })
}
