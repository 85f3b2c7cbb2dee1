//! The elementwise ops' vector-Jacobian products, written in IR ops (so they can be
//! differentiated again). `x` is the input, `y` the node's own value.

use super::{Binary, ChannelAffine, Unary, GELU_C, GELU_K};
use crate::ops::vjp::{binary as bin, unary as un, VjpResult};
use crate::{Graph, NodeId, Op};

impl Unary {
    /// g times the derivative. The step-like masks (step, leaky_step, sign, in_range) are
    /// piecewise constant: their derivative is 0 almost everywhere, so they return None (no
    /// gradient flows), which the autodiff pass reads as zero.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let (x, y) = (g.nodes[node].inputs[0], node);
        let n = crate::ops::vjp::prefix(g, node);
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
            Unary::Sigmoid => {
                let y2 = un(g, d("y2"), Unary::Square, y)?;
                bin(g, d("dsigmoid"), Binary::Sub, y, y2)?
            }
            // s + x s (1 - s) = s (1 + x (1 - s)), s = sigmoid(x)
            Unary::Silu => {
                let s = un(g, d("s"), Unary::Sigmoid, x)?;
                let one_minus = un(g, d("one_minus_s"), affine(-1.0, 1.0), s)?;
                let xm = bin(g, d("x_one_minus_s"), Binary::Mul, x, one_minus)?;
                let inner = un(g, d("inner"), affine(1.0, 1.0), xm)?;
                bin(g, d("dsilu"), Binary::Mul, s, inner)?
            }
            Unary::Softplus => un(g, d("dsoftplus"), Unary::Sigmoid, x)?,
            // 2 / sqrt(pi) exp(-x^2)
            Unary::Erf => {
                let e = gaussian(g, &d("gauss"), x, 1.0)?;
                un(
                    g,
                    d("derf"),
                    affine(std::f64::consts::FRAC_2_SQRT_PI, 0.0),
                    e,
                )?
            }
            // Phi(x) + x phi(x): Phi = (1 + erf(x / sqrt 2)) / 2, phi = exp(-x^2 / 2) / sqrt(2 pi)
            Unary::Gelu => {
                let xs = un(
                    g,
                    d("x_scaled"),
                    affine(std::f64::consts::FRAC_1_SQRT_2, 0.0),
                    x,
                )?;
                let erf = un(g, d("erf"), Unary::Erf, xs)?;
                let cdf = un(g, d("cdf"), affine(0.5, 0.5), erf)?;
                let e = gaussian(g, &d("gauss"), x, 0.5)?;
                let pdf = un(g, d("pdf"), affine(0.398_942_280_401_432_7, 0.0), e)?;
                let xpdf = bin(g, d("x_pdf"), Binary::Mul, x, pdf)?;
                bin(g, d("dgelu"), Binary::Add, cdf, xpdf)?
            }
            // (1 + t) / 2 + x (1 - t^2) c (1 + 3 k x^2) / 2, t = tanh(c (x + k x^3))
            Unary::GeluTanh => {
                let x2 = un(g, d("x2"), Unary::Square, x)?;
                let x3 = bin(g, d("x3"), Binary::Mul, x2, x)?;
                let kx3 = un(g, d("kx3"), affine(GELU_K, 0.0), x3)?;
                let inner = bin(g, d("inner"), Binary::Add, x, kx3)?;
                let u = un(g, d("u"), affine(GELU_C, 0.0), inner)?;
                let th = un(g, d("t"), Unary::Tanh, u)?;
                let half = un(g, d("half_one_plus_t"), affine(0.5, 0.5), th)?;
                let t2 = un(g, d("t2"), Unary::Square, th)?;
                let sech2 = un(g, d("sech2"), affine(-1.0, 1.0), t2)?;
                let du = un(g, d("du"), affine(3.0 * GELU_K * GELU_C, GELU_C), x2)?;
                let xs = bin(g, d("x_sech2"), Binary::Mul, x, sech2)?;
                let b = bin(g, d("b"), Binary::Mul, xs, du)?;
                let half_b = un(g, d("half_b"), affine(0.5, 0.0), b)?;
                bin(g, d("dgelu"), Binary::Add, half, half_b)?
            }
        };
        Ok(vec![Some(bin(g, n, Binary::Mul, grad, deriv)?)])
    }
}

fn affine(scale: f64, shift: f64) -> Unary {
    Unary::Affine { scale, shift }
}

/// exp(-a x^2) as IR ops, named `<name>.*`.
fn gaussian(g: &mut Graph, name: &str, x: NodeId, a: f64) -> Result<NodeId, String> {
    let x2 = un(g, format!("{name}.x2"), Unary::Square, x)?;
    let e = un(g, format!("{name}.arg"), affine(-a, 0.0), x2)?;
    un(g, name.to_string(), Unary::Exp, e)
}

impl Binary {
    /// One gradient per operand, each summed back to its operand's shape where it broadcast.
    /// max/min send the gradient to the winning operand via step(a - b) (step(b - a) for min);
    /// on a tie all of it goes to b (PyTorch would split a tie evenly; ties have measure zero).
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let (a, b) = (g.nodes[node].inputs[0], g.nodes[node].inputs[1]);
        let n = crate::ops::vjp::prefix(g, node);
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
        let ga = crate::ops::sum_to(g, &d("a_sum"), ga, &sa)?;
        let gb = crate::ops::sum_to(g, &d("b_sum"), gb, &sb)?;
        Ok(vec![Some(ga), Some(gb)])
    }
}

impl ChannelAffine {
    /// g * scale[c] (the shift has no gradient).
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let n = crate::ops::vjp::prefix(g, node);
        let op = Op::ChannelAffine(ChannelAffine {
            scale: self.scale.clone(),
            shift: vec![0.0],
        });
        Ok(vec![Some(g.push(n, op, vec![grad])?)])
    }
}
