//! Terms weighted by zero, folded away before differentiation. A loss written as
//! `adversarial + per_weight * perceptual + ...` with `--set per_weight=0` would otherwise still
//! run VGG19 forward and backward every step only to multiply its result by 0. Folding runs
//! before autodiff, so the gradient graph never sees the dropped term at all.
//!
//! Only `Affine { scale: 0 }` is folded (it is how model files weight their terms). IEEE says
//! 0 * inf = NaN, so folding it means a non-finite dropped term does not poison the loss: that is what a user
//! who set its weight to 0 asks for.

use crate::simplify::simplify;
use ir::ops::{Const, Unary};
use ir::{Graph, Op};

/// `graph` with every zero-scaled affine replaced by its constant shift, and what no output
/// needs any more removed. Returns how many terms were folded.
pub fn zero_weighted_terms(graph: &Graph) -> (Graph, usize) {
    let mut g = graph.clone();
    let mut folded = 0;
    for node in g.nodes.iter_mut() {
        if let Op::Unary(Unary::Affine { scale, shift }) = node.op {
            if scale == 0.0 {
                let n = ir::numel(&node.shape);
                node.op = Op::Const(Const {
                    shape: node.shape.clone(),
                    values: vec![shift; n],
                });
                node.inputs.clear();
                folded += 1;
            }
        }
    }
    if folded == 0 {
        return (graph.clone(), 0);
    }
    (simplify(&g), folded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ir::ops::Binary;
    use ir::Node;
    use std::collections::HashMap;

    fn input(g: &mut Graph, name: &str) -> usize {
        g.nodes.push(Node {
            name: name.into(),
            op: Op::Input { name: name.into() },
            inputs: vec![],
            shape: vec![1],
        });
        g.nodes.len() - 1
    }

    /// loss = a + 0 * (b * b): the b branch goes, the loss keeps a's value.
    #[test]
    fn a_zero_weighted_term_and_its_inputs_disappear() {
        let mut g = Graph::default();
        let (a, b) = (input(&mut g, "a"), input(&mut g, "b"));
        let sq = g.push("sq", Op::Binary(Binary::Mul), vec![b, b]).unwrap();
        let w = Op::Unary(Unary::Affine {
            scale: 0.0,
            shift: 0.5,
        });
        let wsq = g.push("w", w, vec![sq]).unwrap();
        let loss = g
            .push("loss", Op::Binary(Binary::Add), vec![a, wsq])
            .unwrap();
        g.outputs.push(("loss".into(), loss));
        let (f, n) = zero_weighted_terms(&g);
        assert_eq!(n, 1);
        let names: Vec<&str> = f.nodes.iter().map(|n| n.name.as_str()).collect();
        // Inputs stay (they are fed by name); the product is gone; the weight is a constant.
        assert_eq!(names, ["a", "b", "w", "loss"]);
        assert!(matches!(&f.nodes[2].op, Op::Const(c) if c.values == [0.5]));
        let feeds: HashMap<String, ir::Tensor<f64>> = [
            ("a".to_string(), ir::Tensor::new(&[1], vec![2.0])),
            ("b".to_string(), ir::Tensor::new(&[1], vec![3.0])),
        ]
        .into();
        let values = ir::cpu::evaluate(&f, &feeds).unwrap();
        assert_eq!(values[f.outputs[0].1].data, [2.5]);
    }

    #[test]
    fn nothing_to_fold_leaves_the_graph_alone() {
        let mut g = Graph::default();
        let a = input(&mut g, "a");
        let w = Op::Unary(Unary::Affine {
            scale: 2.0,
            shift: 0.0,
        });
        let y = g.push("y", w, vec![a]).unwrap();
        g.outputs.push(("y".into(), y));
        assert_eq!(zero_weighted_terms(&g), (g.clone(), 0));
    }
}
