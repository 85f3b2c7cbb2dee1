//! Training-mode dropout: the CPU reference's masks (keep rate, scale, determinism in the seed and
//! the salt) and the front end's training build (the seed input, salts from the path within the
//! defining graph, inference builds unchanged).

use ir::front::{self, Differentiator};
use ir::ops::{dropout_salt, Dropout, DROPOUT_SEED};
use ir::{Graph, NodeId, Op, Tensor};

fn run(d: &Dropout, x: &Tensor<f64>, seed: f64) -> Tensor<f64> {
    let s = Tensor::new(&[1], vec![seed]);
    d.cpu(&[x, &s], &x.shape)
}

/// Values in [1, 2): never 0, so a 0 in the output is a dropped element.
fn ramp(n: usize) -> Tensor<f64> {
    Tensor::new(
        &[n],
        (0..n).map(|i| 1.0 + (i % 997) as f64 / 997.0).collect(),
    )
}

#[test]
fn keep_rate_is_1_minus_p_and_kept_elements_are_scaled() {
    let n = 1 << 20;
    let x = ramp(n);
    for (p, salt, seed) in [(0.2, 1, 0.0), (0.5, 2, 77.0), (0.75, 3, 16_777_215.0)] {
        let d = Dropout { p, salt };
        let y = run(&d, &x, seed);
        let kept = y.data.iter().filter(|&&v| v != 0.0).count() as f64;
        let (mean, sigma) = (n as f64 * (1.0 - p), (n as f64 * p * (1.0 - p)).sqrt());
        assert!(
            (kept - mean).abs() < 5.0 * sigma,
            "p = {p}: kept {kept} of {n}, expected {mean} +- {sigma}"
        );
        // Also in each 64 Ki block: no long runs of drops or keeps.
        for (b, block) in y.data.chunks(1 << 16).enumerate() {
            let k = block.iter().filter(|&&v| v != 0.0).count() as f64;
            let (m, s) = (
                block.len() as f64 * (1.0 - p),
                (block.len() as f64 * p * (1.0 - p)).sqrt(),
            );
            assert!((k - m).abs() < 5.0 * s, "p = {p}, block {b}: kept {k}");
        }
        for (i, (&v, &xv)) in y.data.iter().zip(&x.data).enumerate() {
            // Kept: x * (1 / (1 - p)), one rounding away from x / (1 - p) (none at p = 0.5, 0.75).
            let exact = p != 0.2;
            let close = (v - xv / (1.0 - p)).abs() <= f64::EPSILON * v.abs();
            let kept = v == xv * d.scale() && (v == xv / (1.0 - p) || !exact && close);
            assert!(v == 0.0 || kept, "p = {p}, element {i}: {v} from {xv}");
        }
    }
    // p = 0 keeps everything as it is.
    assert_eq!(run(&Dropout { p: 0.0, salt: 9 }, &x, 5.0), x);
    // In f32 the kept values are x * f32(1 / (1 - p)), exactly.
    let d = Dropout { p: 0.3, salt: 4 };
    let x32 = Tensor::new(&[1000], (0..1000).map(|i| 0.5 + i as f32 * 1e-3).collect());
    let y32 = d.cpu(&[&x32, &Tensor::new(&[1], vec![3.0f32])], &[1000]);
    let scale = (1.0 / 0.7f64) as f32;
    for (&v, &xv) in y32.data.iter().zip(&x32.data) {
        assert!(v == 0.0 || v == xv * scale);
    }
}

#[test]
fn the_mask_is_a_function_of_seed_salt_and_index() {
    let x = ramp(4096);
    let d = Dropout { p: 0.5, salt: 42 };
    let mask = |d: &Dropout, seed: f64| -> Vec<bool> {
        run(d, &x, seed).data.iter().map(|&v| v != 0.0).collect()
    };
    let a = mask(&d, 10.0);
    assert_eq!(a, mask(&d, 10.0));
    // The mask depends on the seed and the salt, not on the values.
    let other = |b: &[bool]| a.iter().zip(b).filter(|(p, q)| p != q).count();
    for (what, b) in [
        ("seed 11", mask(&d, 11.0)),
        ("seed 0", mask(&d, 0.0)),
        ("salt 43", mask(&Dropout { p: 0.5, salt: 43 }, 10.0)),
    ] {
        // Independent masks at p = 0.5 differ in about half the elements.
        let n = other(&b);
        assert!((1700..2400).contains(&n), "{what}: {n} of 4096 differ");
    }
    let neg = Tensor::new(&[4096], x.data.iter().map(|v| -v).collect());
    let b: Vec<bool> = run(&d, &neg, 10.0).data.iter().map(|&v| v != 0.0).collect();
    assert_eq!(a, b);
}

