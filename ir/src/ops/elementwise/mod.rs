//! Elementwise ops. Each unary and binary op is one line of a table macro that gives its name,
//! its meaning on the CPU and its WGSL expression, so the generated kernels and the reference
//! read the same definition.

use super::check;
use super::properties::Properties;
use super::properties::{elements, Flops};
use super::vjp::VjpResult;
use super::vjp::{binary as bin, unary as un};
use crate::{shape4, Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

#[derive(Debug, Clone, PartialEq)]
pub enum Unary {
    Relu,
    LeakyRelu {
        slope: f64,
    },
    Tanh,
    Clamp {
        min: f64,
        max: f64,
    },
    Abs,
    Neg,
    Sqrt,
    Square,
    Exp,
    Log,
    /// x * scale + shift
    Affine {
        scale: f64,
        shift: f64,
    },
    /// 1 if x > 0 else 0 (relu's derivative)
    Step,
    /// 1 if x > 0 else slope (leaky_relu's derivative)
    LeakyStep {
        slope: f64,
    },
    /// -1, 0 or 1 (abs's derivative; 0 at 0 as PyTorch)
    Sign,
    /// 1 if min <= x <= max else 0 (clamp's derivative)
    InRange {
        min: f64,
        max: f64,
    },
    /// 1 / x
    Recip,
}

/// Binary ops broadcast NumPy-style over the rank-4 padded shapes (a dimension of 1 stretches).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
}

/// inputs: x [N,C,H,W]; y = x * scale[c] + shift[c].
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelAffine {
    pub scale: Vec<f64>,
    pub shift: Vec<f64>,
}

/// An f64 attribute as a WGSL f32 literal: `0.2`, `1e-5`, `1.0`, `(-0.25)` (parenthesised so that
/// it can follow any operator; `x--1.0` would not parse). Shape rules reject attributes that are
/// not finite in f32, so the saturation below only keeps this total.
pub fn wgsl_f32(v: f64) -> String {
    let f = (v as f32).clamp(f32::MIN, f32::MAX);
    let f = if f.is_nan() { 0.0 } else { f };
    // Rust's Debug form of an f32 is its shortest round-trip text and always has a `.` or an
    // exponent, which WGSL reads as a float; `1` alone would be an integer.
    if f.is_sign_negative() && f != 0.0 {
        format!("({f:?})")
    } else {
        format!("{:?}", f.abs())
    }
}

/// The argument of an op, parenthesised unless it is a plain name or number, so that an op
/// applied to `a - b` keeps its meaning.
fn atom(x: &str) -> String {
    if !x.is_empty()
        && x.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        x.to_string()
    } else {
        format!("({x})")
    }
}

/// An attribute converted to the evaluation type.
fn t<T: Float>(v: f64) -> T {
    T::from(v).unwrap_or_else(T::nan)
}

/// One line per unary op: `Variant { f64 attributes } => "name", |x| CPU meaning of x: T,
/// |x| WGSL of the atom string x;`. The attributes are in scope, as f64, in both expressions.
macro_rules! unary_ops {
    ($($v:ident $({ $($f:ident),* })? => $name:literal, |$x:ident| $cpu:expr, |$xs:ident| $wgsl:expr;)*) => {
        impl Unary {
            pub fn name(&self) -> &'static str {
                match self {
                    $(Unary::$v $({ $($f: _),* })? => $name,)*
                }
            }
            /// The op on one value (the CPU meaning).
            pub fn apply<T: Float>(&self, x: T) -> T {
                match *self {
                    $(Unary::$v $({ $($f),* })? => { let $x = x; $cpu })*
                }
            }
            /// The op as a WGSL f32 expression of the expression `x`.
            pub fn wgsl(&self, x: &str) -> String {
                let x = atom(x);
                match *self {
                    $(Unary::$v $({ $($f),* })? => { let $xs = &x; $wgsl })*
                }
            }
            /// The f64 attributes by name, for the checks of the shape rule.
            fn attributes(&self) -> Vec<(&'static str, f64)> {
                match *self {
                    $(Unary::$v $({ $($f),* })? => vec![$($((stringify!($f), $f)),*)?],)*
                }
            }
            /// One of each op (attributes -0.25), for tests that must cover the whole table.
            #[cfg(test)]
            pub(crate) fn examples() -> Vec<Unary> {
                vec![$(Unary::$v $({ $($f: -0.25),* })?),*]
            }
        }
    };
}

