//! WGSL generation: every op's kernel parses and validates with naga, over values placed in one
//! piece or split by channels across arenas, and large shapes split their dispatch in 2-D.

use compiler::codegen::{generate, validate_wgsl};
use compiler::{CompileError, ConvTiles, Kernel, Piece, Target, ValuePlan};
use ir::ops::*;
use ir::{Graph, Node, NodeId, Op};

fn source(g: &mut Graph, name: &str, op: Op, shape: &[usize]) -> NodeId {
    g.nodes.push(Node {
        name: name.into(),
        op,
        inputs: vec![],
        shape: shape.to_vec(),
    });
    g.nodes.len() - 1
}

fn input(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
    source(g, name, Op::Input { name: name.into() }, shape)
}

fn param(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
    source(g, name, Op::Param { init: Init::Zeros }, shape)
}

fn push(g: &mut Graph, name: &str, op: Op, inputs: &[NodeId]) -> NodeId {
    g.push(name, op, inputs.to_vec()).unwrap()
}

/// A trivial placement: value k in arena k % 3, values one after another. With `split`, a value
/// of 2 or more channels is cut into two pieces by channels, the second in the next arena.
fn place(g: &Graph, split: bool) -> Vec<ValuePlan> {
    let mut next = [0u64; 3];
    let mut plans = Vec::new();
    for (id, node) in g.nodes.iter().enumerate() {
        let [n, c, h, w] = ir::shape4(&node.shape);
        let cuts = if split && c >= 2 {
            vec![(0, c / 2), (c / 2, c)]
        } else {
            vec![(0, c)]
        };
        let mut pieces = Vec::new();
        for (k, (c0, c1)) in cuts.into_iter().enumerate() {
            let arena = (id + k) % 3;
            let cc = c1 - c0;
            let strides = [(cc * h * w) as u64, (h * w) as u64, w as u64, 1];
            pieces.push(Piece {
                arena,
                c0,
                c1,
                offset: next[arena],
                strides,
            });
            next[arena] += (n * cc * h * w) as u64;
        }
        let (name, shape, kind) = (node.name.clone(), node.shape.clone(), g.kind(id));
        plans.push(ValuePlan {
            node: id,
            name,
            shape,
            kind,
            pieces,
            live: (0, 0),
            slice_of: None,
            fused: None,
        });
    }
    plans
}

/// Every computed node, in order.
fn steps(g: &Graph) -> Vec<NodeId> {
    (0..g.nodes.len())
        .filter(|&i| g.kind(i) == ir::ValueKind::Computed)
        .collect()
}

fn const_u32(k: &Kernel, name: &str) -> u64 {
    let pat = format!("const {name}: u32 = ");
    let at = k
        .wgsl
        .find(&pat)
        .unwrap_or_else(|| panic!("{}: no {name}", k.name))
        + pat.len();
    k.wgsl[at..].split('u').next().unwrap().parse().unwrap()
}

/// Generate, then check what every kernel must satisfy: valid WGSL, arenas sorted and distinct
/// with one binding each, a dispatch within the limits that covers every item.
fn check(g: &Graph, values: &[ValuePlan], target: &Target) -> Vec<Kernel> {
    let kernels = generate(g, &steps(g), values, &[], target).unwrap();
    for k in &kernels {
        if let Err(e) = validate_wgsl(&k.wgsl) {
            panic!("{} does not validate:\n{e}\n{}", k.name, k.wgsl);
        }
        assert!(
            k.arenas.windows(2).all(|w| w[0] < w[1]),
            "{}: arenas {:?}",
            k.name,
            k.arenas
        );
        for (b, a) in k.arenas.iter().enumerate() {
            let decl =
                format!("@group(0) @binding({b}) var<storage, read_write> a{b}: array<f32>;");
            assert!(
                k.wgsl.contains(&decl),
                "{}: binding {b} of arena {a}",
                k.name
            );
        }
        let [x, y, z] = k.workgroups;
        let max = target.max_workgroups_per_dim;
        assert!(
            x <= max && y <= max && z == 1 && x >= 1,
            "{}: {:?}",
            k.name,
            k.workgroups
        );
        let groups_are_items =
            ["instance_norm", "reduce", "weight_grad"].contains(&k.template.as_str());
        let per_group = if groups_are_items {
            1
        } else {
            const_u32(k, "WG")
        };
        let covered = x as u64 * y as u64 * per_group;
        assert!(
            covered >= const_u32(k, "TOTAL"),
            "{}: {:?}",
            k.name,
            k.workgroups
        );
        assert_eq!(k.writes.len(), 1);
        assert_eq!(k.nodes.len(), 1);
    }
    kernels
}

