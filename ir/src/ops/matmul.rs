//! Batched matrix product over the last two axes of rank-4 tensors (attention's scores and
//! weighted sums), with either operand transposed and broadcast batch axes.

use super::check;
use super::layout::sum_to;
use super::properties::Properties;
use super::properties::{elements, Flops};
use super::reach::Spatial;
use super::vjp::VjpResult;
use crate::{Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

/// inputs: a [B1, B2, M, K], b [B1, B2, K, N] -> [B1, B2, M, N], each operand's last two axes
/// swapped first where it is transposed; a batch axis of size 1 broadcasts (PyTorch's matmul).
#[derive(Debug, Clone, PartialEq)]
pub struct MatMul {
    pub trans_a: bool,
    pub trans_b: bool,
}

impl MatMul {
    /// A GEMM like a convolution's: its loads are reread along a row or column, and each output
    /// element is written once, so its store can carry an elementwise reader.
    pub const PROPERTIES: Properties = Properties::GEMM;

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "matmul";
        check::arity(OP, inputs, 2, "a, b")?;
        let a_layout = if self.trans_a {
            "[B1, B2, K, M]"
        } else {
            "[B1, B2, M, K]"
        };
        let b_layout = if self.trans_b {
            "[B1, B2, N, K]"
        } else {
            "[B1, B2, K, N]"
        };
        let a = check::rank4(OP, "a", a_layout, inputs[0])?;
        let b = check::rank4(OP, "b", b_layout, inputs[1])?;
        let (m, ka) = rows_cols(a, self.trans_a);
        let (kb, n) = rows_cols(b, self.trans_b);
        if ka != kb {
            return Err(format!(
                "{OP}: expected a's K ({ka}, a {a:?}) to equal b's K, found {kb} (b {b:?})"
            ));
        }
        let mut batch = [0; 2];
        for d in 0..2 {
            batch[d] = match (a[d], b[d]) {
                (x, y) if x == y || y == 1 => x,
                (1, y) => y,
                _ => {
                    return Err(format!(
                        "{OP}: expected batch axes that are equal or 1, found a {a:?} and b {b:?}"
                    ))
                }
            };
        }
        Ok(vec![batch[0], batch[1], m, n])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let (a, b) = (inputs[0], inputs[1]);
        let [b1, b2, m, n] = crate::shape4(out_shape);
        let k = if self.trans_a { a.shape[2] } else { a.shape[3] };
        // Element (i, j) of an operand's matrix in batch (p, q), transposed or not; a batch axis
        // of size 1 is read at 0.
        let at = |t: &Tensor<T>, trans: bool, p: usize, q: usize, i: usize, j: usize| {
            let (p, q) = (p % t.shape[0], q % t.shape[1]);
            match trans {
                true => t.at4(p, q, j, i),
                false => t.at4(p, q, i, j),
            }
        };
        let mut data = Vec::with_capacity(crate::numel(out_shape));
        for p in 0..b1 {
            for q in 0..b2 {
                for i in 0..m {
                    for j in 0..n {
                        let mut s = T::zero();
                        for l in 0..k {
                            s = s + at(a, self.trans_a, p, q, i, l)
                                * at(b, self.trans_b, p, q, l, j);
                        }
                        data.push(s);
                    }
                }
            }
        }
        Tensor::new(out_shape, data)
    }

    /// With A' and B' the matrices as multiplied, dA' = G B'^T and dB' = A'^T G; a transposed
    /// operand takes the transpose of its gradient, which is again one MatMul. Batch axes that
    /// broadcast sum back to 1.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let (a, b) = (g.nodes[node].inputs[0], g.nodes[node].inputs[1]);
        let name = super::vjp::prefix(g, node);
        let (ta, tb) = (self.trans_a, self.trans_b);
        // (operands, their transposes) of each gradient's product.
        let (operands, trans) = match ta {
            false => ((grad, b), (false, !tb)),
            true => ((b, grad), (tb, true)),
        };
        let ga = product(g, &format!("{name}.a"), operands, trans)?;
        let (operands, trans) = match tb {
            false => ((a, grad), (!ta, false)),
            true => ((grad, a), (true, ta)),
        };
        let gb = product(g, &format!("{name}.b"), operands, trans)?;
        let (sa, sb) = (g.nodes[a].shape.clone(), g.nodes[b].shape.clone());
        let ga = sum_to(g, &format!("{name}.a"), ga, &sa)?;
        let gb = sum_to(g, &format!("{name}.b"), gb, &sb)?;
        Ok(vec![Some(ga), Some(gb)])
    }
}

/// (rows, columns) of an operand's matrices as the product reads them.
fn rows_cols(s: [usize; 4], transposed: bool) -> (usize, usize) {
    match transposed {
        true => (s[3], s[2]),
        false => (s[2], s[3]),
    }
}

