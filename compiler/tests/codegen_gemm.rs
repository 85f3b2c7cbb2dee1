//! WGSL generation of the convolution GEMMs: subgroup broadcasts, the store loop of direct
//! tiles, and the f16 precision on workgroup tiles and cooperative matrices.

mod codegen_support;

use codegen_support::{backward_ops, check, const_u32, every_op, place};
use compiler::{ConvTiles, Target};
use ir::Graph;

/// With fixed 8-lane subgroups, every direct GEMM kernel loads A one row
/// per lane and broadcasts it, and still validates (naga takes wgpu's subgroup built-ins without
/// WGSL's `enable subgroups;`, which it does not parse yet); the other kernels and every dispatch
/// stay as they were.
#[test]
fn direct_gemms_broadcast_a_on_devices_with_subgroups() {
    let g = backward_ops();
    let values = place(&g, false);
    let plain = check(&g, &values, &Target::default());
    let target = {
        let mut t = Target::default();
        t.limits.subgroup_size = 8;
        t
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
            let limits = compiler::Limits {
                coop_matrix: side,
                subgroup_size: lanes,
                ..Default::default()
            };
            let target = Target {
                precision: compiler::Precision::F16,
                conv_tiles: tiles,
                limits,
                ..Default::default()
            };
            let kernels = check(&g, &place(&g, false), &target);
            assert_eq!(kernels.len(), plain.len());
            for (k, f32_k) in kernels.iter().zip(&plain) {
                let gemm =
                    ["conv2d", "conv_transpose2d", "weight_grad", "matmul"].contains(&&*k.template);
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
