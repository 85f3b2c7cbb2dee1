//! Independent kernels merged into one dispatch (`compiler::merge`): IRD-GAN's generator,
//! forward and differentiated, and its differentiated critic, for a GPU and a CPU adapter, take
//! fewer kernels merged,
//! every merged kernel validates and its parts are independent (the checker), and the checker
//! rejects a merged kernel whose parts are not. Merged plans on lavapipe against the CPU
//! reference and unmerged ones: tests/gpu_fusion.rs.

mod model_support;

use compiler::{compile, verify::verify, DeviceKind, Overrides, Plan, Target};
use ir::Graph;

fn graph(name: &str, input: &str, train: bool) -> Graph {
    let sets: &[(&str, &str)] = &[("N", "4"), ("ndf", "4")];
    model_support::model_graph(("ird_gan.ron", sets), (name, input), [32, 32], train)
}

fn target(kind: DeviceKind, merge: bool) -> Target {
    let overrides = Overrides {
        merge: Some(merge),
        ..Overrides::default()
    };
    model_support::target(kind, &overrides)
}

fn plan(g: &Graph, target: &Target) -> (Plan, Graph) {
    let (plan, planned) = compile(g, target).unwrap_or_else(|e| panic!("{}: {e}", g.name));
    if let Err(e) = verify(&plan, &planned) {
        panic!("the checker rejects `{}`:\n{}", g.name, e.join("\n"));
    }
    (plan, planned)
}

#[test]
fn merged_plans_have_fewer_kernels_that_validate_and_pass_the_checker() {
    for kind in [DeviceKind::Cpu, DeviceKind::Gpu] {
        // The critic's forward pass is a chain: nothing to merge.
        let cases = [("generator", false), ("generator", true), ("critic", true)];
        for (name, train) in cases {
            let input = if name == "critic" { "image" } else { "blurred" };
            let g = graph(name, input, train);
            let (merged, _) = plan(&g, &target(kind, true));
            let (single, _) = plan(&g, &target(kind, false));
            let what = format!("{name} (train {train}, {kind:?})");
            assert_eq!(merged.unmerged_kernels, single.kernels.len(), "{what}");
            assert!(
                merged.kernels.len() < single.kernels.len(),
                "{what}: {} kernels merged, {} not",
                merged.kernels.len(),
                single.kernels.len()
            );
            for k in merged.kernels.iter().filter(|k| !k.parts.is_empty()) {
                let module = naga::front::wgsl::parse_str(&k.wgsl)
                    .unwrap_or_else(|e| panic!("{what}: `{}`: {e}", k.name));
                naga::valid::Validator::new(Default::default(), naga::valid::Capabilities::all())
                    .validate(&module)
                    .unwrap_or_else(|e| panic!("{what}: `{}`: {e:?}", k.name));
            }
        }
    }
}

#[test]
fn the_inception_branches_run_as_one_dispatch() {
    let g = graph("generator", "blurred", false);
    let (p, _) = plan(&g, &target(DeviceKind::Cpu, true));
    let convs: Vec<&str> = ["i1", "i2a", "i3a"]
        .iter()
        .map(|b| format!("ird.0.inception.{b}.conv"))
        .map(|n| {
            let k = (p.kernels.iter()).find(|k| k.nodes.contains(&n)).unwrap();
            k.name.as_str()
        })
        .collect();
    assert!(convs.iter().all(|k| *k == convs[0]), "{convs:?}");
    assert!(convs[0].contains(" + "), "{}", convs[0]);
}

#[test]
fn the_checker_rejects_a_merged_kernel_whose_parts_depend_on_each_other() {
    let g = graph("generator", "blurred", false);
    let (mut p, planned) = plan(&g, &target(DeviceKind::Cpu, true));
    let k = (p.kernels.iter_mut()).find(|k| k.parts.len() >= 2).unwrap();
    let written = k.parts[0].writes[0];
    k.parts[1].reads.push(written);
    let (first, second) = (k.parts[0].name.clone(), k.parts[1].name.clone());
    let name = k.name.clone();
    let value = planned.nodes[written].name.clone();
    let errors = verify(&p, &planned).unwrap_err();
    assert_eq!(
        errors,
        [format!(
            "merged kernel `{name}`: part `{first}` writes `{value}`, and part `{second}` uses \
             `{value}` in the same bytes, in the same dispatch"
        )]
    );
}
