//! WGSL generation: every op's kernel parses and validates with naga, over values placed in one
//! piece or split by channels across arenas, and large shapes split their dispatch in 2-D.

mod codegen_support;

use codegen_support::*;
use compiler::codegen::{generate, validate_wgsl};
use compiler::{CompileError, Kernel, Piece, Target, ValuePlan};
use ir::ops::*;
use ir::{Graph, NodeId, Op};

#[test]
fn every_op_validates_in_one_piece_and_split() {
    let g = every_op();
    for split in [false, true] {
        let kernels = check(&g, &place(&g, split), &Target::default());
        // One kernel per computed node, and a copy for each of the concat's three inputs.
        assert_eq!(kernels.len(), steps(&g).len() + 2);
        if split {
            // x (6 channels) is split at channel 3: its loads pick the piece with an if-chain.
            let conv = &kernels[0];
            let chain = "fn ld_x(n: u32, c: u32, h: u32, w: u32) -> f32 {\n    if (c < 3u) {";
            assert!(conv.wgsl.contains(chain), "{}", conv.wgsl);
            assert!(conv.wgsl.contains("(c - 3u)"));
        }
    }
}

#[test]
fn kernel_fields_name_the_node_and_its_operands() {
    let g = every_op();
    let kernels = check(&g, &place(&g, false), &Target::default());
    let conv = &kernels[0];
    assert_eq!(conv.name, "conv2d:conv");
    assert_eq!(conv.template, "conv2d");
    assert_eq!(conv.nodes, vec!["conv".to_string()]);
    let id = |name| g.find(name).unwrap();
    assert_eq!(
        conv.reads,
        vec![id("x"), id("conv.weight"), id("conv.bias")]
    );
    assert_eq!(conv.writes, vec![id("conv")]);
    // x, weight, bias, conv are nodes 0, 1, 2, 3: arenas 0, 1, 2, 0.
    assert_eq!(conv.arenas, vec![0, 1, 2]);
    // The default conv tiles (32 output channels x 256 pixels) fitted to this small GEMM: 8
    // channels x 256 pixels (`ConvTiles::fitted`), so one workgroup covers it.
    assert_eq!(const_u32(conv, "GM"), 8);
    assert!((129..=256).contains(&const_u32(conv, "GN")));
    assert_eq!(
        [const_u32(conv, "TM"), const_u32(conv, "BN")],
        [8, 256],
        "{}",
        conv.wgsl
    );
    assert_eq!(const_u32(conv, "TOTAL"), 1);
    assert_eq!(conv.workgroups, [1, 1, 1]);
    let relu = kernels.iter().find(|k| k.name == "relu:u0").unwrap();
    assert_eq!(relu.template, "elementwise");
    assert!(relu.wgsl.contains("return max(x, 0.0);"));
    let norm = kernels
        .iter()
        .find(|k| k.name == "instance_norm:norm")
        .unwrap();
    // One workgroup per (n, c).
    assert_eq!(norm.workgroups, [6, 1, 1]);
    let cat: Vec<&str> = kernels
        .iter()
        .filter(|k| k.nodes[0] == "cat")
        .map(|k| k.name.as_str())
        .collect();
    assert_eq!(cat, ["concat:cat[0]", "concat:cat[1]", "concat:cat[2]"]);
}

