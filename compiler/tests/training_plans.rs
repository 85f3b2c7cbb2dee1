//! Memory plans of a training graph: IRD-GAN's generator at N=8, 32x32, differentiated w.r.t.
//! every parameter. The gradient of the dense-concat region is one region accumulated in place,
//! cheap forward values are recomputed when that lowers the peak, and every plan passes the
//! checker. (Gradients on the device against the CPU: tests/gpu_training_plans.rs.)

use compiler::autodiff::{grad, sum_to_scalar};
use compiler::{compile_with, print, verify::verify, Options, Plan, Target};
use ir::{Graph, Op};

const N: usize = 8;

fn generator_step() -> Graph {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ird_gan.ron");
    let model = ir::front::load(&path, &[("N".into(), N.to_string())]).unwrap();
    let mut g = model
        .build("generator", &[("blurred".into(), vec![1, 3, 32, 32])])
        .unwrap();
    let out = g.outputs[0].1;
    let wrt: Vec<usize> = (0..g.nodes.len())
        .filter(|&i| matches!(g.nodes[i].op, Op::Param { .. }))
        .collect();
    let s = sum_to_scalar(&mut g, out).unwrap();
    grad(&g, s, &wrt).unwrap().0
}

fn plan(recompute: bool) -> (Plan, Graph) {
    let g = generator_step();
    // Merging independent kernels moves the peak by a few per cent either way (values of a
    // merged group live together), which at this size is the margin recomputation wins by.
    let mut target = Target::default();
    target.policy.merge_kernels = false;
    let (p, planned) = compile_with(
        &g,
        &target,
        &Options {
            recompute,
            ..Options::default()
        },
    )
    .unwrap();
    if let Err(e) = verify(&p, &planned) {
        panic!("the checker rejects the plan:\n{}", e.join("\n"));
    }
    (p, planned)
}

#[test]
fn the_dense_concat_gradient_is_one_region_accumulated_in_place() {
    let (p, g) = plan(true);
    let region = (p.memory.regions.iter())
        .find(|r| r.name.starts_with("grad.") && r.channels == 13 * N)
        .expect("a 13N-channel gradient region");
    // The gradient of every block's concat (`grad.ird.<k>.out`, the in-place sums) and the slices
    // handing each block its part are members of it.
    for k in 0..8 {
        let name = format!("grad.ird.{k}.out");
        let v = g.find(&name).unwrap_or_else(|| panic!("no `{name}`"));
        assert!(matches!(g.nodes[v].op, Op::Binary(_)), "{name} is a sum");
        assert_eq!(p.values[v].slice_of, Some((region.value, 0)), "{name}");
    }
    let members: Vec<usize> = region.slices.iter().map(|s| s.0).collect();
    let slices = (members.iter())
        .filter(|&&v| matches!(g.nodes[v].op, Op::ChannelSlice(_)))
        .count();
    assert!(slices >= 2 * 9, "{slices} channel slices in the region");
    // No copy writes it: slices are views (no kernel), sums write in place.
    for k in &p.kernels {
        for w in k.writes.iter().filter(|&w| members.contains(w)) {
            assert!(
                !matches!(g.nodes[*w].op, Op::ChannelSlice(_) | Op::Concat(_)),
                "kernel `{}` copies into the region",
                k.name
            );
        }
    }
}

#[test]
fn recomputing_cheap_forward_values_lowers_the_peak() {
    let (with, g) = plan(true);
    let (without, _) = plan(false);
    let m = &with.memory;
    assert!(m.recomputed > 0);
    assert_eq!(without.memory.recomputed, 0);
    let clones = (g.nodes.iter())
        .filter(|n| n.name.starts_with(compiler::recompute::PREFIX))
        // Fusion's lowering splits each InstanceNorm, clones included, adding a `.stats` node.
        .filter(|n| !matches!(n.op, Op::InstanceNormStats(_)))
        .count();
    assert_eq!(clones, m.recomputed);
    // ReLU and InstanceNorm of a dense block, recomputed from the block's input.
    assert!(g.find("recompute.ird.8.relu").is_some());
    assert!(g.find("recompute.ird.8.norm").is_some());
    assert!(m.peak_bytes < without.memory.peak_bytes);
    assert!(m.peak_bytes < m.forward_kept_bytes);
    assert!(without.memory.peak_bytes < without.memory.forward_kept_bytes);
    assert!(m.forward_kept_bytes < m.naive_bytes);
    assert_eq!(m.forward_kept_bytes, without.memory.forward_kept_bytes);
    let text = print::text(&with, false);
    assert!(
        text.contains(&format!(
            "forward values: {} recomputed; {} with every forward value kept",
            m.recomputed,
            print::bytes(m.forward_kept_bytes)
        )),
        "{text}"
    );
}

#[test]
fn a_forward_graph_recomputes_nothing() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ird_gan.ron");
    let model = ir::front::load(&path, &[("N".into(), N.to_string())]).unwrap();
    let g = model.build("generator", &[]).unwrap();
    let (p, planned) = compiler::compile(&g, &Target::default()).unwrap();
    assert_eq!((p.memory.recomputed, p.memory.forward_kept_bytes), (0, 0));
    assert!(!print::text(&p, false).contains("forward values"));
    // Nothing added but fusion's lowering of each InstanceNorm into two nodes.
    let lowered = compiler::lower::instance_norms(&compiler::simplify::simplify(&g)).0;
    assert_eq!(planned.nodes.len(), lowered.nodes.len());
}
