//! The planning passes on small hand-built graphs: lifetimes, sharing, dense-concat regions,
//! splitting, and the checker, which must accept the planner's plans and reject corrupted ones.

use compiler::{memory, schedule, simplify, verify::verify, CompileError, Kernel, Plan, Target};
use ir::ops::{Concat, Dropout, Unary};
use ir::{Graph, Node, NodeId, Op};

fn input(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
    g.nodes.push(Node {
        name: name.into(),
        op: Op::Input { name: name.into() },
        inputs: vec![],
        shape: shape.to_vec(),
    });
    g.nodes.len() - 1
}
fn relu(g: &mut Graph, name: &str, x: NodeId) -> NodeId {
    g.push(name, Op::Unary(Unary::Relu), vec![x]).unwrap()
}
fn concat(g: &mut Graph, name: &str, xs: Vec<NodeId>) -> NodeId {
    g.push(name, Op::Concat(Concat {}), xs).unwrap()
}

/// Plan `graph` with one stand-in kernel per step (reads its node's inputs, writes its node), so
/// that kernel index = step index. No code generation involved.
fn plan(graph: &Graph, target: &Target) -> Result<Plan, CompileError> {
    let slices = memory::concat_slices(graph);
    let steps = schedule::schedule(graph, &slices);
    let (values, memory) = memory::plan_memory(graph, &steps, &slices, target)?;
    let kernels: Vec<Kernel> = steps
        .iter()
        .map(|&v| {
            let node = &graph.nodes[v];
            let mut arenas: Vec<usize> = node
                .inputs
                .iter()
                .chain([&v])
                .flat_map(|&u| values[u].pieces.iter().map(|p| p.arena))
                .collect();
            arenas.sort();
            arenas.dedup();
            Kernel {
                name: format!("{}:{}", node.op.kind_name(), node.name),
                template: "stub".into(),
                nodes: vec![node.name.clone()],
                reads: node.inputs.clone(),
                writes: vec![v],
                arenas,
                offsets: vec![],
                workgroups: [1, 1, 1],
                wgsl: String::new(),
                parts: Vec::new(),
            }
        })
        .collect();
    Ok(Plan {
        graph: graph.name.clone(),
        target: target.clone(),
        values,
        unfused_kernels: kernels.len(),
        unmerged_kernels: kernels.len(),
        passes: vec![],
        prologue: 0,
        split: kernels.len(),
        late: vec![],
        kernels,
        memory,
        outputs: graph.outputs.clone(),
        constants: vec![],
    })
}

/// x -> a -> b -> c -> d (output), each 1x4x8x8 (1 KiB).
fn chain() -> Graph {
    let mut g = Graph {
        name: "chain".into(),
        ..Graph::default()
    };
    let mut v = input(&mut g, "x", &[1, 4, 8, 8]);
    for name in ["a", "b", "c", "d"] {
        v = relu(&mut g, name, v);
    }
    g.outputs.push(("out".into(), v));
    g
}

/// Three nested concats, as IRD-GAN's blocks: c1 = [a, y0], c2 = [c1, y1], c3 = [c2, y2].
fn nested() -> Graph {
    let mut g = Graph {
        name: "dense".into(),
        ..Graph::default()
    };
    let x = input(&mut g, "x", &[2, 4, 4, 4]);
    let a = relu(&mut g, "a", x);
    let y0 = relu(&mut g, "y0", a);
    let c1 = concat(&mut g, "c1", vec![a, y0]);
    let y1 = relu(&mut g, "y1", c1);
    let c2 = concat(&mut g, "c2", vec![c1, y1]);
    let y2 = relu(&mut g, "y2", y1);
    let c3 = concat(&mut g, "c3", vec![c2, y2]);
    let out = relu(&mut g, "out", c3);
    g.outputs.push(("out".into(), out));
    g
}

fn id(g: &Graph, name: &str) -> NodeId {
    g.find(name).unwrap()
}

#[test]
fn lifetimes_run_from_first_write_to_last_read() {
    let g = chain();
    let p = plan(&g, &Target::default()).unwrap();
    let live: Vec<(usize, usize)> = p.values.iter().map(|v| v.live).collect();
    // steps: a=0, b=1, c=2, d=3; the input lives throughout, the output to the end.
    assert_eq!(live, vec![(0, 3), (0, 1), (1, 2), (2, 3), (3, 3)]);
    verify(&p, &g).unwrap();
}

