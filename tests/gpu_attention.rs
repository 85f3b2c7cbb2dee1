//! Attention's ops on the device (lavapipe without a GPU) against the CPU reference in f64:
//! batched matrix products (transposed operands, broadcast batch axes, sizes past one tile).

mod gpu_support;

use gpu_support::{check, random_feeds, std_dev, G};
use ir::ops::*;
use ir::Op;

fn matmul_graph(a: &[usize], b: &[usize], trans_a: bool, trans_b: bool) -> G {
    let mut g = G::new(&format!("matmul{}{}", u8::from(trans_a), u8::from(trans_b)));
    let (ai, bi) = (g.input("a", a), g.input("b", b));
    let y = g.op("y", Op::MatMul(MatMul { trans_a, trans_b }), &[ai, bi]);
    g.output(y);
    g
}

#[test]
fn matmul() {
    // (a, b, trans_a, trans_b)
    let cases: [(&[usize], &[usize], bool, bool); 6] = [
        (&[1, 1, 4, 5], &[1, 1, 5, 3], false, false),
        (&[2, 3, 7, 9], &[2, 3, 9, 5], false, false),
        (&[2, 1, 5, 6], &[1, 3, 6, 4], false, false),
        (&[1, 2, 6, 5], &[1, 2, 7, 6], true, true),
        (&[2, 2, 9, 3], &[2, 1, 9, 4], true, false),
        // Rows, columns and k past one tile and one k step.
        (&[1, 2, 37, 70], &[1, 2, 45, 70], false, true),
    ];
    for (i, &(a, b, ta, tb)) in cases.iter().enumerate() {
        let g = matmul_graph(a, b, ta, tb);
        let (_, out) = check(&g.0, &random_feeds(&g.0, 60 + i as u64));
        assert!(std_dev(&out[0].1) > 0.1, "{}", g.0.name);
    }
}