unary_ops! {
    Relu => "relu", |x| x.max(T::zero()), |x| format!("max({x}, 0.0)");
    LeakyRelu { slope } => "leaky_relu",
        |x| if x > T::zero() { x } else { x * t(slope) },
        |x| format!("select({x} * {}, {x}, {x} > 0.0)", wgsl_f32(slope));
    // Some drivers compute tanh as a ratio of exponentials, NaN past |x| ~ 44; tanh(15) is
    // already 1.0 in f32, so clamping first changes no result.
    Tanh => "tanh", |x| x.tanh(), |x| format!("tanh(clamp({x}, -15.0, 15.0))");
    Clamp { min, max } => "clamp",
        |x| x.max(t(min)).min(t(max)),
        |x| format!("clamp({x}, {}, {})", wgsl_f32(min), wgsl_f32(max));
    Abs => "abs", |x| x.abs(), |x| format!("abs({x})");
    Neg => "neg", |x| -x, |x| format!("(-{x})");
    Sqrt => "sqrt", |x| x.sqrt(), |x| format!("sqrt({x})");
    Square => "square", |x| x * x, |x| format!("({x} * {x})");
    Exp => "exp", |x| x.exp(), |x| format!("exp({x})");
    Log => "log", |x| x.ln(), |x| format!("log({x})");
    Affine { scale, shift } => "affine",
        |x| x * t(scale) + t(shift),
        |x| format!("({x} * {} + {})", wgsl_f32(scale), wgsl_f32(shift));
    Step => "step", |x| if x > T::zero() { T::one() } else { T::zero() },
        |x| format!("select(0.0, 1.0, {x} > 0.0)");
    LeakyStep { slope } => "leaky_step", |x| if x > T::zero() { T::one() } else { t(slope) },
        |x| format!("select({}, 1.0, {x} > 0.0)", wgsl_f32(slope));
    Sign => "sign",
        |x| if x > T::zero() { T::one() } else if x < T::zero() { -T::one() } else { x * T::zero() },
        |x| format!("sign({x})");
    InRange { min, max } => "in_range",
        |x| if x >= t(min) && x <= t(max) { T::one() } else { T::zero() },
        |x| format!("select(0.0, 1.0, {x} >= {} && {x} <= {})", wgsl_f32(min), wgsl_f32(max));
    Recip => "recip", |x| x.recip(), |x| format!("(1.0 / {x})");
}

/// One line per binary op: `Variant => "name", |a, b| CPU meaning, |a, b| WGSL of atom strings;`.
macro_rules! binary_ops {
    ($($v:ident => $name:literal, |$a:ident, $b:ident| $cpu:expr, |$as:ident, $bs:ident| $wgsl:expr;)*) => {
        impl Binary {
            pub fn name(&self) -> &'static str {
                match self {
                    $(Binary::$v => $name,)*
                }
            }
            pub fn apply<T: Float>(&self, a: T, b: T) -> T {
                match self {
                    $(Binary::$v => { let ($a, $b) = (a, b); $cpu })*
                }
            }
            /// The op as a WGSL f32 expression of `a` and `b`.
            pub fn wgsl(&self, a: &str, b: &str) -> String {
                let (a, b) = (atom(a), atom(b));
                match self {
                    $(Binary::$v => { let ($as, $bs) = (&a, &b); $wgsl })*
                }
            }
            /// Every op, for tests that must cover the whole table.
            #[cfg(test)]
            pub(crate) const ALL: &[Binary] = &[$(Binary::$v),*];
        }
    };
}

binary_ops! {
    Add => "add", |a, b| a + b, |a, b| format!("({a} + {b})");
    Sub => "sub", |a, b| a - b, |a, b| format!("({a} - {b})");
    Mul => "mul", |a, b| a * b, |a, b| format!("({a} * {b})");
    Div => "div", |a, b| a / b, |a, b| format!("({a} / {b})");
    Max => "max", |a, b| a.max(b), |a, b| format!("max({a}, {b})");
    Min => "min", |a, b| a.min(b), |a, b| format!("min({a}, {b})");
}

/// An attribute is usable only if it is a finite f32: the kernels compute in f32.
fn finite(op: &str, what: &str, v: f64) -> Result<(), String> {
    if (v as f32).is_finite() {
        Ok(())
    } else {
        Err(format!("{op}: expected a finite f32 {what}, found {v:?}"))
    }
}

