//! The irdc graph as it is built from the ONNX nodes: what each ONNX tensor name stands for,
//! identifiers for the nodes, the nodes as model-language text, and the parameters' tensors.

use anyhow::{bail, Context, Result};
use ir::Tensor;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// What an ONNX tensor name stands for.
#[derive(Clone)]
pub enum Value {
    /// A value of the irdc graph: the identifier that names it, and its rank.
    Tensor { id: String, rank: usize },
    /// A tensor known when importing: an initialiser or the value of a `Constant`.
    Known(Rc<Known>),
    /// The output of a node that is not imported (refused, or fed by a refused one).
    Missing,
}

pub struct Known {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
    /// An initialiser, which the graph learns (a `Param`), or a `Constant` (a `Const`).
    pub learnt: bool,
}

/// A field of a node, written as model-language text (`in: x`, `kernel: 3`).
pub type Field = (&'static str, String);

#[derive(Default)]
pub struct Builder {
    values: HashMap<String, Value>,
    taken: HashSet<String>,
    /// Identifier and text of each node, in the order the ONNX graph lists them.
    pub nodes: Vec<(String, String)>,
    /// The parameters' values, under the names irdc gives them.
    pub tensors: Vec<(String, Tensor<f32>)>,
    /// The node that holds a known tensor used as an operand, by its ONNX name.
    placed: HashMap<String, (String, usize)>,
    /// The graph's inputs and their shapes, which the shapes of its values follow from.
    pub inputs: Vec<(String, Vec<usize>)>,
    /// The version of the default domain, which some ops' meaning depends on.
    pub opset: i64,
}

impl Builder {
    /// An unused identifier made from `wanted` (ONNX names hold `/`, `.`, `:`); `fallback`
    /// where nothing of it is left.
    pub fn ident(&mut self, wanted: &str, fallback: &str) -> String {
        let base = match identifier(wanted) {
            s if s.is_empty() => identifier(fallback),
            s => s,
        };
        let mut id = base.clone();
        let mut n = 1;
        while self.taken.contains(&id) || id == "true" || id == "false" {
            n += 1;
            id = format!("{base}_{n}");
        }
        self.taken.insert(id.clone());
        id
    }

    pub fn define(&mut self, onnx_name: &str, v: Value) {
        self.values.insert(onnx_name.to_string(), v);
    }

    pub fn get(&self, onnx_name: &str) -> Result<&Value> {
        match self.values.get(onnx_name) {
            Some(v) => Ok(v),
            None => bail!("reads tensor `{onnx_name}`, which no node, input or initialiser makes"),
        }
    }

    /// The known tensor `onnx_name` stands for, if it is one.
    pub fn known(&self, onnx_name: &str) -> Result<Option<Rc<Known>>> {
        Ok(match self.get(onnx_name)? {
            Value::Known(k) => Some(k.clone()),
            _ => None,
        })
    }

    /// The identifier and rank of `onnx_name` as an operand of a node: a known tensor is put into
    /// the graph as a constant (once, however many nodes read it).
    pub fn operand(&mut self, onnx_name: &str) -> Result<(String, usize)> {
        match self.get(onnx_name)?.clone() {
            Value::Tensor { id, rank } => Ok((id, rank)),
            Value::Known(k) => Ok(self.place(&k)),
            Value::Missing => bail!("reads `{onnx_name}`, which is not imported"),
        }
    }

    fn place(&mut self, k: &Known) -> (String, usize) {
        if let Some(p) = self.placed.get(&k.name) {
            return p.clone();
        }
        let id = self.ident(&k.name, "constant");
        // The language's tensors have rank 1 to 4; a scalar is a tensor of one element.
        let shape = match k.shape.is_empty() {
            true => vec![1],
            false => k.shape.clone(),
        };
        self.tensor_node(&id, &shape, k);
        self.placed
            .insert(k.name.clone(), (id.clone(), shape.len()));
        (id, shape.len())
    }

    /// A per-channel tensor (ONNX's [C]) as a [1, C, 1, 1] node, which broadcasts over NCHW.
    pub fn channel_tensor(&mut self, wanted: &str, k: &Known) -> (String, usize) {
        let id = self.ident(wanted, "channels");
        self.tensor_node(&id, &[1, k.values.len(), 1, 1], k);
        (id, 4)
    }

    /// A tensor the ONNX model holds as node `id` of shape `shape`: an initialiser as a `Param`
    /// named `id` in the parameters file, a `Constant` as a `Const` with its values written out.
    fn tensor_node(&mut self, id: &str, shape: &[usize], k: &Known) {
        match k.learnt {
            true => {
                self.push(id, "Param", &[("shape", list(shape))]);
                let data = k.values.iter().map(|&v| v as f32).collect();
                self.tensors
                    .push((id.to_string(), Tensor::new(shape, data)));
            }
            false => {
                let fields = [("shape", list(shape)), ("values", nums(&k.values))];
                self.push(id, "Const", &fields);
            }
        }
    }

    /// A known tensor as a new node of `shape` (its elements in the same order), where an op
    /// reads it at another rank than ONNX gives it.
    pub fn known_as(&mut self, k: &Known, shape: &[usize]) -> String {
        let id = self.ident(&k.name, "constant");
        self.tensor_node(&id, shape, k);
        id
    }

    /// The shape of value `id`, as irdc builds the nodes so far: the ONNX file declares few
    /// shapes, and the ops' own shape rules are the one account of them.
    pub fn shape(&self, id: &str) -> Result<Vec<usize>> {
        let outputs = [("value".to_string(), id.to_string())];
        let text = model_text(&self.inputs, &self.nodes, &outputs);
        let bug = "the imported model does not build; please report it with the ONNX file";
        let model = ir::front::parse(&text, "(imported so far)", &[]).context(bug)?;
        let graph = model.build(super::GRAPH, &[]).context(bug)?;
        Ok(graph.nodes[graph.outputs[0].1].shape.clone())
    }

    /// Append node `id`, op `op` with `fields`.
    pub fn push(&mut self, id: &str, op: &str, fields: &[Field]) {
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        self.nodes
            .push((id.to_string(), format!("{op}({})", fields.join(", "))));
    }

    /// A parameter's value, stored under `name` (`c1.weight`).
    pub fn param(&mut self, name: String, k: &Known) {
        let data = k.values.iter().map(|&v| v as f32).collect();
        self.tensors.push((name, Tensor::new(&k.shape, data)));
    }
}

/// The model-language text of a model whose one graph has these inputs, nodes and outputs.
pub fn model_text(
    inputs: &[(String, Vec<usize>)],
    nodes: &[(String, String)],
    outputs: &[(String, String)],
) -> String {
    let mut s = format!(
        "Model(\n    graphs: {{\n        {}: Graph(\n            inputs: {{\n",
        super::GRAPH
    );
    for (id, shape) in inputs {
        s += &format!("                {id}: {},\n", list(shape));
    }
    s += "            },\n            nodes: {\n";
    for (id, text) in nodes {
        s += &format!("                {id}: {text},\n");
    }
    s += "            },\n            outputs: {\n";
    for (key, id) in outputs {
        s += &format!("                {key}: {id},\n");
    }
    s += "            },\n        ),\n    },\n)\n";
    s
}

/// ASCII letters, digits and `_`, runs of anything else made one `_`, trimmed; `n` before a
/// leading digit.
pub fn identifier(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        match c.is_ascii_alphanumeric() {
            true => s.push(c),
            false if !s.is_empty() && !s.ends_with('_') => s.push('_'),
            false => {}
        }
    }
    let s = s.trim_end_matches('_').to_string();
    match s.starts_with(|c: char| c.is_ascii_digit()) {
        true => format!("n{s}"),
        false => s,
    }
}