#[test]
fn large_shapes_split_the_dispatch_in_two_dimensions() {
    let mut g = Graph {
        name: "big".into(),
        ..Default::default()
    };
    let x = input(&mut g, "x", &[2, 64, 720, 1280]);
    let w = param(&mut g, "w", &[64, 64, 3, 3]);
    push(
        &mut g,
        "conv",
        Op::Conv2d(Conv2d {
            stride: 1,
            pad: 1,
            bias: false,
            groups: 1,
        }),
        &[x, w],
    );
    push(&mut g, "relu", Op::Unary(Unary::Relu), &[x]);
    let kernels = check(&g, &place(&g, true), &Target::default());
    // conv: 4 tiles of 16 channels x 2 x 720 x 1280 pixels / 512 = 14400 workgroups;
    // relu: 117964800 / 256 = 460800.
    assert_eq!(kernels[0].workgroups, [14400, 1, 1]);
    assert_eq!(kernels[1].workgroups, [57600, 8, 1]);
    let small = {
        let mut t = Target::default();
        t.limits.max_workgroups_per_dim = 1000;
        t
    };
    let kernels = check(&g, &place(&g, false), &small);
    assert_eq!(kernels[1].workgroups, [1000, 461, 1]);
    let tiny = {
        let mut t = Target::default();
        t.limits.max_workgroups_per_dim = 100;
        t
    };
    let err = generate(&g, &steps(&g), &place(&g, false), &[], &tiny).unwrap_err();
    assert_eq!(
        err.to_string(),
        "code generation for `conv`: 14400 workgroups do not fit a 2-D dispatch"
    );
}

/// A concat of `a2` (channels 0..2), `b3` (2..5) and `c` (5..6); `in_place` says which of them
/// the placement writes straight into their slice.
fn concat_graph(in_place: [bool; 3]) -> (Graph, Vec<ValuePlan>) {
    let mut g = Graph {
        name: "cat".into(),
        ..Default::default()
    };
    let x = input(&mut g, "x", &[1, 1, 4, 4]);
    let a = push(&mut g, "a", Op::Unary(Unary::Relu), &[x]);
    let a = push(&mut g, "a2", Op::Concat(Concat {}), &[a, a]);
    let b = push(&mut g, "b", Op::Unary(Unary::Neg), &[x]);
    let b = push(&mut g, "b3", Op::Concat(Concat {}), &[b, b, b]);
    let c = push(&mut g, "c", Op::Unary(Unary::Abs), &[x]);
    let cat = push(&mut g, "cat", Op::Concat(Concat {}), &[a, b, c]);
    let mut values = place(&g, false);
    for ((v, first), yes) in [(a, 0), (b, 2), (c, 5)].into_iter().zip(in_place) {
        if yes {
            values[v].slice_of = Some((cat, first));
        }
    }
    (g, values)
}

#[test]
fn concat_copies_only_the_inputs_not_written_in_place() {
    let (g, values) = concat_graph([true, false, true]);
    let cat = [g.find("cat").unwrap()];
    let kernels = generate(&g, &cat, &values, &[], &Target::default()).unwrap();
    assert_eq!(kernels.len(), 1);
    let k = &kernels[0];
    assert_eq!(k.name, "concat:cat[1]");
    assert_eq!(k.reads, vec![g.find("b3").unwrap()]);
    assert_eq!(k.writes, vec![cat[0]]);
    assert_eq!(const_u32(k, "Y_C_OFF"), 2);
    assert_eq!(const_u32(k, "TOTAL"), 48);
    validate_wgsl(&k.wgsl).unwrap();

    let (g, values) = concat_graph([true, true, true]);
    assert!(generate(&g, &cat, &values, &[], &Target::default())
        .unwrap()
        .is_empty());

    // b3 placed in the region but not at its own slice: copied there, not an error.
    let (g, mut values) = concat_graph([true, true, true]);
    values[g.find("b3").unwrap()].slice_of = Some((cat[0], 3));
    let kernels = generate(&g, &cat, &values, &[], &Target::default()).unwrap();
    let names: Vec<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["concat:cat[1]"]);
}