#[test]
fn values_not_alive_together_share_bytes() {
    let g = chain();
    let p = plan(&g, &Target::default()).unwrap();
    let at = |n: &str| {
        (
            p.values[id(&g, n)].pieces[0].arena,
            p.values[id(&g, n)].pieces[0].offset,
        )
    };
    assert_eq!(at("a"), at("c"), "a (0..1) and c (2..3) should share");
    assert_eq!(at("b"), at("d"), "b (1..2) and d (3..3) should share");
    assert_eq!(p.memory.naive_bytes, 5 * 1024);
    assert_eq!(p.memory.peak_bytes, 3 * 1024);
    assert_eq!(p.memory.arenas.len(), 1);
    verify(&p, &g).unwrap();
}

#[test]
fn offsets_are_aligned_to_256_bytes() {
    let mut g = Graph {
        name: "odd".into(),
        ..Graph::default()
    };
    let x = input(&mut g, "x", &[1, 1, 1, 3]);
    let a = relu(&mut g, "a", x);
    let b = relu(&mut g, "b", a);
    g.outputs.push(("out".into(), b));
    let p = plan(&g, &Target::default()).unwrap();
    let mut offsets: Vec<u64> = p.values.iter().map(|v| v.pieces[0].offset * 4).collect();
    offsets.sort();
    assert_eq!(offsets, vec![0, 256, 512]);
    assert_eq!(p.memory.peak_bytes, 768);
    verify(&p, &g).unwrap();
}

#[test]
fn nested_concats_become_one_region_without_kernels() {
    let g = nested();
    let p = plan(&g, &Target::default()).unwrap();
    let names: Vec<&str> = p.kernels.iter().map(|k| k.nodes[0].as_str()).collect();
    assert_eq!(names, ["a", "y0", "y1", "y2", "out"]);
    assert_eq!(p.memory.regions.len(), 1);
    let r = &p.memory.regions[0];
    assert_eq!((r.name.as_str(), r.channels), ("c3", 24));
    let slices: Vec<(&str, usize, usize)> = r
        .slices
        .iter()
        .map(|&(v, c, n)| (g.nodes[v].name.as_str(), c, n))
        .collect();
    assert_eq!(
        slices,
        [
            ("c2", 0, 16),
            ("c1", 0, 8),
            ("a", 0, 4),
            ("y0", 4, 4),
            ("y1", 8, 8),
            ("y2", 16, 8)
        ]
    );
    // y1 (channels 8..16 of 24, shape 2x8x4x4) at the region's bytes, with its batch stride.
    let c3 = &p.values[id(&g, "c3")].pieces[0];
    let y1 = &p.values[id(&g, "y1")].pieces[0];
    assert_eq!(y1.offset, c3.offset + 8 * 16);
    assert_eq!(y1.strides, [24 * 16, 16, 4, 1]);
    assert_eq!(p.values[id(&g, "y1")].slice_of, Some((id(&g, "c3"), 8)));
    // The region lives from a's write (step 0) to its read by `out` (step 4).
    assert_eq!(p.values[id(&g, "c3")].live, (0, 4));
    verify(&p, &g).unwrap();
}

#[test]
fn a_value_read_by_two_concats_is_copied_for_the_second() {
    let g = two_concats();
    let (a, b, c1, c2) = (id(&g, "a"), id(&g, "b"), id(&g, "c1"), id(&g, "c2"));
    let p = plan(&g, &Target::default()).unwrap();
    let names: Vec<&str> = p.kernels.iter().map(|k| k.nodes[0].as_str()).collect();
    assert_eq!(
        names,
        ["a", "b", "c2", "s", "t"],
        "c1 is assembled in place, c2 copies"
    );
    assert_eq!(p.values[a].slice_of, Some((c1, 0)));
    assert_eq!(p.values[b].slice_of, Some((c1, 2)));
    assert_eq!(p.values[c2].slice_of, None);
    assert_eq!(p.memory.regions.len(), 1);
    verify(&p, &g).unwrap();
}