/// A number as the model language reads it: the shortest text that gives the same f32.
pub fn num(v: f64) -> String {
    let f = v as f32;
    match f.abs() {
        a if a != 0.0 && !(1e-4..1e9).contains(&a) => format!("{f:e}"),
        _ => format!("{f}"),
    }
}

pub fn nums(vs: &[f64]) -> String {
    let items: Vec<String> = vs.iter().map(|&v| num(v)).collect();
    format!("[{}]", items.join(", "))
}

pub fn list(vs: &[usize]) -> String {
    let items: Vec<String> = vs.iter().map(|v| v.to_string()).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnx_names_become_identifiers_each_once() {
        assert_eq!(identifier("/enc/conv1/Conv"), "enc_conv1_Conv");
        assert_eq!(identifier("input.1"), "input_1");
        assert_eq!(identifier("0.weight"), "n0_weight");
        assert_eq!(identifier("::"), "");
        let mut b = Builder::default();
        assert_eq!(b.ident("a.b", "x"), "a_b");
        assert_eq!(b.ident("a/b", "x"), "a_b_2");
        assert_eq!(b.ident("", "out:0"), "out_0");
        assert_eq!(b.ident("true", "x"), "true_2");
    }

    #[test]
    fn numbers_are_written_as_the_f32_they_are() {
        for v in [
            0.0,
            1.0,
            -0.3,
            1e-5,
            0.2,
            f32::MAX as f64,
            f32::MIN as f64,
            123456.78,
        ] {
            let text = num(v);
            assert_eq!(text.parse::<f64>().unwrap() as f32, v as f32, "{text}");
        }
        assert_eq!(num(f32::MAX as f64), "3.4028235e38");
        assert_eq!(num(2.0), "2");
    }
}
