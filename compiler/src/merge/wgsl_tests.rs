use super::*;

fn kernel(name: &str, arenas: Vec<usize>, offsets: Vec<u32>, count: u32, wgsl: &str) -> Kernel {
    Kernel {
        name: name.into(),
        template: "elementwise".into(),
        nodes: vec![name.into()],
        reads: vec![],
        writes: vec![],
        arenas,
        offsets,
        workgroups: [count, 1, 1],
        wgsl: wgsl.into(),
        parts: Vec::new(),
    }
}

const SPECIALISED: (bool, u32) = (true, 65535);
const AS_DATA: (bool, u32) = (false, 65535);

const A: &str = "@group(0) @binding(0) var<storage, read_write> a0: array<f32>;
struct Offsets { o: array<vec4<u32>, 1> }
@group(1) @binding(0) var<uniform> offsets: Offsets;
const WG: u32 = 8u;
struct Walk { h: u32, w: u32 }
fn twice(x: f32) -> f32 {
    return 2.0 * x; // a comment with a brace {
}
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let w = Walk(1u, 2u);
    a0[offsets.o[0].y + gid.x] = twice(a0[offsets.o[0].x + gid.x]) + f32(w.h);
}
";

#[test]
fn parts_keep_their_names_offsets_and_workgroups_apart() {
    let b = A.replace("2.0 * x", "3.0 * x");
    let parts = [
        kernel("a", vec![1], vec![0, 64], 2, A),
        kernel("b", vec![1], vec![128, 192, 5, 6, 7], 3, &b),
    ];
    let m = merge(&parts, SPECIALISED, 8).expect("merges");
    assert_eq!(m.workgroups, [5, 1, 1]);
    assert_eq!(m.arenas, [1]);
    // Each part's offsets start at a vec4 of their own.
    // Then each part's range of workgroups: one past its last, and its count; then the total
    // and the stride that spreads the parts over the dispatch (3: 0, 3, 1, 4, 2).
    assert_eq!(
        m.offsets,
        [0, 64, 0, 0, 128, 192, 5, 6, 7, 0, 0, 0, 2, 2, 0, 0, 5, 3, 0, 0, 5, 3, 0, 0]
    );
    let src = &m.wgsl;
    assert!(
        src.contains("fn p0_twice(") && src.contains("fn p1_twice("),
        "{src}"
    );
    assert!(src.contains("offsets.o[1u + 0].x"), "{src}");
    assert!(
        src.contains("let w = p1_Walk(1u, 2u)") && src.contains("f32(w.h)"),
        "{src}"
    );
    assert!(
        src.contains("let m_r1 = offsets.o[4u];\n    if (m_w < m_r1.x)"),
        "{src}"
    );
    assert!(
        src.contains("vec3<u32>((m_w - (m_r1.x - m_r1.y)) * 8u + m_lid, 0u, 0u)"),
        "{src}"
    );
    validates(src);
    // Without sharing, each part keeps its binding.
    assert_eq!(merge(&parts, AS_DATA, 8).unwrap().arenas, [1, 1]);
}

#[test]
fn what_it_cannot_merge_it_declines() {
    let a = kernel("a", vec![0], vec![0, 1], 1, A);
    let with_a = |wgsl: &str| {
        merge(
            &[a.clone(), kernel("b", vec![0], vec![], 1, wgsl)],
            SPECIALISED,
            8,
        )
    };
    // 100 invocations are not a whole number of 8, and 8 would pad more than 8 times over.
    let odd = A.replace("const WG: u32 = 8u;", "const WG: u32 = 100u;");
    assert!(with_a(&odd).is_none());
    let sums = A.replace("twice(a0", "subgroupAdd(a0");
    let half = sums.replace("const WG: u32 = 8u;", "const WG: u32 = 4u;");
    assert!(with_a(&half).is_none());
    let tiles = A.replace("const WG", "var<workgroup> tile: array<f32, 8>;\nconst WG");
    assert!(with_a(&tiles).is_none());
    let mut two_d = kernel("b", vec![0], vec![], 1, A);
    two_d.workgroups = [1, 2, 1];
    assert!(merge(&[a, two_d], SPECIALISED, 8).is_none());
}