/// Push the product of `x` and `y`, transposed as `trans` says.
fn product(
    g: &mut Graph,
    name: &str,
    (x, y): (NodeId, NodeId),
    (trans_a, trans_b): (bool, bool),
) -> Result<NodeId, String> {
    let op = Op::MatMul(MatMul { trans_a, trans_b });
    g.push(name, op, vec![x, y])
}

impl Flops for MatMul {
    /// A multiply-add per (output element, k).
    fn flops(&self, inputs: &[&[usize]], out: &[usize]) -> u64 {
        let a = inputs.first().copied().unwrap_or_default();
        let k = match (self.trans_a, a) {
            (true, [_, _, k, _]) | (false, [_, _, _, k]) => *k as u64,
            _ => 0,
        };
        2 * elements(out) * k
    }
}

impl Spatial for MatMul {}

#[cfg(test)]
mod tests {
    use super::*;

    fn mm(trans_a: bool, trans_b: bool) -> MatMul {
        MatMul { trans_a, trans_b }
    }

    #[test]
    fn shapes() {
        let s = |o: MatMul, a: &[usize], b: &[usize]| o.shape(&[a, b]);
        assert_eq!(
            s(mm(false, false), &[2, 3, 4, 5], &[2, 3, 5, 6]),
            Ok(vec![2, 3, 4, 6])
        );
        assert_eq!(
            s(mm(true, true), &[1, 3, 5, 4], &[2, 1, 6, 5]),
            Ok(vec![2, 3, 4, 6])
        );
        assert_eq!(
            s(mm(false, true), &[1, 2, 4, 5], &[1, 2, 4, 5]),
            Ok(vec![1, 2, 4, 4])
        );
        assert_eq!(
            s(mm(false, false), &[1, 2, 4, 5], &[1, 2, 4, 5]).unwrap_err(),
            "matmul: expected a's K (5, a [1, 2, 4, 5]) to equal b's K, found 4 (b [1, 2, 4, 5])"
        );
        assert_eq!(
            s(mm(false, false), &[2, 2, 4, 5], &[3, 2, 5, 4]).unwrap_err(),
            "matmul: expected batch axes that are equal or 1, found a [2, 2, 4, 5] and b [3, 2, 5, 4]"
        );
        assert_eq!(
            s(mm(true, false), &[2, 4, 5], &[2, 1, 4, 5]).unwrap_err(),
            "matmul: expected a of rank 4 [B1, B2, K, M], found [2, 4, 5]"
        );
        assert_eq!(
            s(mm(false, true), &[2, 1, 4, 5], &[5, 4]).unwrap_err(),
            "matmul: expected b of rank 4 [B1, B2, N, K], found [5, 4]"
        );
        assert_eq!(
            mm(false, false).shape(&[&[1, 1, 2, 2]]).unwrap_err(),
            "matmul: expected 2 inputs (a, b), found 1"
        );
    }

    #[test]
    fn products_by_hand() {
        // a = [[1, 2], [3, 4]], b = [[5, 6], [7, 8]]
        let a = Tensor::new(&[1, 1, 2, 2], vec![1.0f64, 2.0, 3.0, 4.0]);
        let b = Tensor::new(&[1, 1, 2, 2], vec![5.0f64, 6.0, 7.0, 8.0]);
        let run = |o: MatMul, a: &Tensor<f64>, b: &Tensor<f64>| {
            o.cpu(&[a, b], &o.shape(&[&a.shape, &b.shape]).unwrap())
                .data
        };
        assert_eq!(run(mm(false, false), &a, &b), vec![19.0, 22.0, 43.0, 50.0]);
        // a^T b = [[1, 3], [2, 4]] b
        assert_eq!(run(mm(true, false), &a, &b), vec![26.0, 30.0, 38.0, 44.0]);
        // a b^T = a [[5, 7], [6, 8]]
        assert_eq!(run(mm(false, true), &a, &b), vec![17.0, 23.0, 39.0, 53.0]);
        assert_eq!(run(mm(true, true), &a, &b), vec![23.0, 31.0, 34.0, 46.0]);
        // A batch of two a's against the one b, [2, 1] x [1, 2] rows and columns.
        let a2 = Tensor::new(&[2, 1, 2, 1], vec![1.0f64, 2.0, -1.0, 0.5]);
        let b2 = Tensor::new(&[1, 1, 1, 2], vec![3.0f64, 4.0]);
        assert_eq!(
            run(mm(false, false), &a2, &b2),
            vec![3.0, 4.0, 6.0, 8.0, -3.0, -4.0, 1.5, 2.0]
        );
    }

    #[test]
    fn flops() {
        let o = mm(true, false);
        assert_eq!(o.flops(&[&[2, 1, 5, 3], &[2, 1, 5, 4]], &[2, 1, 3, 4]), 240);
    }
}
