//! Training-mode dropout through the compiler: its gradient against central finite differences
//! with the mask fixed by the seed, the kernels of IRD-GAN's generator built for training (one
//! per dropout, none in inference), and the generator inlined in `generator_loss` dropping exactly
//! what the generator built alone drops. (GPU against CPU: tests/gpu_dropout.rs.)

use compiler::autodiff::{grad, sum_to_scalar};
use compiler::differentiate::Autodiff;
use compiler::{compile, verify::verify, Target};
use ir::front::Model;
use ir::ops::{Binary, Const, Dropout, DROPOUT_SEED};
use ir::{cpu, Graph, Node, NodeId, Op, Tensor};
use std::collections::HashMap;

/// Uniform values in [-1, 1) from a small LCG (the tests need no rand crate).
fn values(n: usize, mut state: u64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            2.0 * ((state >> 11) as f64 / (1u64 << 53) as f64) - 1.0
        })
        .collect()
}

fn input(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
    g.nodes.push(Node {
        name: name.into(),
        op: Op::Input { name: name.into() },
        inputs: vec![],
        shape: shape.to_vec(),
    });
    g.nodes.len() - 1
}

#[test]
fn gradient_matches_central_differences_with_the_mask_fixed() {
    let mut g = Graph::default();
    let shape = [2, 3, 4, 5];
    let x = input(&mut g, "x", &shape);
    let seed = input(&mut g, DROPOUT_SEED, &[1]);
    let d = Dropout { p: 0.3, salt: 11 };
    let y = g.push("y", Op::Dropout(d), vec![x, seed]).unwrap();
    // sum(y * R): every element weighed differently.
    let r = Const {
        shape: shape.to_vec(),
        values: values(120, 2),
    };
    let r = g.push("r", Op::Const(r), vec![]).unwrap();
    let m = g.push("m", Op::Binary(Binary::Mul), vec![y, r]).unwrap();
    let loss = sum_to_scalar(&mut g, m).unwrap();
    let (gg, ids) = grad(&g, loss, &[x, seed]).unwrap();
    let mut feeds = HashMap::from([
        ("x".to_string(), Tensor::new(&shape, values(120, 1))),
        (DROPOUT_SEED.to_string(), Tensor::new(&[1], vec![12345.0])),
    ]);
    let got = cpu::evaluate::<f64>(&gg, &feeds).unwrap()[ids[0]].clone();
    let dropped = got.data.iter().filter(|&&v| v == 0.0).count();
    assert!(
        (20..=60).contains(&dropped),
        "{dropped} of 120 gradients are 0 at p = 0.3"
    );
    for e in 0..120 {
        let mut at = |dx: f64| {
            feeds.get_mut("x").unwrap().data[e] += dx;
            let v = cpu::evaluate::<f64>(&g, &feeds).unwrap()[loss].data[0];
            feeds.get_mut("x").unwrap().data[e] -= dx;
            v
        };
        let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
        assert!(
            (got.data[e] - fd).abs() <= 1e-6 * fd.abs().max(1.0),
            "element {e}: autodiff {} vs finite differences {fd}",
            got.data[e]
        );
    }
    // The seed is not differentiable: its gradient is zero.
    let seed_grad = &cpu::evaluate::<f64>(&gg, &feeds).unwrap()[ids[1]];
    assert_eq!(seed_grad.data, [0.0]);
}

