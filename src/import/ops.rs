//! Each ONNX op irdc has, as model-language nodes; the elementwise ops, constants and aliases
//! here, the layers (conv, pooling, norm, padding, reductions) in `layers.rs`, the ops that move
//! elements in `layout.rs`, matrix products and softmax in `linear.rs`.

use super::graph::{num, Builder, Field, Known, Value};
use super::proto::{is_default_domain, tensor_values, Attrs};
use super::{layers, layout, linear};
use onnx_protobuf::NodeProto;
use std::rc::Rc;

/// Why a node is not imported.
pub enum Refusal {
    /// irdc has no equivalent of the op, or of this use of it; the detail says which
    /// (`with group 2`), empty for the op as a whole.
    Lacks(String),
    /// The node is malformed.
    Bad(anyhow::Error),
}

impl From<anyhow::Error> for Refusal {
    fn from(e: anyhow::Error) -> Self {
        Refusal::Bad(e)
    }
}

pub type Step = Result<(), Refusal>;

pub fn lacks<T>(detail: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::Lacks(detail.into()))
}

/// The ONNX ops the importer maps, for the error that lists what it imports.
pub const IMPORTED: &[&str] = &[
    "Abs",
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Clip",
    "Concat",
    "Constant",
    "Conv",
    "ConvTranspose",
    "DepthToSpace",
    "Div",
    "Dropout",
    "Erf",
    "Exp",
    "Flatten",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "InstanceNormalization",
    "LeakyRelu",
    "Log",
    "MatMul",
    "Max",
    "MaxPool",
    "Min",
    "Mul",
    "Neg",
    "Pad",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Resize",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "SpaceToDepth",
    "Sqrt",
    "Sub",
    "Tanh",
];

/// One ONNX node and its attributes.
pub struct Node<'a> {
    pub p: &'a NodeProto,
    pub a: Attrs<'a>,
}

impl Node<'_> {
    /// Refuse an attribute the conversion does not read, rather than ignore what it means.
    pub fn only(&self, known: &[&str]) -> Step {
        match self.a.names().find(|n| !known.contains(n)) {
            Some(n) => lacks(format!("with attribute `{n}`")),
            None => Ok(()),
        }
    }

    /// The name of input `i`, if it is given (ONNX leaves out an optional input with `""`).
    pub fn input(&self, i: usize) -> Option<&str> {
        self.p
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn first(&self) -> Result<&str, Refusal> {
        Ok(self
            .input(0)
            .ok_or_else(|| anyhow::anyhow!("has no input"))?)
    }

    /// The identifier of the node's (first) output: its ONNX name, else its output's.
    pub fn ident(&self, b: &mut Builder) -> String {
        b.ident(&self.p.name, &self.p.output[0])
    }

    /// The identifier of a layer: named after its weight where that is PyTorch's
    /// `<module>.weight`, so its parameters keep the state dict's names (`c1.weight`) or close
    /// to them (`layer1.0.conv1.weight` gives `layer1_0_conv1.weight`), else as [`Node::ident`].
    pub fn ident_after(&self, b: &mut Builder, weight: &str) -> String {
        match weight.strip_suffix(".weight") {
            Some(module) if !module.is_empty() => b.ident(module, &self.p.output[0]),
            _ => self.ident(b),
        }
    }

    /// Define the node's first output as irdc value `id`.
    pub fn defines(&self, b: &mut Builder, id: String, rank: usize) {
        b.define(&self.p.output[0], Value::Tensor { id, rank });
    }

    /// Whether output `i` is read by anything (ONNX leaves out an unused one with `""`).
    pub fn has_output(&self, i: usize) -> bool {
        self.p.output.get(i).is_some_and(|s| !s.is_empty())
    }
}

/// The refusal of a node whose op irdc does not have at all (its detail), if it is one.
pub fn lacked(p: &NodeProto) -> Option<String> {
    if !is_default_domain(&p.domain) {
        return Some(format!("of domain `{}`", p.domain));
    }
    (!IMPORTED.contains(&p.op_type.as_str())).then(String::new)
}