/// NumPy broadcasting over the rank-4 padded shapes: equal dimensions, or a 1 that stretches.
/// The result has the larger of the two ranks; `None` if they do not broadcast.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Shape> {
    let (a4, b4) = (shape4(a), shape4(b));
    let mut out = [0; 4];
    for k in 0..4 {
        out[k] = match (a4[k], b4[k]) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out[4 - a.len().max(b.len())..].to_vec())
}

/// The element of `t` that broadcasts to position `i` of the rank-4 output.
fn at_broadcast<T: Float>(t: &Tensor<T>, i: [usize; 4]) -> T {
    let s = shape4(&t.shape);
    let j = |k: usize| if s[k] == 1 { 0 } else { i[k] };
    t.at4(j(0), j(1), j(2), j(3))
}

impl Unary {
    pub const PROPERTIES: Properties = Properties {
        cheap: true,
        channelwise: true,
        ..Properties::ARITHMETIC
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        let op = self.name();
        check::arity(op, inputs, 1, "x")?;
        check::rank1to4(op, inputs[0])?;
        for (what, v) in self.attributes() {
            finite(op, what, v)?;
        }
        if let Unary::Clamp { min, max } | Unary::InRange { min, max } = *self {
            if min > max {
                return Err(format!(
                    "{op}: expected min <= max, found min {min:?}, max {max:?}"
                ));
            }
        }
        Ok(inputs[0].to_vec())
    }
    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        Tensor::new(
            out_shape,
            inputs[0].data.iter().map(|&x| self.apply(x)).collect(),
        )
    }
}

impl Binary {
    pub const PROPERTIES: Properties = Properties::ARITHMETIC;

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        let op = self.name();
        check::arity(op, inputs, 2, "a, b")?;
        check::rank1to4(op, inputs[0])?;
        check::rank1to4(op, inputs[1])?;
        broadcast_shapes(inputs[0], inputs[1]).ok_or_else(|| {
            format!(
                "{op}: shapes {:?} and {:?} do not broadcast",
                inputs[0], inputs[1]
            )
        })
    }
    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let [n, c, h, w] = shape4(out_shape);
        let mut y = Vec::with_capacity(crate::numel(out_shape));
        for i0 in 0..n {
            for i1 in 0..c {
                for i2 in 0..h {
                    for i3 in 0..w {
                        let i = [i0, i1, i2, i3];
                        y.push(self.apply(at_broadcast(inputs[0], i), at_broadcast(inputs[1], i)));
                    }
                }
            }
        }
        Tensor::new(out_shape, y)
    }
}

impl ChannelAffine {
    pub const PROPERTIES: Properties = Properties {
        cheap: true,
        ..Properties::ARITHMETIC
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "channel_affine";
        check::arity(OP, inputs, 1, "x")?;
        let [_, c, _, _] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        for (what, list) in [("scale", &self.scale), ("shift", &self.shift)] {
            if list.len() != c && list.len() != 1 {
                return Err(format!(
                    "{OP}: expected {c} {what} values (one per channel) or 1, found {}",
                    list.len()
                ));
            }
            for &v in list {
                finite(OP, what, v)?;
            }
        }
        Ok(inputs[0].to_vec())
    }
    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let [_, c, h, w] = shape4(out_shape);
        // A list of length 1 applies to every channel.
        let pick = |list: &[f64], ch: usize| t::<T>(list[if list.len() == 1 { 0 } else { ch }]);
        let data = inputs[0].data.iter().enumerate().map(|(k, &x)| {
            let ch = (k / (h * w)) % c;
            x * pick(&self.scale, ch) + pick(&self.shift, ch)
        });
        Tensor::new(out_shape, data.collect())
    }
}

// Vector-Jacobian products, written in IR ops. `x` is the input, `y` the node's own value.

