//! The runtime on hand-built plans (no compiler involved), run on whatever adapter `Gpu::new`
//! finds (lavapipe on a machine without a GPU).

use super::*;
use compiler::{Arena, Kernel, MemoryPlan, Piece, Target, ValuePlan};

fn value(
    node: NodeId,
    name: &str,
    shape: &[usize],
    kind: ValueKind,
    pieces: Vec<Piece>,
) -> ValuePlan {
    ValuePlan {
        node,
        name: name.into(),
        shape: shape.to_vec(),
        kind,
        pieces,
        live: (0, 1),
        slice_of: None,
        fused: None,
    }
}

fn dense(arena: usize, c0: usize, c1: usize, offset: u64, shape: [usize; 4]) -> Piece {
    let [_, _, h, w] = shape;
    let c = (c1 - c0) as u64;
    let (h, w) = (h as u64, w as u64);
    Piece {
        arena,
        c0,
        c1,
        offset,
        strides: [c * h * w, h * w, w, 1],
    }
}

fn plan(
    values: Vec<ValuePlan>,
    kernels: Vec<Kernel>,
    arenas: &[u64],
    outputs: &[(&str, NodeId)],
) -> Plan {
    Plan {
        graph: "test".into(),
        target: Target::default(),
        values,
        unfused_kernels: kernels.len(),
        unmerged_kernels: kernels.len(),
        passes: vec![],
        prologue: 0,
        split: kernels.len(),
        late: vec![],
        kernels,
        memory: MemoryPlan {
            arenas: arenas.iter().map(|&bytes| Arena { bytes }).collect(),
            peak_bytes: arenas.iter().sum(),
            naive_bytes: arenas.iter().sum(),
            regions: vec![],
            recomputed: 0,
            forward_kept_bytes: 0,
        },
        outputs: outputs.iter().map(|(n, i)| (n.to_string(), *i)).collect(),
        constants: vec![],
    }
}

/// y[i] = 2 * x[i] for n elements, x at element `x_at` of binding 0, y at `y_at` of binding `y_binding`.
fn doubler(n: usize, x_at: u64, y_binding: u32, y_at: u64) -> String {
    let second = if y_binding == 0 {
        String::new()
    } else {
        format!(
            "@group(0) @binding({y_binding}) var<storage, read_write> b{y_binding}: array<f32>;\n"
        )
    };
    format!(
        "@group(0) @binding(0) var<storage, read_write> b0: array<f32>;\n{second}\
         @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {{\n\
           let i = id.x;\n\
           if (i >= {n}u) {{ return; }}\n\
           b{y_binding}[{y_at}u + i] = 2.0 * b0[{x_at}u + i];\n\
         }}\n"
    )
}

fn kernel(name: &str, arenas: Vec<usize>, n: usize, wgsl: String) -> Kernel {
    Kernel {
        name: name.into(),
        template: "test".into(),
        nodes: vec![name.into()],
        reads: vec![0],
        writes: vec![1],
        arenas,
        offsets: vec![],
        workgroups: [n.div_ceil(64) as u32, 1, 1],
        wgsl,
        parts: Vec::new(),
    }
}

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32 * 0.5 - 3.0).collect()
}