/// Builds of these tests have no Grad node.
struct NoGrad;
impl Differentiator for NoGrad {
    fn grad(&self, _: &mut Graph, _: NodeId, _: NodeId) -> Result<NodeId, String> {
        Err("no Grad in these tests".into())
    }
}

const MODEL: &str = "Model(
    params: { C: 2 },
    blocks: {
        B: Block(inputs: [x], nodes: { d: Dropout(in: x, p: 0.5), r: Relu(in: d) }, output: r),
    },
    graphs: {
        inner: Graph(
            inputs: { x: [1, C, 4, 4] },
            nodes: { b: B(x: x), top: Dropout(in: b, p: 0.25) },
            outputs: { y: top },
        ),
        outer: Graph(
            inputs: { a: [1, C, 4, 4] },
            nodes: { first: Call(graph: inner, x: a), second: Call(graph: inner, x: first) },
            outputs: { y: second },
        ),
        plain: Graph(inputs: { a: [1, C, 4, 4] }, nodes: { r: Relu(in: a) }, outputs: { y: r }),
    },
)";

fn dropouts(g: &Graph) -> Vec<(&str, u32, Vec<NodeId>)> {
    (g.nodes.iter())
        .filter_map(|n| match &n.op {
            Op::Dropout(d) => Some((n.name.as_str(), d.salt, n.inputs.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_training_build_adds_one_seed_input_read_by_every_dropout() {
    let m = front::parse(MODEL, "t.ron", &[]).unwrap();
    let g = m.build_training("outer", &[], &NoGrad).unwrap();
    let seeds: Vec<NodeId> = (g.inputs())
        .filter(|(_, n)| n.name == DROPOUT_SEED)
        .map(|(i, n)| {
            assert_eq!(n.shape, [2]);
            assert_eq!(
                n.op,
                Op::Input {
                    name: DROPOUT_SEED.into()
                }
            );
            i
        })
        .collect();
    assert_eq!(seeds.len(), 1, "one seed for the whole build");
    let d = dropouts(&g);
    assert_eq!(d.len(), 4);
    // Salts from the path within `inner`, the same for both calls; each dropout reads the seed.
    let want = [
        ("b.d", "first.b.d"),
        ("top", "first.top"),
        ("b.d", "second.b.d"),
        ("top", "second.top"),
    ];
    for ((name, salt, inputs), (local, path)) in d.iter().zip(want) {
        assert_eq!(*name, path);
        assert_eq!(*salt, dropout_salt(local));
        assert_eq!(inputs[1], seeds[0]);
        assert_eq!(inputs.len(), 2);
    }
    // Built alone, `inner` has the same salts.
    let alone = m.build_training("inner", &[], &NoGrad).unwrap();
    let salts: Vec<u32> = dropouts(&alone).iter().map(|d| d.1).collect();
    assert_eq!(salts, [dropout_salt("b.d"), dropout_salt("top")]);
    // The declared inputs do not list the seed.
    assert_eq!(
        m.input_shapes("outer").unwrap(),
        [("a".to_string(), vec![1, 2, 4, 4])]
    );
    // A graph without dropout gets no seed.
    let plain = m.build_training("plain", &[], &NoGrad).unwrap();
    assert_eq!(plain.inputs().count(), 1);
}

#[test]
fn inference_builds_are_unchanged() {
    let m = front::parse(MODEL, "t.ron", &[]).unwrap();
    for g in [
        m.build("outer", &[]).unwrap(),
        m.build_with("outer", &[], &NoGrad).unwrap(),
    ] {
        assert!(g.inputs().all(|(_, n)| n.name != DROPOUT_SEED));
        assert!(dropouts(&g).iter().all(|d| d.2.len() == 1));
    }
}

#[test]
fn a_value_named_like_the_seed_is_an_error_in_a_training_build() {
    let clash = |graph: &str| {
        let src = format!(
            "Model(graphs: {{ g: Graph(inputs: {{ x: [4] }}, nodes: {{ {graph} }}, outputs: {{ y: y }}) }})"
        );
        let m = front::parse(&src, "t.ron", &[]).unwrap();
        assert!(m.build("g", &[]).is_ok());
        m.build_training("g", &[], &NoGrad).unwrap_err().to_string()
    };
    let msg = "a training build names its dropout seed input `dropout_seed`, but the graph already has a value of that name; rename it";
    // Made before the first dropout, the clash is reported at the dropout.
    assert_eq!(
        clash("dropout_seed: Relu(in: x), y: Dropout(in: dropout_seed, p: 0.5)"),
        format!("t.ron:1:85: error: in g.y: {msg}")
    );
    // Made after it, for the graph.
    assert_eq!(
        clash("y: Dropout(in: x, p: 0.5), dropout_seed: Relu(in: y)"),
        format!("graph g: {msg}")
    );
}