/// Convert one node into `b`'s graph.
pub fn convert(b: &mut Builder, p: &NodeProto) -> Step {
    if let Some(detail) = lacked(p) {
        return lacks(detail);
    }
    if p.output.is_empty() {
        return Err(anyhow::anyhow!("has no output").into());
    }
    let n = Node { p, a: Attrs::of(p) };
    match p.op_type.as_str() {
        op @ ("Relu" | "Tanh" | "Sigmoid" | "Erf" | "Abs" | "Neg" | "Sqrt" | "Exp" | "Log"
        | "Softplus") => {
            n.only(&[])?;
            unary(b, &n, op, &[])
        }
        "LeakyRelu" => {
            n.only(&["alpha"])?;
            let slope = n.a.float("alpha", 0.01)? as f64;
            unary(b, &n, "LeakyRelu", &[("slope", num(slope))])
        }
        "Gelu" => gelu(b, &n),
        op @ ("Add" | "Sub" | "Mul" | "Div" | "Max" | "Min") => binary(b, &n, op),
        "Clip" => clip(b, &n),
        "Concat" => concat(b, &n),
        "Identity" => alias(b, &n),
        "Dropout" => dropout(b, &n),
        "Constant" => constant(b, &n),
        "Conv" => layers::conv(b, &n, false),
        "ConvTranspose" => layers::conv(b, &n, true),
        "MaxPool" => layers::max_pool(b, &n),
        "InstanceNormalization" => layers::instance_norm(b, &n),
        "BatchNormalization" => layers::batch_norm(b, &n),
        "Pad" => layers::pad(b, &n),
        op @ ("ReduceMean" | "ReduceSum") => layers::reduce(b, &n, op == "ReduceMean"),
        "AveragePool" => layers::avg_pool(b, &n),
        "GlobalAveragePool" => layers::global_avg_pool(b, &n),
        "DepthToSpace" => layout::depth_to_space(b, &n),
        "SpaceToDepth" => layout::space_to_depth(b, &n),
        "Resize" => layout::resize(b, &n),
        "Reshape" => layout::reshape(b, &n),
        "Flatten" => layout::flatten(b, &n),
        "MatMul" => linear::matmul(b, &n),
        "Gemm" => linear::gemm(b, &n),
        "Softmax" => linear::softmax(b, &n),
        _ => lacks(""),
    }
}

fn unary(b: &mut Builder, n: &Node, op: &str, extra: &[Field]) -> Step {
    let (x, rank) = b.operand(n.first()?)?;
    let id = n.ident(b);
    let mut fields = vec![("in", x)];
    fields.extend_from_slice(extra);
    b.push(&id, op, &fields);
    n.defines(b, id, rank);
    Ok(())
}

fn gelu(b: &mut Builder, n: &Node) -> Step {
    n.only(&["approximate"])?;
    match n.a.string("approximate", "none")?.as_str() {
        "none" => unary(b, n, "Gelu", &[]),
        "tanh" => unary(b, n, "Gelu", &[("tanh", "true".into())]),
        other => lacks(format!("with approximate `{other}`")),
    }
}

fn binary(b: &mut Builder, n: &Node, op: &str) -> Step {
    n.only(&[])?;
    // Max and Min take any number of inputs; one is the identity.
    if n.p.input.len() == 1 && (op == "Max" || op == "Min") {
        return alias(b, n);
    }
    if n.p.input.len() != 2 {
        return lacks(format!("with {} inputs", n.p.input.len()));
    }
    let (a, ra) = b.operand(&n.p.input[0])?;
    let (c, rc) = b.operand(&n.p.input[1])?;
    let id = n.ident(b);
    b.push(&id, op, &[("a", a), ("b", c)]);
    n.defines(b, id, ra.max(rc));
    Ok(())
}

/// Clip with constant bounds (attributes before opset 11, inputs since); a missing bound is
/// the largest f32.
fn clip(b: &mut Builder, n: &Node) -> Step {
    n.only(&["min", "max"])?;
    let bound = |b: &Builder, i: usize, attr: &str, default: f32| -> Result<f64, Refusal> {
        let Some(name) = n.input(i) else {
            return Ok(n.a.float(attr, default)? as f64);
        };
        match b.known(name)? {
            Some(k) if k.values.len() == 1 => Ok(k.values[0]),
            _ => lacks("with bounds that are not constant scalars"),
        }
    };
    let min = bound(b, 1, "min", f32::MIN)?;
    let max = bound(b, 2, "max", f32::MAX)?;
    let (x, rank) = b.operand(n.first()?)?;
    let id = n.ident(b);
    b.push(
        &id,
        "Clamp",
        &[("in", x), ("min", num(min)), ("max", num(max))],
    );
    n.defines(b, id, rank);
    Ok(())
}