/// One graph that uses every op that gets a kernel.
fn every_op() -> Graph {
    let mut g = Graph {
        name: "all".into(),
        ..Default::default()
    };
    let x = input(&mut g, "x", &[2, 6, 10, 12]);
    let w = param(&mut g, "conv.weight", &[8, 6, 3, 3]);
    let b = param(&mut g, "conv.bias", &[8]);
    let c = push(
        &mut g,
        "conv",
        Op::Conv2d(Conv2d {
            stride: 1,
            pad: 1,
            bias: true,
        }),
        &[x, w, b],
    );
    let w2 = param(&mut g, "down.weight", &[5, 8, 4, 4]);
    let d = push(
        &mut g,
        "down",
        Op::Conv2d(Conv2d {
            stride: 2,
            pad: 2,
            bias: false,
        }),
        &[c, w2],
    );
    let wt = param(&mut g, "up.weight", &[5, 3, 3, 3]);
    let bt = param(&mut g, "up.bias", &[3]);
    let t = ConvTranspose2d {
        stride: 2,
        pad: 1,
        out_pad: 1,
        bias: true,
    };
    let up = push(&mut g, "up", Op::ConvTranspose2d(t), &[d, wt, bt]);
    let p = push(
        &mut g,
        "pad",
        Op::ReflectPad(ReflectPad { pads: [3, 2, 1, 3] }),
        &[up],
    );
    let n = push(
        &mut g,
        "norm",
        Op::InstanceNorm(InstanceNorm { eps: 1e-5 }),
        &[p],
    );
    // The lowered parts of norms and of their gradients (compiler::lower, plane_means).
    let stats = push(
        &mut g,
        "stats",
        Op::InstanceNormStats(InstanceNormStats { eps: 1e-5 }),
        &[p],
    );
    push(
        &mut g,
        "rstd",
        Op::PlaneStat(PlaneStat { index: 1 }),
        &[stats],
    );
    push(&mut g, "means", Op::PlaneMeans(PlaneMeans), &[p, n]);
    let mut last = n;
    let unaries = [
        Unary::Relu,
        Unary::LeakyRelu { slope: 0.2 },
        Unary::Tanh,
        Unary::Clamp {
            min: -1.0,
            max: 1.0,
        },
        Unary::Abs,
        Unary::Neg,
        Unary::Sqrt,
        Unary::Square,
        Unary::Exp,
        Unary::Log,
        Unary::Affine {
            scale: 0.5,
            shift: -0.5,
        },
    ];
    for (k, u) in unaries.into_iter().enumerate() {
        last = push(&mut g, &format!("u{k}"), Op::Unary(u), &[last]);
    }
    let per_channel = input(&mut g, "pc", &[1, 3, 1, 1]);
    let width = ir::shape4(&g.nodes[last].shape)[3];
    let row = input(&mut g, "row", &[width]);
    let binaries = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Max,
        Binary::Min,
    ];
    for (k, op) in binaries.into_iter().enumerate() {
        let other = [per_channel, row, n][k % 3];
        last = push(&mut g, &format!("b{k}"), Op::Binary(op), &[last, other]);
    }
    let aff = ChannelAffine {
        scale: vec![1.0, 2.0, 0.5],
        shift: vec![-0.25, 0.0, 3.0],
    };
    let a = push(&mut g, "affine", Op::ChannelAffine(aff), &[last]);
    let mp = push(
        &mut g,
        "pool",
        Op::MaxPool2d(MaxPool2d {
            kernel: 3,
            stride: 1,
            pad: 1,
        }),
        &[a],
    );
    let dr = push(
        &mut g,
        "drop",
        Op::Dropout(Dropout { p: 0.2, salt: 0 }),
        &[mp],
    );
    let cat = push(&mut g, "cat", Op::Concat(Concat {}), &[dr, a, p]);
    push(
        &mut g,
        "sum_all",
        Op::Reduce(Reduce {
            kind: ReduceKind::Sum,
            axes: vec![],
        }),
        &[cat],
    );
    push(
        &mut g,
        "mean_hw",
        Op::Reduce(Reduce {
            kind: ReduceKind::Mean,
            axes: vec![2, 3],
        }),
        &[cat],
    );
    let v = input(&mut g, "v", &[5, 7]);
    push(
        &mut g,
        "sum_rows",
        Op::Reduce(Reduce {
            kind: ReduceKind::Sum,
            axes: vec![0],
        }),
        &[v],
    );
    g
}

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
        }),
        &[x, w],
    );
    push(&mut g, "relu", Op::Unary(Unary::Relu), &[x]);
    let kernels = check(&g, &place(&g, true), &Target::default());
    // conv: 4 tiles of 16 channels x 2 x 720 x 1280 pixels / 512 = 14400 workgroups;
    // relu: 117964800 / 256 = 460800.
    assert_eq!(kernels[0].workgroups, [14400, 1, 1]);
    assert_eq!(kernels[1].workgroups, [57600, 8, 1]);
    let small = Target {
        max_workgroups_per_dim: 1000,
        ..Target::default()
    };
    let kernels = check(&g, &place(&g, false), &small);
    assert_eq!(kernels[1].workgroups, [1000, 461, 1]);
    let tiny = Target {
        max_workgroups_per_dim: 100,
        ..Target::default()
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

/// One graph with every op a backward pass adds: weight gradients, the gradients of padding and
/// pooling, the layout ops and the derivative unaries.
fn backward_ops() -> Graph {
    let mut g = Graph {
        name: "backward".into(),
        ..Default::default()
    };
    let x = input(&mut g, "x", &[2, 6, 9, 11]);
    let gy = input(&mut g, "gy", &[2, 5, 5, 6]);
    let wg = Conv2dWeightGrad {
        stride: 2,
        pad: 1,
        kh: 3,
        kw: 3,
    };
    push(&mut g, "conv_wg", Op::Conv2dWeightGrad(wg), &[x, gy]);
    let gyt = input(&mut g, "gyt", &[2, 3, 18, 22]);
    let twg = ConvTranspose2dWeightGrad {
        stride: 2,
        pad: 1,
        kh: 4,
        kw: 4,
    };
    push(
        &mut g,
        "convt_wg",
        Op::ConvTranspose2dWeightGrad(twg),
        &[x, gyt],
    );
    let pg = ReflectPadGrad { pads: [3, 2, 1, 3] };
    push(&mut g, "pad_grad", Op::ReflectPadGrad(pg), &[x]);
    let gp = input(&mut g, "gp", &[2, 6, 5, 6]);
    let mp = MaxPool2dGrad {
        kernel: 3,
        stride: 2,
        pad: 1,
    };
    push(&mut g, "pool_grad", Op::MaxPool2dGrad(mp), &[x, gp]);
    let per_channel = input(&mut g, "pc", &[6, 1, 1]);
    let to = vec![2, 6, 9, 11];
    push(
        &mut g,
        "expand_c",
        Op::Expand(Expand { shape: to.clone() }),
        &[per_channel],
    );
    let row = input(&mut g, "row", &[11]);
    push(&mut g, "expand_w", Op::Expand(Expand { shape: to }), &[row]);
    let cs = ChannelSlice { c0: 1, c1: 4 };
    push(&mut g, "slice", Op::ChannelSlice(cs), &[x]);
    let shape = vec![12, 99];
    push(&mut g, "reshape", Op::Reshape(Reshape { shape }), &[x]);
    let mut last = x;
    for (k, u) in [
        Unary::Step,
        Unary::LeakyStep { slope: 0.2 },
        Unary::Sign,
        Unary::InRange {
            min: -1.0,
            max: 1.0,
        },
        Unary::Recip,
    ]
    .into_iter()
    .enumerate()
    {
        last = push(&mut g, &format!("d{k}"), Op::Unary(u), &[last]);
    }
    g
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

/// With fixed 8-lane subgroups, every direct GEMM kernel (no uniform panels here) loads A one row
/// per lane and broadcasts it, and still validates (naga takes wgpu's subgroup built-ins without
/// WGSL's `enable subgroups;`, which it does not parse yet); the other kernels and every dispatch
/// stay as they were.
#[test]
fn direct_gemms_broadcast_a_on_devices_with_subgroups() {
    let g = backward_ops();
    let values = place(&g, false);
    let plain = check(&g, &values, &Target::default());
    let target = Target {
        subgroup_size: 8,
        ..Target::default()
    };
    let broadcast = check(&g, &values, &target);
    let gemms = ["conv2d", "conv_transpose2d", "weight_grad"];
    assert!(broadcast.iter().any(|k| k.template == "weight_grad"));
    for (p, b) in plain.iter().zip(&broadcast) {
        let gemm = gemms.contains(&b.template.as_str());
        assert_eq!(
            b.wgsl
                .contains("let a_15 = subgroupBroadcast(a_lane_1, 7u);"),
            gemm && const_u32(b, "TM") >= 16,
            "{}",
            b.name
        );
        assert!(!p.wgsl.contains("subgroup_invocation_id"), "{}", p.name);
        assert_eq!(p.workgroups, b.workgroups, "{}", b.name);
    }
}

/// Direct GEMM kernels store their register tile through one loop, so the consumer's fused
/// epilogue in `c_st` is compiled once rather than once per element (lavapipe's LLVM took up to a
/// minute on a kernel with 256 unrolled copies); workgroup-memory tiles keep the unrolled stores.
#[test]
fn direct_gemms_store_the_tile_through_one_loop() {
    let g = backward_ops();
    let values = place(&g, false);
    let gpu_tiles = Target {
        conv_tiles: ConvTiles {
            bm: 64,
            bn: 64,
            bk: 16,
            tm: 4,
            tn: 4,
        },
        ..Target::default()
    };
    for (target, direct) in [(Target::default(), true), (gpu_tiles, false)] {
        let kernels = check(&g, &values, &target);
        let templates = ["conv2d", "conv_transpose2d", "weight_grad"];
        let gemms: Vec<_> = (kernels.iter())
            .filter(|k| templates.contains(&k.template.as_str()))
            .collect();
        assert_eq!(gemms.len(), 2, "both weight gradients");
        for k in gemms {
            let unrolled = k.wgsl.matches("c_st(m_").count();
            let elements = const_u32(k, "TM") * const_u32(k, "TN");
            assert_eq!(
                (unrolled, k.wgsl.contains("c_st(m, col_base + n, tile[e]);")),
                match direct {
                    true => (0, true),
                    false => (elements as usize, false),
                },
                "{}",
                k.name
            );
        }
    }
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

    let few = Target {
        max_storage_buffers_per_stage: 2,
        ..Target::default()
    };
    assert_eq!(
        message(generate(&g, &conv, &place(&g, false), &[], &few)),
        "code generation for `conv`: binds 3 arenas, more than the device's 2 storage buffers per stage: its values are too large for this device (split over bindings of at most 128.00 MiB); use smaller inputs (a smaller image)"
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

/// At the f16 precision, the GEMM kernels of every op validate with f16 workgroup tiles and
/// on cooperative matrices of both sides (NVIDIA's 16x16 on 32 lanes, lavapipe's 8x8 on 8),
/// with the `enable`s they need first; the other kernels are as at f32.
#[test]
fn f16_gemms_validate_with_staged_tiles_and_cooperative_matrices() {
    let tiles = ConvTiles {
        bm: 64,
        bn: 64,
        bk: 16,
        tm: 4,
        tn: 4,
    };
    let f32_kernels = |g: &Graph| check(g, &place(g, false), &Target::default());
    for g in [every_op(), backward_ops()] {
        let plain = f32_kernels(&g);
        for (side, lanes) in [(0, 0), (16, 32), (8, 8)] {
            let target = Target {
                precision: compiler::Precision::F16,
                conv_tiles: tiles,
                coop_matrix: side,
                subgroup_size: lanes,
                ..Target::default()
            };
            let kernels = check(&g, &place(&g, false), &target);
            assert_eq!(kernels.len(), plain.len());
            for (k, f32_k) in kernels.iter().zip(&plain) {
                let gemm = ["conv2d", "conv_transpose2d", "weight_grad"].contains(&&*k.template);
                let coop = "coopMultiplyAdd(a_0, b_0, acc_0_0)";
                let matrix = format!("coop_mat{side}x{side}<f16, A>");
                match (gemm, side) {
                    (false, _) if lanes == 0 => assert_eq!(k.wgsl, f32_k.wgsl, "{}", k.name),
                    (false, _) => {}
                    (true, 0) => {
                        assert!(k.wgsl.starts_with("enable f16;\n@group"), "{}", k.wgsl);
                        assert!(!k.wgsl.contains("coopMultiplyAdd"), "{}", k.name);
                    }
                    (true, _) => {
                        let head = "enable f16;\nenable wgpu_cooperative_matrix;\n";
                        assert!(k.wgsl.starts_with(head), "{}", k.wgsl);
                        assert!(
                            k.wgsl.contains(coop) && k.wgsl.contains(&matrix),
                            "{}",
                            k.wgsl
                        );
                    }
                }
            }
        }
    }
}