#[test]
fn a_value_larger_than_one_binding_is_split_by_channels() {
    let mut g = Graph {
        name: "big".into(),
        ..Graph::default()
    };
    let x = input(&mut g, "x", &[1, 64, 32, 32]);
    let a = relu(&mut g, "a", x);
    g.outputs.push(("a".into(), a));
    let target = {
        let mut t = Target::default();
        t.limits.max_binding_bytes = 64 * 1024;
        t
    };
    let p = plan(&g, &target).unwrap();
    for v in &p.values {
        assert!(
            v.pieces.len() >= 4,
            "{} has {} pieces",
            v.name,
            v.pieces.len()
        );
        for piece in &v.pieces {
            assert_eq!(
                piece.strides,
                [(piece.c1 - piece.c0) as u64 * 1024, 1024, 32, 1]
            );
            assert!((piece.c1 - piece.c0) * 4096 <= 64 * 1024);
        }
    }
    assert!(p.memory.arenas.iter().all(|a| a.bytes <= 64 * 1024));
    verify(&p, &g).unwrap();
}

#[test]
fn a_channel_larger_than_one_binding_is_an_error() {
    let mut g = Graph {
        name: "huge".into(),
        ..Graph::default()
    };
    let x = input(&mut g, "x", &[1, 2, 256, 256]);
    g.outputs.push(("x".into(), x));
    let target = {
        let mut t = Target::default();
        t.limits.max_binding_bytes = 64 * 1024;
        t
    };
    let err = plan(&g, &target).unwrap_err();
    assert_eq!(
        err.to_string(),
        "memory plan: value `x` [1, 2, 256, 256]: one channel takes 256.00 KiB but one binding holds at most 64.00 KiB"
    );
}

#[test]
fn the_checker_rejects_values_alive_together_in_the_same_bytes() {
    let g = chain();
    let mut p = plan(&g, &Target::default()).unwrap();
    let b = p.values[id(&g, "b")].pieces[0].clone();
    p.values[id(&g, "c")].pieces[0] = b.clone();
    let arena = b.arena;
    assert_eq!(
        verify(&p, &g).unwrap_err(),
        vec![
            format!("values `b` (live 1..2) and `c` (live 2..3) share bytes in arena {arena} while both alive"),
            format!("values `c` (live 2..3) and `d` (live 3..3) share bytes in arena {arena} while both alive"),
        ]
    );
}

#[test]
fn the_checker_rejects_a_slice_off_its_region() {
    let g = nested();
    let mut p = plan(&g, &Target::default()).unwrap();
    p.values[id(&g, "y0")].pieces[0].offset += 1;
    assert_eq!(
        verify(&p, &g).unwrap_err(),
        vec!["slice `y0` of region `c3` at channel 4: its bytes are not the region's bytes for those channels".to_string()]
    );
}

#[test]
fn the_checker_rejects_a_slice_at_the_wrong_channel() {
    let g = nested();
    let mut p = plan(&g, &Target::default()).unwrap();
    // Move y1 and its pieces consistently to channel 16: aliasing holds, the graph says 8.
    let c3 = p.values[id(&g, "c3")].pieces[0].clone();
    let y1 = id(&g, "y1");
    p.values[y1].slice_of = Some((id(&g, "c3"), 16));
    p.values[y1].pieces[0].offset = c3.offset + 16 * 16;
    let errs = verify(&p, &g).unwrap_err();
    assert!(
        errs.contains(
            &"slice `y1` of region `c3` at channel 16: no concatenation of the graph puts it there"
                .to_string()
        ),
        "{errs:?}"
    );
}

#[test]
fn the_checker_rejects_a_read_before_its_write() {
    let g = chain();
    let mut p = plan(&g, &Target::default()).unwrap();
    p.kernels[0].writes.clear();
    assert_eq!(
        verify(&p, &g).unwrap_err(),
        vec!["kernel 1 `relu:b` reads `a` before any kernel writes it".to_string()]
    );
}

#[test]
fn the_checker_rejects_an_unbound_arena_and_a_piece_outside_its_arena() {
    let g = chain();
    let mut p = plan(&g, &Target::default()).unwrap();
    p.kernels[2].arenas.clear();
    p.values[id(&g, "d")].pieces[0].offset = 1024;
    assert_eq!(
        verify(&p, &g).unwrap_err(),
        vec![
            "value `d`: bytes 4096..5120 lie outside arena 0 (3072 bytes)".to_string(),
            "kernel 2 `relu:c` reads `b` in arena 0, which it does not bind".to_string(),
            "kernel 2 `relu:c` writes `c` in arena 0, which it does not bind".to_string(),
        ]
    );
}

