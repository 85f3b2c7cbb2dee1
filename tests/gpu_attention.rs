//! Attention's ops on the device (lavapipe without a GPU) against the CPU reference in f64:
//! batched matrix products (transposed operands, broadcast batch axes, sizes past one tile) and
//! softmax along every axis, then the two together as attention's core, fused.

mod gpu_support;

use gpu_support::{check, check_on, gpu, random_feeds, std_dev, G};
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

/// Softmax along each axis, with its maximum and sum in one subgroup (`subgroupMax`,
/// lavapipe's default) and in a 256-invocation tree.
#[test]
fn softmax() {
    // (shape, axis); a row of 300 is longer than either workgroup.
    let cases: [(&[usize], usize); 5] = [
        (&[2, 3, 5, 7], 3),
        (&[2, 3, 5, 7], 1),
        (&[3, 2, 4, 1], 0),
        (&[3, 300], 1),
        (&[5], 0),
    ];
    for (i, &(shape, axis)) in cases.iter().enumerate() {
        let mut g = G::new(&format!("softmax{i}"));
        let x = g.input("x", shape);
        let y = g.op("y", Op::Softmax(Softmax { axis }), &[x]);
        g.output(y);
        let feeds = random_feeds(&g.0, 70 + i as u64);
        for subgroup_reductions in [true, false] {
            let mut t = gpu().target();
            t.policy.subgroup_reductions = subgroup_reductions;
            let (plan, _) = check_on(&g.0, &t, &feeds);
            let max = plan.kernels[0].wgsl.contains("subgroupMax(v)");
            assert_eq!(max, subgroup_reductions, "{}", g.0.name);
        }
    }
}

/// Inputs scaled to +-200, whose exponentials overflow f32 unless the row's maximum is
/// subtracted first.
#[test]
fn softmax_of_large_values() {
    let mut g = G::new("softmax_large");
    let x = g.input("x", &[2, 9]);
    let scale = Unary::Affine {
        scale: 200.0,
        shift: 0.0,
    };
    let big = g.op("big", Op::Unary(scale), &[x]);
    let y = g.op("y", Op::Softmax(Softmax { axis: 1 }), &[big]);
    g.output(y);
    let (_, out) = check(&g.0, &random_feeds(&g.0, 80));
    assert!(out[0].1.data.iter().all(|v| v.is_finite()));
}

/// softmax(q k^T * s) v over heads: the scale stored through the first product, and the
/// softmax feeding the second.
#[test]
fn attention_core() {
    let mut g = G::new("attention_core");
    let (q, k, v) = (
        g.input("q", &[2, 2, 3, 10]),
        g.input("k", &[2, 2, 3, 10]),
        g.input("v", &[2, 2, 3, 10]),
    );
    let scores = g.op(
        "scores",
        Op::MatMul(MatMul {
            trans_a: false,
            trans_b: true,
        }),
        &[q, k],
    );
    let scale = Unary::Affine {
        scale: 2.0,
        shift: 0.0,
    };
    let scaled = g.op("scaled", Op::Unary(scale), &[scores]);
    let attn = g.op("attn", Op::Softmax(Softmax { axis: 3 }), &[scaled]);
    let mix = Op::MatMul(MatMul {
        trans_a: false,
        trans_b: false,
    });
    let y = g.op("y", mix, &[attn, v]);
    g.output(y);
    let (plan, _) = check(&g.0, &random_feeds(&g.0, 81));
    // The scale has no kernel of its own: the first product stores it.
    assert_eq!(
        plan.kernels.len(),
        3,
        "{:?}",
        plan.kernels.iter().map(|k| &k.name).collect::<Vec<_>>()
    );
}
