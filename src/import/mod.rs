//! ONNX in: an ONNX model as a model-language file with one graph, `model`, and its
//! initialisers as the parameters of that graph (`irdc import`, docs/onnx.md).
//!
//! The protobuf types come from `onnx-protobuf`: ONNX's own `onnx.proto` compiled ahead of time
//! by rust-protobuf, the maintained pure-Rust protobuf crate (`protobuf`), so building needs no
//! `protoc` and the types follow the official schema field for field.

mod graph;
mod layers;
mod layout;
mod linear;
mod ops;
mod proto;

use anyhow::{bail, Context, Result};
use graph::{identifier, Builder, Known, Value};
use ir::Tensor;
use onnx_protobuf::{GraphProto, ModelProto};
use ops::Refusal;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

/// The graph every imported model has.
pub const GRAPH: &str = "model";

pub struct Imported {
    /// The model file's text.
    pub ron: String,
    /// The parameters, named as the graph names them.
    pub tensors: Vec<(String, Tensor<f32>)>,
    /// How many nodes the graph has.
    pub nodes: usize,
}

/// Import the ONNX model at `path`; `shapes` fixes the shapes of inputs (by their ONNX or irdc
/// names), which a model whose sizes are not fixed needs. `header` heads the model file.
pub fn import(path: &Path, shapes: &[(String, Vec<usize>)], header: &str) -> Result<Imported> {
    let file = path.display().to_string();
    let model = proto::read_model(path)?;
    let g = &model.graph;
    let mut b = Builder::default();
    for t in &g.initializer {
        let (shape, values) =
            proto::tensor_values(t).with_context(|| format!("{file}: initialiser `{}`", t.name))?;
        let name = t.name.clone();
        b.define(
            &t.name,
            Value::Known(Rc::new(Known {
                name,
                shape,
                values,
                learnt: true,
            })),
        );
    }
    let inputs = inputs(&mut b, g, shapes).with_context(|| file.clone())?;
    b.inputs = inputs.clone();
    b.opset = proto::default_opset(&model).unwrap_or(0);
    nodes(&mut b, g, &file)?;
    let outputs = outputs(&mut b, g).with_context(|| file.clone())?;
    let ron = ron_text(&model, header, &inputs, &b, &outputs);
    // Shapes the model declares for its outputs hold only at the shapes it declares its inputs.
    let declared: Vec<(String, Vec<usize>)> = match shapes.is_empty() {
        true => (outputs.iter().zip(&g.output))
            .filter_map(|((key, _), v)| Some((key.clone(), proto::fixed_shape(v)?)))
            .collect(),
        false => Vec::new(),
    };
    check(&ron, &b.tensors, &declared, &file)?;
    Ok(Imported {
        ron,
        nodes: b.nodes.len(),
        tensors: b.tensors,
    })
}

/// The graph's inputs (those that are not initialisers) with their shapes: as declared, or
/// as `shapes` gives them.
fn inputs(
    b: &mut Builder,
    g: &GraphProto,
    shapes: &[(String, Vec<usize>)],
) -> Result<Vec<(String, Vec<usize>)>> {
    let mut out = Vec::new();
    for v in &g.input {
        if g.initializer.iter().any(|t| t.name == v.name) {
            continue;
        }
        let id = b.ident(&v.name, "input");
        let given = shapes.iter().find(|(n, _)| *n == v.name || *n == id);
        let dims = proto::input_dims(v)?;
        let shape = match given {
            Some((_, s)) => s.clone(),
            None => fixed(&v.name, &id, &dims)?,
        };
        if !(1..=4).contains(&shape.len()) {
            bail!(
                "input `{}` has rank {}; irdc's tensors have rank 1 to 4",
                v.name,
                shape.len()
            );
        }
        let rank = shape.len();
        b.define(
            &v.name,
            Value::Tensor {
                id: id.clone(),
                rank,
            },
        );
        out.push((id, shape));
    }
    for (name, _) in shapes {
        if !out.iter().any(|(id, _)| id == name) && !g.input.iter().any(|v| v.name == *name) {
            let ids: Vec<&str> = out.iter().map(|(id, _)| id.as_str()).collect();
            bail!(
                "--input {name}: the model has no input `{name}`; its inputs: {}",
                ids.join(", ")
            );
        }
    }
    Ok(out)
}

/// An input's declared shape, if every size is fixed.
fn fixed(name: &str, id: &str, dims: &[Result<usize, String>]) -> Result<Vec<usize>> {
    if let Ok(shape) = dims.iter().cloned().collect::<Result<Vec<usize>, _>>() {
        if !shape.is_empty() {
            return Ok(shape);
        }
    }
    let shown: Vec<String> = (dims.iter())
        .map(|d| match d {
            Ok(n) => n.to_string(),
            Err(s) => s.clone(),
        })
        .collect();
    let example: Vec<String> = (dims.iter())
        .map(|d| d.as_ref().map_or("1".to_string(), |n| n.to_string()))
        .collect();
    let example = match example.is_empty() {
        true => "1x3x256x256".to_string(),
        false => example.join("x"),
    };
    bail!(
        "input `{name}` has shape [{}], whose sizes are not all fixed; give its shape with \
         --input {id}={example}",
        shown.join(", ")
    )
}

