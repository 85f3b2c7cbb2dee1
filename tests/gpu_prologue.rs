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
        groups: 1,
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
/// frozen weight are the prologue's work; each kernel dispatched alone (the tests name them).
fn target() -> Target {
    let mut t = gpu().target();
    t.policy.winograd_tile = 4;
    t.policy.merge_kernels = false;
    t
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

/// A data-parallel step records a plan in pieces, cut where each gradient is complete
/// (`runtime::train::Exchange`): the cut is one past the last kernel writing the value, and the
/// pieces, submitted one by one, compute what the whole plan does, on the first run (with the
/// prologue) and on later ones (without).
#[test]
fn a_plan_recorded_in_pieces_cut_where_values_are_complete_gives_the_whole_plans_results() {
    let (plan, planned) = compile(&["frozen.w"]);
    let exe = runtime::Executable::new(gpu(), &plan).unwrap();
    let mut cuts = vec![];
    for (name, id) in &plan.outputs {
        let last = plan.kernels.iter().rposition(|k| k.writes.contains(id));
        let ready = exe.ready_after(*id).unwrap();
        assert_eq!(Some(ready), last.map(|i| i + 1), "{name}");
        cuts.push(ready.max(plan.prologue));
    }
    assert_eq!(exe.ready_after(planned.find("x").unwrap()).unwrap(), 0);
    cuts.push(exe.kernels());
    cuts.sort();
    let frozen = random_feeds(&graph(), 1)["frozen.w"].clone();
    for seed in [1, 2] {
        let mut feeds = random_feeds(&graph(), seed);
        feeds.insert("frozen.w".into(), frozen.clone());
        for (name, t) in &feeds {
            exe.write(planned.find(name).unwrap(), &t.data).unwrap();
        }
        let mut at = 0;
        for &cut in &cuts {
            let mut enc = gpu().device.create_command_encoder(&Default::default());
            exe.record_part(&mut enc, at..cut);
            gpu().queue.submit([enc.finish()]);
            at = cut;
        }
        check_outputs(&exe, &planned, &feeds);
    }
}

/// x -> 3x3 conv with `early.w` -> ReLU: `a`; then a 3x3 conv of `a` with `late.w`, summed:
/// `loss`. With `late.w` late, `a` is the first phase's.
fn phased() -> Graph {
    let mut g = G::new("phases");
    let x = g.input("x", &[1, 16, 10, 10]);
    let conv = Op::Conv2d(Conv2d {
        stride: 1,
        pad: 1,
        bias: false,
        groups: 1,
    });
    let w1 = g.param("early.w", &[16, 16, 3, 3]);
    let c = g.op("c", conv.clone(), &[x, w1]);
    let a = g.op("a", Op::Unary(Unary::Relu), &[c]);
    let w2 = g.param("late.w", &[16, 16, 3, 3]);
    let y = g.op("y", conv, &[a, w2]);
    let sum = Reduce {
        kind: ReduceKind::Sum,
        axes: vec![],
    };
    let loss = g.op("loss", Op::Reduce(sum), &[y]);
    g.output(a);
    g.output(loss);
    g.0
}

fn compile_phased() -> (Plan, Graph) {
    let options = Options {
        late: ["late.w".to_string()].into(),
        ..Default::default()
    };
    compile_with(&phased(), &target(), &options).unwrap()
}

#[test]
fn the_first_phase_reads_no_late_source_and_the_checker_proves_it() {
    let (plan, planned) = compile_phased();
    verify(&plan, &planned).unwrap();
    let w2 = planned.find("late.w").unwrap();
    assert_eq!(plan.late, [w2]);
    let a = planned.find("a").unwrap();
    assert!(
        plan.values[a].live.0 < plan.split,
        "`a` is written in the first phase"
    );
    assert!(plan.split < plan.kernels.len());
    assert!(plan.kernels[plan.split..]
        .iter()
        .any(|k| k.reads.contains(&w2)));
    let mut one = plan.clone();
    one.split = plan.kernels.len();
    let reader = (plan.kernels.iter())
        .find(|k| k.reads.contains(&w2))
        .unwrap();
    let want = format!(
        "kernel `{}` of the first phase reads `late.w`, which may change before the second",
        reader.name
    );
    let errs = verify(&one, &planned).unwrap_err();
    assert!(errs.contains(&want), "{errs:?}");
}

#[test]
fn the_second_phase_sees_late_sources_written_after_the_first() {
    let (plan, planned) = compile_phased();
    let exe = runtime::Executable::new(gpu(), &plan).unwrap();
    let before = random_feeds(&phased(), 11);
    let mut after = before.clone();
    after.insert(
        "late.w".into(),
        random_feeds(&phased(), 12)["late.w"].clone(),
    );
    for (name, t) in &before {
        exe.write(planned.find(name).unwrap(), &t.data).unwrap();
    }
    let submit = |record: &dyn Fn(&mut wgpu::CommandEncoder)| {
        let mut enc = gpu().device.create_command_encoder(&Default::default());
        record(&mut enc);
        gpu().queue.submit([enc.finish()]);
    };
    submit(&|enc| exe.record_first(enc));
    let a = planned.find("a").unwrap();
    assert!(exe.first_phase_writes(a));
    let w2 = planned.find("late.w").unwrap();
    exe.write(w2, &after["late.w"].data).unwrap();
    submit(&|enc| exe.record_second(enc));
    let f64_feeds: HashMap<String, Tensor<f64>> =
        after.iter().map(|(k, v)| (k.clone(), v.cast())).collect();
    let g = phased();
    let cpu = ir::cpu::evaluate::<f64>(&g, &f64_feeds).unwrap();
    for (name, id) in &g.outputs {
        let got = exe.read(planned.find(name).unwrap()).unwrap();
        assert_close(name, &got, &cpu[*id]);
    }
}