/// D = concat(a, y), C = concat(D, a), planned by the real planner: a sits in place in D, which
/// sits at channel 0 of C, so `slice_of` of a and of D is (C, 0), and of y (C, 2). D needs no
/// copy (its inputs are at D's place in C); C copies only a into its channels 4..6.
#[test]
fn nested_concat_copies_an_input_placed_elsewhere_in_the_region() {
    let mut g = Graph {
        name: "nested".into(),
        ..Default::default()
    };
    let x = input(&mut g, "x", &[1, 2, 3, 3]);
    let a = push(&mut g, "a", Op::Unary(Unary::Relu), &[x]);
    let y = push(&mut g, "y", Op::Unary(Unary::Neg), &[x]);
    let d = push(&mut g, "d", Op::Concat(Concat {}), &[a, y]);
    let c = push(&mut g, "c", Op::Concat(Concat {}), &[d, a]);
    g.outputs.push(("c".into(), c));
    let slices = compiler::memory::concat_slices(&g);
    let target = Target::default();
    let (values, _) = compiler::memory::plan_memory(&g, &steps(&g), &slices, &target).unwrap();
    assert_eq!(values[a].slice_of, Some((c, 0)));
    assert_eq!(values[d].slice_of, Some((c, 0)));
    assert_eq!(values[y].slice_of, Some((c, 2)));
    let kernels = check(&g, &values, &target);
    let names: Vec<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["relu:a", "neg:y", "concat:c[1]"]);
    assert_eq!(const_u32(&kernels[2], "Y_C_OFF"), 4);
    assert_eq!(kernels[2].reads, vec![a]);
}

#[test]
fn backward_ops_validate_in_one_piece_and_split() {
    let g = backward_ops();
    for split in [false, true] {
        let kernels = check(&g, &place(&g, split), &Target::default());
        assert_eq!(kernels.len(), steps(&g).len());
    }
    let kernels = check(&g, &place(&g, false), &Target::default());
    let find = |name: &str| kernels.iter().find(|k| k.name == name).unwrap();
    let wg = find("conv2d_weight_grad:conv_wg");
    assert_eq!(wg.template, "weight_grad");
    // A GEMM of [5] x [6 x 3 x 3] (one tile of the default 16 x 64) summing over the pixels.
    assert_eq!(wg.workgroups, [1, 1, 1]);
    assert_eq!(const_u32(wg, "GK"), 2 * 5 * 6);
    // gy is the operand on the strided grid, x the one read at the taps.
    assert_eq!(const_u32(wg, "S_C"), 5);
    assert_eq!(const_u32(wg, "G_C"), 6);
    let twg = find("conv_transpose2d_weight_grad:convt_wg");
    // [6] x [3 x 4 x 4]: 48 columns in three blocks of 8 invocations x 2 columns, rather than
    // one block of 64 (`ConvTiles::fitted`); x on the grid.
    assert_eq!(twg.workgroups, [3, 1, 1]);
    assert_eq!([const_u32(twg, "BN"), const_u32(twg, "TN")], [16, 2]);
    assert_eq!(const_u32(twg, "S_C"), 6);
    assert_eq!(
        find("reflect_pad_grad:pad_grad").template,
        "reflect_pad_grad"
    );
    assert_eq!(
        find("max_pool2d_grad:pool_grad").template,
        "max_pool2d_grad"
    );
    assert!(find("channel_slice:slice")
        .wgsl
        .contains("ld_x(n, c + SLICE_C0, h, w)"));
    assert!(find("step:d0").wgsl.contains("select(0.0, 1.0, x > 0.0)"));
}

/// A channel slice planned on its input's own channels is an alias: it needs no kernel.
#[test]
fn channel_slice_planned_as_an_alias_gets_no_kernel() {
    let g = backward_ops();
    let slice = g.find("slice").unwrap();
    let mut values = place(&g, false);
    let x = values[0].pieces[0].clone();
    values[slice].pieces = vec![Piece {
        c0: 0,
        c1: 3,
        offset: x.offset + x.strides[1],
        ..x
    }];
    let made = generate(&g, &[slice], &values, &[], &Target::default()).unwrap();
    assert!(
        made.is_empty(),
        "{:?}",
        made.iter().map(|k| &k.name).collect::<Vec<_>>()
    );
    // One channel off: a copy.
    values[slice].pieces[0].offset += x.strides[1];
    let made = generate(&g, &[slice], &values, &[], &Target::default()).unwrap();
    assert_eq!(made.len(), 1);
}