#[test]
fn doubles_a_vector_in_one_arena() {
    let gpu = Gpu::new().unwrap();
    let s = [1, 1, 1, 100];
    let p = plan(
        vec![
            value(0, "x", &[100], ValueKind::Input, vec![dense(0, 0, 1, 0, s)]),
            value(
                1,
                "y",
                &[100],
                ValueKind::Computed,
                vec![dense(0, 0, 1, 128, s)],
            ),
        ],
        // Two identical kernels: the second overwrites y with the same values and shares the pipeline.
        vec![
            kernel("double", vec![0], 100, doubler(100, 0, 0, 128)),
            kernel("again", vec![0], 100, doubler(100, 0, 0, 128)),
        ],
        &[228 * 4],
        &[("y", 1)],
    );
    let mut cache = PipelineCache::new();
    let exe = Executable::with_cache(&gpu, &p, &mut cache).unwrap();
    assert_eq!(cache.len(), 1);
    let x = ramp(100);
    exe.write(0, &x).unwrap();
    exe.run().unwrap();
    let y = exe.read(1).unwrap();
    assert_eq!(y, x.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    assert_eq!(exe.read(0).unwrap(), x);

    let feeds = HashMap::from([("x".to_string(), Tensor::new(&[100], x.clone()))]);
    let out = execute(&gpu, &p, &feeds).unwrap();
    assert_eq!(out[0].0, "y");
    assert_eq!(out[0].1.shape, vec![100]);
    assert_eq!(out[0].1.data, y);
}

#[test]
fn a_value_split_over_two_arenas_round_trips_and_computes() {
    let gpu = Gpu::new().unwrap();
    // x: [2, 5, 3, 3], channels 0..2 in arena 0, 2..5 in arena 1; y = 2x, dense in arena 0.
    let s = [2, 5, 3, 3];
    let n = 2 * 5 * 9;
    let lo = dense(0, 0, 2, 0, s);
    let hi = dense(1, 2, 5, 4, s);
    // Doubling piece by piece: arena 0 holds x's first piece (36 elements) then y (90).
    let k0 = kernel("lo", vec![0], 36, doubler(36, 0, 0, 36));
    let k1 = kernel("hi", vec![1, 0], 54, doubler(54, 4, 1, 36 + 36));
    let y = Piece {
        arena: 0,
        c0: 0,
        c1: 5,
        offset: 36,
        strides: [45, 9, 3, 1],
    };
    let p = plan(
        vec![
            value(0, "x", &s, ValueKind::Input, vec![lo, hi]),
            value(1, "y", &s, ValueKind::Computed, vec![y]),
        ],
        vec![k0, k1],
        &[(36 + 90) * 4, (4 + 54) * 4],
        &[("y", 1)],
    );
    let exe = Executable::new(&gpu, &p).unwrap();
    let x = ramp(n);
    exe.write(0, &x).unwrap();
    assert_eq!(
        exe.read(0).unwrap(),
        x,
        "write then read of a split value is the identity"
    );
    exe.run().unwrap();
    // Each kernel doubles one piece in its storage order (n, c - c0, h, w) into consecutive
    // elements of y, so y holds the pieces' orders one after the other.
    let mut want = Vec::new();
    for (c0, c1) in [(0, 2), (2, 5)] {
        for img in 0..2 {
            for c in c0..c1 {
                for i in 0..9 {
                    want.push(2.0 * x[(img * 5 + c) * 9 + i]);
                }
            }
        }
    }
    assert_eq!(exe.read(1).unwrap(), want);
}

#[test]
fn feed_errors_name_the_feed() {
    let gpu = Gpu::new().unwrap();
    let s = [1, 1, 1, 4];
    let p = plan(
        vec![
            value(0, "x", &[4], ValueKind::Input, vec![dense(0, 0, 1, 0, s)]),
            value(
                1,
                "y",
                &[4],
                ValueKind::Computed,
                vec![dense(0, 0, 1, 4, s)],
            ),
        ],
        vec![kernel("double", vec![0], 4, doubler(4, 0, 0, 4))],
        &[32],
        &[("y", 1)],
    );
    let feed = |name: &str, shape: &[usize]| {
        HashMap::from([(
            name.to_string(),
            Tensor::new(shape, vec![1.0; ir::numel(shape)]),
        )])
    };
    let err = |f| execute(&gpu, &p, &f).err().unwrap().to_string();
    assert_eq!(err(HashMap::new()), "missing feed `x` (shape [4])");
    assert_eq!(
        err(feed("x", &[1, 4])),
        "feed `x`: expected shape [4], found [1, 4]"
    );
    let mut f = feed("x", &[4]);
    f.insert("z".into(), Tensor::new(&[1], vec![0.0]));
    assert_eq!(
        err(f),
        "feed `z` is not an input, parameter or constant of graph `test`"
    );
}

#[test]
fn plan_and_shader_mistakes_are_errors() {
    let gpu = Gpu::new().unwrap();
    let s = [1, 1, 1, 4];
    let good = || {
        plan(
            vec![
                value(0, "x", &[4], ValueKind::Input, vec![dense(0, 0, 1, 0, s)]),
                value(
                    1,
                    "y",
                    &[4],
                    ValueKind::Computed,
                    vec![dense(0, 0, 1, 4, s)],
                ),
            ],
            vec![kernel("double", vec![0], 4, doubler(4, 0, 0, 4))],
            &[32],
            &[("y", 1)],
        )
    };
    let err = |p: Plan| Executable::new(&gpu, &p).err().unwrap().to_string();

    let mut p = good();
    p.memory.arenas[0].bytes = 24;
    assert_eq!(err(p), "invalid plan: value `y` (channels 0..1) ends at byte 32, past the end of arena 0 (24 bytes)");

    let mut p = good();
    p.kernels[0].arenas = vec![];
    assert_eq!(
        err(p),
        "invalid plan: kernel `double` declares binding 0 but the plan binds 0 arenas"
    );

    let mut p = good();
    // Parses, but has no entry point `main`: wgpu rejects the pipeline.
    p.kernels[0].wgsl = p.kernels[0].wgsl.replace("fn main", "fn start");
    let e = err(p);
    assert!(
        e.starts_with("GPU error while compiling kernel `double`"),
        "{e}"
    );

    let mut p = good();
    p.kernels[0].wgsl = p.kernels[0].wgsl.replace("fn main", "fn main(");
    let e = err(p);
    assert!(
        e.starts_with("kernel `double`: WGSL does not parse:"),
        "{e}"
    );

    let mut p = good();
    p.kernels[0].workgroups = [u32::MAX, 1, 1];
    assert!(err(p)
        .starts_with("invalid plan: kernel `double` dispatches [4294967295, 1, 1] workgroups"));

    let exe = Executable::new(&gpu, &good()).unwrap();
    assert_eq!(
        exe.write(0, &[1.0; 3]).unwrap_err().to_string(),
        "`x`: expected 4 elements ([4]), found 3"
    );
    assert_eq!(
        exe.read(7).unwrap_err().to_string(),
        "no value 7 in the plan"
    );
}