/// Concat along channels, the one axis irdc concatenates.
fn concat(b: &mut Builder, n: &Node) -> Step {
    n.only(&["axis"])?;
    let mut ins = Vec::new();
    let mut rank = 0;
    for name in &n.p.input {
        let (x, r) = b.operand(name)?;
        ins.push(x);
        rank = r;
    }
    let axis = n.a.int("axis", 1)?;
    if rank != 4 || (axis != 1 && axis != -3) {
        return lacks(format!(
            "along axis {axis} of rank {rank} (irdc joins channels of NCHW)"
        ));
    }
    let id = n.ident(b);
    b.push(&id, "Concat", &[("in", format!("[{}]", ins.join(", ")))]);
    n.defines(b, id, rank);
    Ok(())
}

/// Identity, and a one-input Max or Min: the output is the input.
fn alias(b: &mut Builder, n: &Node) -> Step {
    let v = b.get(n.first()?)?.clone();
    b.define(&n.p.output[0], v);
    Ok(())
}

/// Dropout imports as inference runs it: the identity.
fn dropout(b: &mut Builder, n: &Node) -> Step {
    n.only(&["ratio", "seed", "is_test"])?;
    if n.has_output(1) {
        return lacks("with its mask output");
    }
    if let Some(mode) = n.input(2) {
        match b.known(mode)? {
            Some(k) if k.values.iter().all(|&v| v == 0.0) => {}
            _ => return lacks("in training mode"),
        }
    }
    alias(b, n)
}

/// A Constant's value is known when importing: it becomes a `Const` node where an op reads it
/// as a tensor, or a number where an op reads it as an attribute (pads, axes, bounds).
fn constant(b: &mut Builder, n: &Node) -> Step {
    let known = |shape: Vec<usize>, values: Vec<f64>| Known {
        name: match n.p.name.is_empty() {
            true => n.p.output[0].clone(),
            false => n.p.name.clone(),
        },
        shape,
        values,
        learnt: false,
    };
    let k = match n.a.names().next() {
        Some("value") => {
            let t = (n.a.tensor("value")?).ok_or_else(|| anyhow::anyhow!("has no tensor"))?;
            let (shape, values) = tensor_values(t)?;
            known(shape, values)
        }
        Some("value_float") => known(vec![], vec![n.a.float("value_float", 0.0)? as f64]),
        Some("value_int") => known(vec![], vec![n.a.int("value_int", 0)? as f64]),
        Some("value_floats") => {
            let vs = n.a.floats("value_floats")?.unwrap_or_default();
            known(vec![vs.len()], vs.iter().map(|&v| v as f64).collect())
        }
        Some("value_ints") => {
            let vs = n.a.ints("value_ints")?.unwrap_or_default();
            known(vec![vs.len()], vs.iter().map(|&v| v as f64).collect())
        }
        Some(other) => return lacks(format!("with attribute `{other}`")),
        None => return Err(anyhow::anyhow!("has no value").into()),
    };
    b.define(&n.p.output[0], Value::Known(Rc::new(k)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list the refusal names and the ops `convert` maps are one set: every listed op
    /// reaches its conversion (which refuses a node without inputs for what it lacks).
    #[test]
    fn every_op_listed_as_imported_is_converted() {
        for &op in IMPORTED {
            let p = NodeProto {
                op_type: op.into(),
                output: vec!["y".into()],
                ..Default::default()
            };
            let r = convert(&mut Builder::default(), &p);
            assert!(!matches!(r, Err(Refusal::Lacks(d)) if d.is_empty()), "{op}");
        }
        let p = NodeProto {
            op_type: "Transpose".into(),
            output: vec!["y".into()],
            ..Default::default()
        };
        let r = convert(&mut Builder::default(), &p);
        assert!(matches!(r, Err(Refusal::Lacks(d)) if d.is_empty()));
    }
}