#[test]
fn simplify_removes_dropout_and_dead_nodes() {
    let mut g = Graph {
        name: "s".into(),
        ..Graph::default()
    };
    let x = input(&mut g, "x", &[1, 2, 4, 4]);
    let unused = input(&mut g, "unused", &[1, 2, 4, 4]);
    let a = relu(&mut g, "a", x);
    let d = g
        .push("drop", Op::Dropout(Dropout { p: 0.2, salt: 0 }), vec![a])
        .unwrap();
    let _dead = relu(&mut g, "dead", d);
    let b = relu(&mut g, "b", d);
    let d2 = g
        .push("drop2", Op::Dropout(Dropout { p: 0.2, salt: 0 }), vec![b])
        .unwrap();
    g.outputs = vec![("y".into(), d2)];
    let s = simplify::simplify(&g);
    let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["x", "unused", "a", "b"]);
    assert_eq!(s.nodes[3].inputs, vec![2]);
    assert_eq!(s.outputs, vec![("y".to_string(), 3)]);
    let _ = (x, unused);
}

// With code generation: compile() end to end, checked by the checker, and printed.

#[test]
fn compiled_plans_pass_the_checker() {
    for g in [chain(), nested(), two_concats()] {
        let (p, s) = compiler::compile(&g, &Target::default()).unwrap();
        assert_eq!(s, g, "nothing to simplify in `{}`", g.name);
        verify(&p, &s).unwrap_or_else(|e| panic!("{}: {e:#?}", g.name));
    }
    let (p, _) = compiler::compile(&nested(), &Target::default()).unwrap();
    assert!(p.kernels.iter().all(|k| !k.name.starts_with("concat")));
}

#[test]
fn compiled_lifetimes_are_in_kernels() {
    // c2 = concat(b, a, x) copies its three inputs: three kernels in one step. (Merged, the
    // independent ones would share kernels: compiler/tests/merge.rs.)
    let g = two_concats();
    let mut target = Target::default();
    target.policy.merge_kernels = false;
    let (p, _) = compiler::compile(&g, &target).unwrap();
    let names: Vec<&str> = p.kernels.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    assert_eq!(p.values[id(&g, "c2")].live, (2, 6));
    assert_eq!(p.values[id(&g, "t")].live, (6, 6));
    assert_eq!(p.values[id(&g, "x")].live, (0, 6));
}

#[test]
fn printed_plans() {
    let g = nested();
    let (p, _) = compiler::compile(&g, &Target::default()).unwrap();
    let text = compiler::print::text(&p, false);
    assert!(
        text.starts_with("plan `dense`: 5 kernels, 9 values\n"),
        "{text}"
    );
    assert!(
        text.contains("region `c3` (24 channels):\n      0..16    `c2`\n"),
        "{text}"
    );
    let ratio = p.memory.peak_bytes as f64 / p.memory.naive_bytes as f64;
    assert!(text.contains(&format!("({ratio:.2}x)")), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&compiler::print::json(&p, false).unwrap()).unwrap();
    assert_eq!(json["kernels"].as_array().unwrap().len(), 5);
    assert!(json["kernels"][0].get("wgsl").is_none());
    let json: serde_json::Value =
        serde_json::from_str(&compiler::print::json(&p, true).unwrap()).unwrap();
    assert!(json["kernels"][0]["wgsl"]
        .as_str()
        .unwrap()
        .contains("fn main"));
    let dot = compiler::print::dot(&p);
    // `out` (kernel 4) reads the region c3, assembled from the slices written by kernels 0..3.
    for k in 0..4 {
        assert!(dot.contains(&format!("  k{k} -> k4 [")), "{dot}");
    }
    assert!(
        dot.contains("k0 -> k1 [label=\"a [2, 4, 4, 4]\"];"),
        "{dot}"
    );
}

#[test]
fn bytes_read_like_a_person_writes_them() {
    use compiler::print::bytes;
    assert_eq!(bytes(512), "512 B");
    assert_eq!(bytes(3 << 19), "1.50 MiB");
    assert_eq!(bytes(128 << 20), "128.00 MiB");
}

fn two_concats() -> Graph {
    let mut g = Graph {
        name: "two".into(),
        ..Graph::default()
    };
    let x = input(&mut g, "x", &[1, 2, 4, 4]);
    let a = relu(&mut g, "a", x);
    let b = relu(&mut g, "b", x);
    let c1 = concat(&mut g, "c1", vec![a, b]);
    let c2 = concat(&mut g, "c2", vec![b, a, x]);
    let s = relu(&mut g, "s", c1);
    let t = relu(&mut g, "t", c2);
    g.outputs = vec![("s".into(), s), ("t".into(), t)];
    g
}