/// Convert every node, collecting the refusals so that one error lists them all.
fn nodes(b: &mut Builder, g: &GraphProto, file: &str) -> Result<()> {
    let mut lacking: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in &g.node {
        let label = match node.name.is_empty() {
            true => format!("output {}", node.output.first().map_or("?", |s| s.as_str())),
            false => node.name.clone(),
        };
        let fed =
            (node.input.iter()).all(|i| i.is_empty() || !matches!(b.get(i), Ok(Value::Missing)));
        // A node fed by a refused one is not converted, but its op is still looked at.
        let result = match (fed, ops::lacked(node)) {
            (true, _) => ops::convert(b, node),
            (false, Some(detail)) => Err(Refusal::Lacks(detail)),
            (false, None) => Ok(()),
        };
        match result {
            Ok(()) if fed => continue,
            Ok(()) => {}
            Err(Refusal::Lacks(detail)) => {
                let what = format!("{} {detail}", node.op_type).trim_end().to_string();
                lacking.entry(what).or_default().push(label);
            }
            Err(Refusal::Bad(e)) => {
                return Err(e.context(format!("{file}: {} node `{label}`", node.op_type)))
            }
        }
        for o in &node.output {
            b.define(o, Value::Missing);
        }
    }
    match lacking.is_empty() {
        true => Ok(()),
        false => Err(refusal(file, &lacking)),
    }
}

/// One error for every node refused: each op, or use of an op, with the nodes that have it.
fn refusal(file: &str, lacking: &BTreeMap<String, Vec<String>>) -> anyhow::Error {
    let count: usize = lacking.values().map(Vec::len).sum();
    let list: Vec<String> = (lacking.iter())
        .map(|(what, nodes)| format!("{what} ({})", nodes.join(", ")))
        .collect();
    anyhow::anyhow!(
        "{file}: {count} node{} irdc cannot import: {}; irdc imports {} (docs/onnx.md): replace \
         the others in the model before exporting it",
        if count == 1 { "" } else { "s" },
        list.join("; "),
        ops::IMPORTED.join(", ")
    )
}

/// The graph's outputs: their irdc names (identifiers, each once) and the values they name.
fn outputs(b: &mut Builder, g: &GraphProto) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for v in &g.output {
        let mut key = match identifier(&v.name) {
            k if k.is_empty() => "output".to_string(),
            k => k,
        };
        while out.iter().any(|(k, _)| *k == key) {
            key.push('_');
        }
        let (id, _) = b
            .operand(&v.name)
            .with_context(|| format!("output `{}`", v.name))?;
        out.push((key, id));
    }
    Ok(out)
}

fn ron_text(
    model: &ModelProto,
    header: &str,
    inputs: &[(String, Vec<usize>)],
    b: &Builder,
    outputs: &[(String, String)],
) -> String {
    let mut s = String::new();
    for line in header.lines() {
        s += &format!("// {line}\n");
    }
    let producer = format!("{} {}", model.producer_name, model.producer_version);
    let producer = match producer.trim() {
        "" => String::new(),
        p => format!(" made by {p}"),
    };
    let opset = proto::default_opset(model).unwrap_or(0);
    s += &format!("// ONNX opset {opset}{producer}.\n");
    s += &graph::model_text(inputs, &b.nodes, outputs);
    s
}

/// Build the written model as `irdc` will, and hold its parameters against the tensors and its
/// outputs against the shapes `declared`: an import that irdc cannot run, or that computes
/// something else, is reported here, not when it is first used.
fn check(
    ron: &str,
    tensors: &[(String, Tensor<f32>)],
    declared: &[(String, Vec<usize>)],
    file: &str,
) -> Result<()> {
    let bug = "the imported model does not build; please report it with the ONNX file";
    let model = ir::front::parse(ron, &format!("{file} (imported)"), &[]).context(bug)?;
    let graph = model.build(GRAPH, &[]).context(bug)?;
    for (key, want) in declared {
        let Some((_, id)) = graph.outputs.iter().find(|(k, _)| k == key) else {
            continue;
        };
        let got = &graph.nodes[*id].shape;
        if got != want {
            bail!("{file}: output `{key}` has shape {want:?} in the ONNX model, but {got:?} as imported; please report it with the ONNX file");
        }
    }
    for (_, n) in graph.params() {
        match tensors.iter().find(|(name, _)| *name == n.name) {
            Some((_, t)) if t.shape == n.shape => {}
            Some((_, t)) => bail!(
                "{file}: parameter `{}` has shape {:?} in the ONNX model; irdc's node takes {:?}",
                n.name,
                t.shape,
                n.shape
            ),
            None => bail!("{file}: parameter `{}` has no tensor; {bug}", n.name),
        }
    }
    Ok(())
}
