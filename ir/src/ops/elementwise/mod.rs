//! Elementwise ops. Each unary and binary op is one line of a table macro that gives its name,
//! its meaning on the CPU and its WGSL expression, so the generated kernels and the reference
//! read the same definition.

use super::check;
use super::properties::Properties;
use super::properties::{elements, Flops};
use super::reach::{Reach, Spatial};
use crate::{shape4, Shape, Tensor};
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
    /// 1 / (1 + exp(-x))
    Sigmoid,
    /// x * sigmoid(x) (SiLU, swish)
    Silu,
    /// log(1 + exp(x))
    Softplus,
    /// The error function (its WGSL is [`ERF_WGSL`], whose error is below 1.5e-7).
    Erf,
    /// x * Phi(x), Phi the standard normal CDF (PyTorch's exact GELU).
    Gelu,
    /// 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) (PyTorch's `approximate="tanh"`).
    GeluTanh,
}

/// `irdc_erf`, which the WGSL of [`Unary::Erf`] and [`Unary::Gelu`] calls: WGSL has no erf.
/// Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7. Kernels that call it get it.
pub const ERF_WGSL: &str = "
fn irdc_erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * abs(x));
    let p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(x) * (1.0 - p * exp(-x * x));
}
";

/// The CPU's erf, for any float type (through f64).
fn erf<T: Float>(x: T) -> T {
    t(libm::erf(x.to_f64().unwrap_or(f64::NAN)))
}

/// The logistic function without overflow for either sign.
fn sigmoid<T: Float>(x: T) -> T {
    match x >= T::zero() {
        true => T::one() / (T::one() + (-x).exp()),
        false => x.exp() / (T::one() + x.exp()),
    }
}

/// sqrt(2 / pi), the tanh form of GELU's scale; and its cubic's coefficient.
const GELU_C: f64 = 0.797_884_560_802_865_4;
const GELU_K: f64 = 0.044715;

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
    Sigmoid => "sigmoid", |x| sigmoid(x), |x| format!("(1.0 / (1.0 + exp(-{x})))");
    Silu => "silu", |x| x * sigmoid(x), |x| format!("({x} / (1.0 + exp(-{x})))");
    // max(x, 0) + log(1 + exp(-|x|)): no overflow for large x.
    Softplus => "softplus", |x| x.max(T::zero()) + (-x.abs()).exp().ln_1p(),
        |x| format!("(max({x}, 0.0) + log(1.0 + exp(-abs({x}))))");
    Erf => "erf", |x| erf(x), |x| format!("irdc_erf({x})");
    Gelu => "gelu", |x| x * (T::one() + erf(x * t(std::f64::consts::FRAC_1_SQRT_2))) * t(0.5),
        |x| format!("(0.5 * {x} * (1.0 + irdc_erf({x} * 0.70710677)))");
    GeluTanh => "gelu_tanh",
        |x| x * (T::one() + (t::<T>(GELU_C) * (x + t::<T>(GELU_K) * x * x * x)).tanh()) * t(0.5),
        |x| format!("(0.5 * {x} * (1.0 + tanh(clamp(0.7978846 * ({x} + 0.044715 * {x} * {x} * {x}), -15.0, 15.0))))");
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
        Tensor::from_fn(out_shape, |i0, i1, i2, i3| {
            let i = [i0, i1, i2, i3];
            self.apply(at_broadcast(inputs[0], i), at_broadcast(inputs[1], i))
        })
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

mod vjp;

impl Spatial for Unary {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Pixel
    }
}

impl Spatial for Binary {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Pixel
    }
}

impl Spatial for ChannelAffine {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Pixel
    }
}

#[cfg(test)]
mod tests;
