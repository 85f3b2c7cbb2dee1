//! The ONNX ops of attention and of an MLP head: MatMul of rank-4 tensors (a known matrix
//! broadcast against them), Gemm as such a MatMul, and Softmax.

use super::graph::{list, num, Builder, Known, Value};
use super::layers::{axes, known_input};
use super::ops::{lacks, Node, Refusal, Step};

/// The rank of the ONNX value `name` (a known tensor's as ONNX gives it).
fn rank_of(b: &Builder, name: &str) -> Result<usize, Refusal> {
    match b.get(name)? {
        Value::Known(k) => Ok(k.shape.len()),
        Value::Tensor { rank, .. } => Ok(*rank),
        Value::Missing => Err(anyhow::anyhow!("reads `{name}`, which is not imported").into()),
    }
}

/// MatMul whose result has rank 4: NumPy's broadcasting gives a known operand of rank 2 or 3
/// leading sizes of 1, which irdc's batch broadcasting then matches.
pub fn matmul(b: &mut Builder, n: &Node) -> Step {
    n.only(&[])?;
    let [a, c] = [0, 1].map(|i| n.input(i));
    let (Some(a), Some(c)) = (a, c) else {
        return Err(anyhow::anyhow!("has {} inputs", n.p.input.len()).into());
    };
    let ranks = [rank_of(b, a)?, rank_of(b, c)?];
    if ranks.iter().max() != Some(&4) || ranks.iter().any(|&r| r < 2) {
        return lacks(format!(
            "of ranks {} and {} (irdc multiplies rank-4 tensors)",
            ranks[0], ranks[1]
        ));
    }
    let a = operand4(b, a)?;
    let c = operand4(b, c)?;
    let id = n.ident(b);
    b.push(&id, "MatMul", &[("a", a), ("b", c)]);
    n.defines(b, id, 4);
    Ok(())
}

/// An operand as a rank-4 value; a known one of lower rank with leading sizes of 1.
fn operand4(b: &mut Builder, name: &str) -> Result<String, Refusal> {
    match b.known(name)? {
        Some(k) if k.shape.len() < 4 => Ok(b.known_as(&k, &padded(&k.shape))),
        _ => match b.operand(name)? {
            (x, 4) => Ok(x),
            (_, r) => lacks(format!(
                "of a rank-{r} operand computed in the graph (irdc multiplies rank-4 tensors)"
            )),
        },
    }
}

/// `shape` with leading sizes of 1 to rank 4.
fn padded(shape: &[usize]) -> Vec<usize> {
    let mut out = vec![1; 4 - shape.len()];
    out.extend_from_slice(shape);
    out
}

/// Gemm, `alpha * A' B' + beta * C`, as a MatMul of [1, 1, M, K] and [1, 1, K, N] matrices,
/// alpha as an `Affine`, C a known tensor (beta folded into it) added, and a Reshape back to
/// [M, N].
pub fn gemm(b: &mut Builder, n: &Node) -> Step {
    n.only(&["alpha", "beta", "transA", "transB"])?;
    let alpha = n.a.float("alpha", 1.0)? as f64;
    let beta = n.a.float("beta", 1.0)? as f64;
    let bias = match n.input(2) {
        Some(_) => Some(known_input(b, n, 2, "C")?),
        None => None,
    };
    let id = n.ident(b);
    let a = matrix(b, n, 0, &id)?;
    let w = matrix(b, n, 1, &id)?;
    let mut fields = vec![("a", a), ("b", w)];
    for (attr, field) in [("transA", "trans_a"), ("transB", "trans_b")] {
        if n.a.int(attr, 0)? != 0 {
            fields.push((field, "true".to_string()));
        }
    }
    let mut y = b.ident(&format!("{id}_matmul"), "matmul");
    b.push(&y, "MatMul", &fields);
    if alpha != 1.0 {
        let scaled = b.ident(&format!("{id}_alpha"), "alpha");
        let fields = [("in", y), ("scale", num(alpha)), ("shift", "0".into())];
        b.push(&scaled, "Affine", &fields);
        y = scaled;
    }
    if let Some(c) = bias {
        let c = Known {
            name: c.name.clone(),
            shape: padded(&c.shape),
            values: c.values.iter().map(|v| v * beta).collect(),
            learnt: c.learnt,
        };
        let c = b.known_as(&c, &c.shape);
        let sum = b.ident(&format!("{id}_sum"), "sum");
        b.push(&sum, "Add", &[("a", y), ("b", c)]);
        y = sum;
    }
    let shape = b.shape(&y)?;
    b.push(&id, "Reshape", &[("in", y), ("shape", list(&shape[2..]))]);
    n.defines(b, id, 2);
    Ok(())
}

/// Input `i` of a Gemm, a matrix, as [1, 1, rows, columns].
fn matrix(b: &mut Builder, n: &Node, i: usize, id: &str) -> Result<String, Refusal> {
    let name = n
        .input(i)
        .ok_or_else(|| anyhow::anyhow!("has no input {i}"))?;
    if let Some(k) = b.known(name)? {
        if k.shape.len() == 2 {
            return Ok(b.known_as(&k, &padded(&k.shape)));
        }
    }
    let (x, _) = b.operand(name)?;
    let shape = b.shape(&x)?;
    if shape.len() != 2 {
        return Err(anyhow::anyhow!("has an input of shape {shape:?}, not a matrix").into());
    }
    let m = b.ident(&format!("{id}_{}", ["a", "b"][i]), "matrix");
    b.push(
        &m,
        "Reshape",
        &[("in", x), ("shape", list(&padded(&shape)))],
    );
    Ok(m)
}

/// Softmax along one axis; before opset 13 ONNX's row is every axis from `axis` on, the same
/// only when that is the last.
pub fn softmax(b: &mut Builder, n: &Node) -> Step {
    n.only(&["axis"])?;
    let (x, rank) = b.operand(n.first()?)?;
    let rows = b.opset < 13;
    let axis = n.a.int("axis", if rows { 1 } else { -1 })?;
    let axis = axes(&[axis], rank)?[0];
    if rows && axis + 1 != rank {
        return lacks(format!(
            "along axes {axis} to {} of opset {} (irdc's softmax is along one axis)",
            rank - 1,
            b.opset
        ));
    }
    let id = n.ident(b);
    b.push(&id, "Softmax", &[("in", x), ("axis", axis.to_string())]);
    n.defines(b, id, rank);
    Ok(())
}