fn validates(src: &str) {
    let module = naga::front::wgsl::parse_str(src).expect("parses");
    naga::valid::Validator::new(Default::default(), naga::valid::Capabilities::all())
        .validate(&module)
        .expect("validates");
}

#[test]
fn a_larger_workgroup_runs_as_several_merged_ones() {
    let wide = A.replace("const WG: u32 = 8u;", "const WG: u32 = 32u;");
    let parts = [
        kernel("a", vec![0], vec![0, 1], 2, A),
        kernel("b", vec![0], vec![2, 3], 3, &wide),
    ];
    let m = merge(&parts, SPECIALISED, 8).expect("merges");
    // Workgroups of 8; b's 3 workgroups of 32 are 12 merged ones, 2..14.
    assert_eq!(m.workgroups, [14, 1, 1]);
    assert_eq!(m.offsets[8..12], [2, 2, 0, 0]);
    assert_eq!(m.offsets[12..16], [14, 12, 0, 0]);
    let src = m.wgsl;
    assert!(src.contains("@compute @workgroup_size(8)"), "{src}");
    // b's invocation gets its own workgroup's global index back: workgroup local / 4, invocation
    // local % 4 * 8 + the merged one's.
    let local = "(m_w - (m_r1.x - m_r1.y))";
    assert!(
        src.contains(&format!(
            "p1_main(vec3<u32>({local} / 4u * 32u + {local} % 4u * 8u + m_lid, 0u, 0u))"
        )),
        "{src}"
    );
    validates(&src);
    // Taking sizes as data, or where the split dispatch would pass the device's limit, it pads.
    for limits in [AS_DATA, (true, 13)] {
        let m = merge(&parts, limits, 8).expect("merges");
        assert_eq!(m.workgroups, [5, 1, 1]);
        assert!(
            m.wgsl.contains("@compute @workgroup_size(32)"),
            "{}",
            m.wgsl
        );
    }
    // With subgroups of 16, workgroups of 8 would cut b's subgroups apart: a pads instead.
    let sums = wide.replace("twice(a0", "subgroupAdd(a0");
    let parts = [parts[0].clone(), kernel("b", vec![0], vec![2, 3], 3, &sums)];
    let m = merge(&parts, SPECIALISED, 16).expect("merges");
    assert_eq!(m.workgroups, [5, 1, 1]);
    assert!(
        m.wgsl.contains("@compute @workgroup_size(32)"),
        "{}",
        m.wgsl
    );
}

#[test]
fn a_smaller_workgroup_runs_in_the_first_invocations_of_the_merged_one() {
    // 20 is not a whole number of 8: the merged workgroup is 20, and a's 8 come first.
    let wide = A.replace("const WG: u32 = 8u;", "const WG: u32 = 20u;");
    let parts = [
        kernel("a", vec![0], vec![0, 1], 2, A),
        kernel("b", vec![0], vec![2, 3], 1, &wide),
    ];
    let src = merge(&parts, SPECIALISED, 8).expect("merges").wgsl;
    assert!(src.contains("@compute @workgroup_size(20)"), "{src}");
    assert!(
        src.contains("if (m_lid < 8u) {\n            p0_main("),
        "{src}"
    );
    assert!(
        src.contains("vec3<u32>((m_w - (m_r0.x - m_r0.y)) * 8u + m_lid"),
        "{src}"
    );
    validates(&src);
}

#[test]
fn the_stride_spreads_every_part_over_the_dispatch() {
    for total in [1u32, 2, 5, 12, 97, 1000] {
        let s = spread(total);
        let mut seen: Vec<u32> = (0..total).map(|w| w * s % total).collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..total).collect::<Vec<_>>(),
            "total {total}, stride {s}"
        );
    }
    // The first half of 12 workgroups takes half of a part of 6 and half of a part of 6.
    let s = spread(12);
    let first: Vec<u32> = (0..6).map(|w| w * s % 12).collect();
    assert_eq!(first.iter().filter(|&&w| w < 6).count(), 3, "{first:?}");
}