fn ird_gan() -> Model {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ird_gan.ron");
    let small = [("N", "4"), ("H", "16"), ("W", "16")];
    ir::front::load(&path, &small.map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
}

fn dropout_kernels(g: &Graph) -> usize {
    let (plan, planned) = compile(g, &Target::default()).unwrap();
    if let Err(e) = verify(&plan, &planned) {
        panic!("the checker rejects the plan:\n{}", e.join("\n"));
    }
    (plan.kernels.iter())
        .filter(|k| k.name.starts_with("dropout:"))
        .count()
}

#[test]
fn generator_training_build_has_the_seed_and_a_kernel_per_dropout() {
    let m = ird_gan();
    let train = m.build_training("generator", &[], &Autodiff).unwrap();
    let seeds: Vec<&Node> = train.inputs().map(|(_, n)| n).collect();
    let names: Vec<&str> = seeds.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["blurred", DROPOUT_SEED]);
    assert_eq!(seeds[1].shape, [2]);
    // The trainer sizes its inputs from the declared ones: the seed is not among them.
    let declared = m.input_shapes("generator").unwrap();
    assert_eq!(declared, [("blurred".to_string(), vec![1, 3, 16, 16])]);
    // The nine IRD blocks' dropouts, each a kernel; inference removes them all.
    assert_eq!(dropout_kernels(&train), 9);
    let infer = m.build_with("generator", &[], &Autodiff).unwrap();
    assert!(infer.inputs().all(|(_, n)| n.name != DROPOUT_SEED));
    assert_eq!(dropout_kernels(&infer), 0);
    // A graph without dropout gets no seed in training mode.
    let critic = m.build_training("critic", &[], &Autodiff).unwrap();
    assert!(critic.inputs().all(|(_, n)| n.name != DROPOUT_SEED));

    // A training step: the backward pass of each dropout is the same mask, one more kernel each.
    let mut step = train.clone();
    let out = step.outputs[0].1;
    let wrt: Vec<NodeId> = step.params().map(|(i, _)| i).collect();
    let s = sum_to_scalar(&mut step, out).unwrap();
    let (step, _) = grad(&step, s, &wrt).unwrap();
    assert_eq!(dropout_kernels(&step), 18);
}

/// Random feeds for every parameter of `g`, named `prefix` + the generator's own parameter path,
/// from the same numbers whichever graph asks (so both builds of the generator get one network).
fn param_feeds(g: &Graph, prefix: &str) -> HashMap<String, Tensor<f64>> {
    g.params()
        .map(|(_, n)| {
            let own = n.name.strip_prefix(prefix).unwrap_or(&n.name);
            let seed = ir::ops::dropout_salt(own) as u64;
            let scale = 1.0 / (ir::numel(&n.shape) as f64 / n.shape[0] as f64).sqrt();
            let data = values(ir::numel(&n.shape), seed)
                .into_iter()
                .map(|v| v * scale);
            (n.name.clone(), Tensor::new(&n.shape, data.collect()))
        })
        .collect()
}

#[test]
fn generator_inside_generator_loss_drops_what_it_drops_alone() {
    let m = ird_gan();
    let alone = m.build_training("generator", &[], &Autodiff).unwrap();
    let loss = m.build_training("generator_loss", &[], &Autodiff).unwrap();
    assert_eq!(
        loss.inputs()
            .filter(|(_, n)| n.name == DROPOUT_SEED)
            .count(),
        1
    );
    // The salts are the same: the paths within the generator.
    let salts = |g: &Graph, prefix: &str| -> Vec<(String, u32)> {
        (g.nodes.iter())
            .filter_map(|n| match &n.op {
                Op::Dropout(d) => Some((n.name.strip_prefix(prefix)?.to_string(), d.salt)),
                _ => None,
            })
            .collect()
    };
    let want = salts(&alone, "");
    assert_eq!(want.len(), 9);
    assert_eq!(salts(&loss, "out."), want);

    let blurred = Tensor::new(&[1, 3, 16, 16], values(768, 7));
    let run = |seed: f64, g: &Graph, prefix: &str, out: NodeId| {
        let mut feeds = param_feeds(g, prefix);
        feeds.insert("blurred".into(), blurred.clone());
        feeds.insert("sharp".into(), Tensor::new(&[1, 3, 16, 16], values(768, 8)));
        feeds.insert(DROPOUT_SEED.into(), Tensor::new(&[2], vec![seed, 0.0]));
        cpu::evaluate::<f64>(g, &feeds).unwrap().swap_remove(out)
    };
    let alone_out = alone.outputs[0].1;
    let name = format!("out.{}", alone.nodes[alone_out].name);
    let inside_out = loss.find(&name).unwrap();
    let a = run(3.0, &alone, "", alone_out);
    assert_eq!(a.data, run(3.0, &loss, "generator.", inside_out).data);
    // And the dropout is active: another seed, or inference, gives another image.
    assert_ne!(a.data, run(4.0, &alone, "", alone_out).data);
    let infer = m.build("generator", &[]).unwrap();
    let mut feeds = param_feeds(&infer, "");
    feeds.insert("blurred".into(), blurred);
    let i = cpu::evaluate::<f64>(&infer, &feeds).unwrap();
    assert_ne!(a.data, i[infer.outputs[0].1].data);
}
