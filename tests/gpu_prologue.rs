//! Work on frozen parameters done once (`compiler/src/prologue.rs`): which kernels move into the
//! plan's prologue, that the plan checker refuses a prologue whose results a later run could lose,
//! and, on the device, that later runs (which skip the prologue) still match the CPU reference.

mod gpu_support;

use compiler::{compile_with, verify::verify, Options, Plan, Target};
use gpu_support::{assert_close, gpu, random_feeds, G};
use ir::ops::{Conv2d, Reduce, ReduceKind, Unary};
use ir::{Graph, Op, Tensor};
use std::collections::{BTreeSet, HashMap};

/// x -> 3x3 conv with the frozen `frozen.w` -> ReLU -> 3x3 conv with the trained `trained.w`:
/// `y`; and `w_sum`, the sum of `frozen.w`'s elements, which needs no input at all.
fn graph() -> Graph {
    let mut g = G::new("prologue");
    let x = g.input("x", &[1, 16, 12, 12]);
    let conv = Op::Conv2d(Conv2d {
        stride: 1,
        pad: 1,
        bias: false,
    });
    let w1 = g.param("frozen.w", &[16, 16, 3, 3]);
    let a = g.op("a", conv.clone(), &[x, w1]);
    let r = g.op("r", Op::Unary(Unary::Relu), &[a]);
    let w2 = g.param("trained.w", &[16, 16, 3, 3]);
    let y = g.op("y", conv, &[r, w2]);
    let sum = Reduce {
        kind: ReduceKind::Sum,
        axes: vec![],
    };
    let s = g.op("w_sum", Op::Reduce(sum), &[w1]);
    g.output(y);
    g.output(s);
    g.0
}

/// The device's target with 3x3 convs as Winograd products, whose weight transforms of a
/// frozen weight are the prologue's work.
fn target() -> Target {
    Target {
        winograd_tile: 4,
        ..gpu().target()
    }
}

fn compile(frozen: &[&str]) -> (Plan, Graph) {
    let options = Options {
        frozen: frozen
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>(),
        ..Default::default()
    };
    compile_with(&graph(), &target(), &options).unwrap()
}

#[test]
fn the_prologue_holds_what_frozen_parameters_alone_give() {
    let (plan, planned) = compile(&["frozen.w"]);
    verify(&plan, &planned).unwrap();
    let once: Vec<&str> = (plan.kernels[..plan.prologue].iter())
        .map(|k| k.name.as_str())
        .collect();
    assert_eq!(
        once,
        ["winograd_weight:a.winograd.u", "sum:w_sum"],
        "prologue of {:?}",
        plan.kernels.iter().map(|k| &k.name).collect::<Vec<_>>()
    );
    // What later kernels read of the prologue lives through the whole plan.
    let last = plan.kernels.len() - 1;
    let u = planned.find("a.winograd.u").unwrap();
    assert_eq!(plan.values[u].live, (0, last));
    // Nothing frozen, or only the trained weight frozen: no prologue beyond constants.
    assert_eq!(compile(&[]).0.prologue, 0);
    let (p, _) = compile(&["trained.w"]);
    assert_eq!(
        p.kernels[..p.prologue].len(),
        1,
        "the trained weight's transform"
    );
}

#[test]
fn the_plan_checker_refuses_a_prologue_a_later_run_could_lose() {
    let (plan, planned) = compile(&["frozen.w"]);
    let last = plan.kernels.len() - 1;
    let u = planned.find("a.winograd.u").unwrap();
    let mut short = plan.clone();
    short.values[u].live = (0, last - 1);
    let errs = verify(&short, &planned).unwrap_err();
    let reader = (plan.kernels[plan.prologue..].iter())
        .find(|k| k.reads.contains(&u))
        .unwrap();
    let want = format!(
        "kernel `{}` reads `a.winograd.u` of the prologue, alive only (0, {}) of 0..{last}",
        reader.name,
        last - 1
    );
    assert!(errs.contains(&want), "{errs:?}");
    let mut all = plan.clone();
    all.prologue = plan.kernels.len();
    let errs = verify(&all, &planned).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.ends_with("reads `x`, which is not the same on every run")),
        "{errs:?}"
    );
}

/// Run the plan on `feeds`; the outputs by name.
fn run(exe: &runtime::Executable, planned: &Graph, feeds: &HashMap<String, Tensor<f32>>) {
    for (name, t) in feeds {
        if let Some(v) = planned.find(name) {
            exe.write(v, &t.data).unwrap();
        }
    }
    exe.run().unwrap();
}

fn check_outputs(exe: &runtime::Executable, planned: &Graph, feeds: &HashMap<String, Tensor<f32>>) {
    let f64_feeds: HashMap<String, Tensor<f64>> =
        feeds.iter().map(|(k, v)| (k.clone(), v.cast())).collect();
    let g = graph();
    let cpu = ir::cpu::evaluate::<f64>(&g, &f64_feeds).unwrap();
    for (name, id) in &g.outputs {
        let got = exe.read(planned.find(name).unwrap()).unwrap();
        assert_close(name, &got, &cpu[*id]);
    }
}

#[test]
fn later_runs_skip_the_prologue_and_keep_its_results() {
    let (plan, planned) = compile(&["frozen.w"]);
    assert!(plan.prologue > 0);
    let exe = runtime::Executable::new(gpu(), &plan).unwrap();
    let first = random_feeds(&graph(), 1);
    run(&exe, &planned, &first);
    check_outputs(&exe, &planned, &first);
    // A new input and a new trained weight: the second run, without the prologue, is right.
    let mut second = random_feeds(&graph(), 2);
    second.insert("frozen.w".into(), first["frozen.w"].clone());
    run(&exe, &planned, &second);
    check_outputs(&exe, &planned, &second);
    // The frozen weight changed behind the plan's back: the kept transform still answers for
    // the old one, until the executable is told.
    let third = random_feeds(&graph(), 3);
    run(&exe, &planned, &third);
    let mut stale = third.clone();
    stale.insert("frozen.w".into(), first["frozen.w"].clone());
    check_outputs(&exe, &planned, &stale);
    exe.rerun_prologue();
    run(&exe, &planned, &third);
    check_outputs(&exe, &planned, &third);
}