impl Unary {
    /// g times the derivative. The step-like masks (step, leaky_step, sign, in_range) are
    /// piecewise constant: their derivative is 0 almost everywhere, so they return None (no
    /// gradient flows), which the autodiff pass reads as zero.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let (x, y) = (g.nodes[node].inputs[0], node);
        let n = super::vjp::prefix(g, node);
        let d = |s: &str| format!("{n}.{s}");
        // The local derivative as a node (or None for the masks), then g * derivative.
        let deriv = match *self {
            Unary::Relu => un(g, d("step"), Unary::Step, x)?,
            Unary::LeakyRelu { slope } => un(g, d("step"), Unary::LeakyStep { slope }, x)?,
            Unary::Tanh => {
                let y2 = un(g, d("y2"), Unary::Square, y)?;
                un(
                    g,
                    d("dtanh"),
                    Unary::Affine {
                        scale: -1.0,
                        shift: 1.0,
                    },
                    y2,
                )?
            }
            Unary::Clamp { min, max } => un(g, d("in_range"), Unary::InRange { min, max }, x)?,
            Unary::Abs => un(g, d("sign"), Unary::Sign, x)?,
            Unary::Neg => return Ok(vec![Some(un(g, n, Unary::Neg, grad)?)]),
            Unary::Sqrt => {
                let r = un(g, d("recip"), Unary::Recip, y)?;
                un(
                    g,
                    d("dsqrt"),
                    Unary::Affine {
                        scale: 0.5,
                        shift: 0.0,
                    },
                    r,
                )?
            }
            Unary::Square => un(
                g,
                d("two_x"),
                Unary::Affine {
                    scale: 2.0,
                    shift: 0.0,
                },
                x,
            )?,
            Unary::Exp => y,
            Unary::Log => un(g, d("recip"), Unary::Recip, x)?,
            Unary::Affine { scale, .. } => {
                let op = Unary::Affine { scale, shift: 0.0 };
                return Ok(vec![Some(un(g, n, op, grad)?)]);
            }
            // d(1/x) = -1/x^2 = -y^2
            Unary::Recip => {
                let y2 = un(g, d("y2"), Unary::Square, y)?;
                un(g, d("drecip"), Unary::Neg, y2)?
            }
            Unary::Step | Unary::LeakyStep { .. } | Unary::Sign | Unary::InRange { .. } => {
                return Ok(vec![None])
            }
        };
        Ok(vec![Some(bin(g, n, Binary::Mul, grad, deriv)?)])
    }
}

impl Binary {
    /// One gradient per operand, each summed back to its operand's shape where it broadcast.
    /// max/min send the gradient to the winning operand via step(a - b) (step(b - a) for min);
    /// on a tie all of it goes to b (PyTorch would split a tie evenly; ties have measure zero).
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let (a, b) = (g.nodes[node].inputs[0], g.nodes[node].inputs[1]);
        let n = super::vjp::prefix(g, node);
        let d = |s: &str| format!("{n}.{s}");
        let (ga, gb) = match self {
            Binary::Add => (grad, grad),
            Binary::Sub => (grad, un(g, d("neg"), Unary::Neg, grad)?),
            Binary::Mul => (
                bin(g, d("a"), Binary::Mul, grad, b)?,
                bin(g, d("b"), Binary::Mul, grad, a)?,
            ),
            Binary::Div => {
                // d/da = g / b, d/db = -g a / b^2 = -(g / b) * y
                let ga = bin(g, d("a"), Binary::Div, grad, b)?;
                let t = bin(g, d("a_y"), Binary::Mul, ga, node)?;
                (ga, un(g, d("b"), Unary::Neg, t)?)
            }
            Binary::Max | Binary::Min => {
                let diff = bin(g, d("diff"), Binary::Sub, a, b)?;
                // mask: 1 where a wins
                let mask = if *self == Binary::Max {
                    un(g, d("a_wins"), Unary::Step, diff)?
                } else {
                    // a wins a min where b - a > 0
                    let nd = un(g, d("neg_diff"), Unary::Neg, diff)?;
                    un(g, d("a_wins"), Unary::Step, nd)?
                };
                let ga = bin(g, d("a"), Binary::Mul, grad, mask)?;
                let gb = bin(g, d("b"), Binary::Sub, grad, ga)?;
                (ga, gb)
            }
        };
        let (sa, sb) = (g.nodes[a].shape.clone(), g.nodes[b].shape.clone());
        let ga = super::sum_to(g, &d("a_sum"), ga, &sa)?;
        let gb = super::sum_to(g, &d("b_sum"), gb, &sb)?;
        Ok(vec![Some(ga), Some(gb)])
    }
}

impl ChannelAffine {
    /// g * scale[c] (the shift has no gradient).
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let n = super::vjp::prefix(g, node);
        let op = Op::ChannelAffine(ChannelAffine {
            scale: self.scale.clone(),
            shift: vec![0.0],
        });
        Ok(vec![Some(g.push(n, op, vec![grad])?)])
    }
}

impl Flops for Unary {
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        elements(out)
    }
}

impl Flops for Binary {
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        elements(out)
    }
}

impl Flops for ChannelAffine {
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        elements(out)
    }
}

#[cfg(test)]
mod tests;
