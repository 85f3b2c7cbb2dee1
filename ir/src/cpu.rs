//! The CPU reference interpreter: evaluates a whole graph with each op's reference meaning.
//! It is the oracle of the tests, never the product's execution path.

use crate::{Graph, Op, Tensor};
use num_traits::Float;
use std::collections::HashMap;

/// Evaluate every node. `feeds` holds the inputs (by input name) and the parameters (by node
/// name); returns one tensor per node. Missing feeds are an error naming the value.
pub fn evaluate<T: Float>(
    graph: &Graph,
    feeds: &HashMap<String, Tensor<T>>,
) -> Result<Vec<Tensor<T>>, String> {
    let mut values: Vec<Tensor<T>> = Vec::with_capacity(graph.nodes.len());
    for node in &graph.nodes {
        let v = match &node.op {
            Op::Input { name } => feeds
                .get(name)
                .cloned()
                .ok_or_else(|| format!("no value for input `{name}`"))?,
            Op::Param { .. } => feeds
                .get(&node.name)
                .cloned()
                .ok_or_else(|| format!("no value for parameter `{}`", node.name))?,
            op => {
                let ins: Vec<&Tensor<T>> = node.inputs.iter().map(|&i| &values[i]).collect();
                op.cpu(&ins, &node.shape)
            }
        };
        if v.shape != node.shape {
            return Err(format!(
                "`{}` has shape {:?}, expected {:?}",
                node.name, v.shape, node.shape
            ));
        }
        values.push(v);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Binary, Const, Conv2d, Init, Reduce, ReduceKind, Unary};
    use crate::Node;

    /// mean(relu(conv(x, w, b) - 15)) on a 3x3 image, every step computed by hand.
    fn tiny_graph() -> Graph {
        let mut g = Graph {
            name: "tiny".into(),
            ..Graph::default()
        };
        // Sources take their shapes from the front end, so they are added as nodes directly.
        let source = |name: &str, op: Op, shape: &[usize]| Node {
            name: name.into(),
            op,
            inputs: vec![],
            shape: shape.to_vec(),
        };
        g.nodes.push(source(
            "x",
            Op::Input {
                name: "image".into(),
            },
            &[1, 1, 3, 3],
        ));
        g.nodes.push(source(
            "conv.weight",
            Op::Param {
                init: Init::Normal { std: 0.02 },
            },
            &[1, 1, 2, 2],
        ));
        g.nodes
            .push(source("conv.bias", Op::Param { init: Init::Zeros }, &[1]));
        let conv = g
            .push(
                "conv",
                Op::Conv2d(Conv2d {
                    stride: 1,
                    pad: 0,
                    bias: true,
                    groups: 1,
                }),
                vec![0, 1, 2],
            )
            .unwrap();
        let c = g
            .push(
                "fifteen",
                Op::Const(Const {
                    shape: vec![1],
                    values: vec![15.0],
                }),
                vec![],
            )
            .unwrap();
        let d = g
            .push("shift", Op::Binary(Binary::Sub), vec![conv, c])
            .unwrap();
        let r = g.push("act", Op::Unary(Unary::Relu), vec![d]).unwrap();
        let m = g
            .push(
                "loss",
                Op::Reduce(Reduce {
                    kind: ReduceKind::Mean,
                    axes: vec![],
                }),
                vec![r],
            )
            .unwrap();
        g.outputs.push(("loss".into(), m));
        g
    }

    #[test]
    fn evaluates_a_tiny_graph_end_to_end() {
        let g = tiny_graph();
        assert_eq!(g.nodes[g.find("loss").unwrap()].shape, vec![1, 1, 1, 1]);
        let feeds: HashMap<String, Tensor<f64>> = [
            (
                "image".to_string(),
                Tensor::new(&[1, 1, 3, 3], (1..=9).map(f64::from).collect()),
            ),
            (
                "conv.weight".to_string(),
                Tensor::new(&[1, 1, 2, 2], vec![1.0, 0.0, 0.0, 2.0]),
            ),
            ("conv.bias".to_string(), Tensor::new(&[1], vec![0.5])),
        ]
        .into_iter()
        .collect();
        let v = evaluate(&g, &feeds).unwrap();
        // conv: x[i][j] + 2 x[i+1][j+1] + 0.5
        assert_eq!(v[3].data, vec![11.5, 14.5, 20.5, 23.5]);
        assert_eq!(v[6].data, vec![0.0, 0.0, 5.5, 8.5]);
        assert_eq!(v[7].data, vec![3.5]);
    }

    #[test]
    fn missing_feeds_are_named() {
        let g = tiny_graph();
        let mut feeds: HashMap<String, Tensor<f32>> = HashMap::new();
        assert_eq!(
            evaluate(&g, &feeds).unwrap_err(),
            "no value for input `image`"
        );
        feeds.insert("image".into(), Tensor::zeros(&[1, 1, 3, 3]));
        assert_eq!(
            evaluate(&g, &feeds).unwrap_err(),
            "no value for parameter `conv.weight`"
        );
    }
}