#[test]
fn sources_get_no_kernel() {
    let g = every_op();
    let sources: Vec<NodeId> = (0..g.nodes.len())
        .filter(|&i| g.kind(i) != ir::ValueKind::Computed)
        .collect();
    assert!(!sources.is_empty());
    assert!(
        generate(&g, &sources, &place(&g, false), &[], &Target::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn bad_plans_are_errors_that_name_the_node() {
    let g = every_op();
    let conv = [g.find("conv").unwrap()];
    let message = |r: Result<Vec<Kernel>, CompileError>| r.unwrap_err().to_string();

    let mut values = place(&g, true);
    values[0].pieces.pop();
    assert_eq!(
        message(generate(&g, &conv, &values, &[], &Target::default())),
        "code generation for `conv`: value `x`: pieces [0..3] do not cover channels 0..6"
    );

    let few = {
        let mut t = Target::default();
        t.limits.max_storage_buffers_per_stage = 2;
        t
    };
    assert_eq!(
        message(generate(&g, &conv, &place(&g, false), &[], &few)),
        "code generation for `conv`: binds 3 arenas, more than the device's 2 storage buffers per stage: its values are too large for this device (split over bindings of at most 128.00 MiB); use smaller inputs (a smaller image; `irdc deblur` streams images larger than its --window, shown by `irdc plan --window`)"
    );

    let mut values = place(&g, false);
    values[0].shape = vec![2, 6, 10, 13];
    assert_eq!(
        message(generate(&g, &conv, &values, &[], &Target::default())),
        "code generation for `conv`: value `x` is planned as [2, 6, 10, 13], but has shape [2, 6, 10, 12]"
    );

    assert_eq!(
        message(generate(
            &g,
            &[999],
            &place(&g, false),
            &[],
            &Target::default()
        )),
        "code generation for `#999`: step 999 is not a node of graph `all`"
    );
}

#[test]
fn validate_wgsl_reports_naga_errors() {
    assert!(validate_wgsl("fn f() -> f32 { return 1.0; }").is_ok());
    let err = validate_wgsl("fn f() -> f32 { return 1u; }").unwrap_err();
    assert!(err.contains("return"), "{err}");
    assert!(validate_wgsl("fn f( {").is_err());
}

#[test]
fn kernels_that_differ_only_in_where_values_live_share_their_wgsl() {
    // Relus of the same shape on values at different offsets of one arena: the WGSL reads the
    // offsets from its uniform, so the kernels are one shader with different offsets.
    let mut g = Graph {
        name: "two_relus".into(),
        ..Default::default()
    };
    let x = input(&mut g, "x", &[1, 2, 3, 4]);
    let relu = || Op::Unary(Unary::Relu);
    let a = push(&mut g, "a", relu(), &[x]);
    let b = push(&mut g, "b", relu(), &[a]);
    let c = push(&mut g, "c", relu(), &[b]);
    let mut values = place(&g, false);
    for (i, v) in values.iter_mut().enumerate() {
        v.pieces[0].arena = 0;
        v.pieces[0].offset = 24 * i as u64;
    }
    let kernels = check(&g, &values, &Target::default());
    let (k1, k2) = (&kernels[1], &kernels[2]);
    assert_eq!(k1.wgsl, k2.wgsl);
    let at = |v: NodeId| values[v].pieces[0].offset as u32;
    assert_eq!(k1.offsets, vec![at(a), at(b)]);
    assert_eq!(k2.offsets, vec![at(b), at(c)]);
    assert_ne!(k1.offsets, k2.offsets);
    assert!(
        k1.wgsl
            .contains("@group(1) @binding(0) var<uniform> offsets: Offsets;"),
        "{}",
        k1.wgsl
    );
}
