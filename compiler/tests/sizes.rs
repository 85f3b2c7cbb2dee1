//! Kernels that take sizes as data (`compiler::Sizes::Data`): every model's generator, forward
//! and differentiated, planned at two image sizes for a GPU and for a CPU adapter, is the same
//! set of WGSL at both (so one set of pipelines serves both), and every kernel validates. The
//! same plans specialised differ. (On the device against the CPU reference: tests/gpu_sizes.rs.)

mod model_support;

use compiler::{compile, verify::verify, DeviceKind, Overrides, Sizes, Target};
use ir::Graph;
use model_support::model_graph;
use std::collections::BTreeSet;

fn generator(model: &str, h: usize, w: usize, train: bool) -> Graph {
    model_graph((model, &[]), ("generator", "blurred"), [h, w], train)
}

fn target(kind: DeviceKind, sizes: Sizes) -> Target {
    model_support::target(kind, &Overrides::default()).with_sizes(sizes)
}

/// The distinct WGSL of the plan, each validated, and the plan checked.
fn kernels(g: &Graph, target: &Target) -> BTreeSet<String> {
    let (plan, planned) = compile(g, target).unwrap_or_else(|e| panic!("{}: {e}", g.name));
    if let Err(e) = verify(&plan, &planned) {
        panic!("the checker rejects `{}`:\n{}", g.name, e.join("\n"));
    }
    let mut wgsl = BTreeSet::new();
    for k in &plan.kernels {
        if wgsl.insert(k.wgsl.clone()) {
            if let Err(e) = compiler::codegen::validate_wgsl(&k.wgsl) {
                panic!("{} does not validate:\n{e}\n{}", k.name, k.wgsl);
            }
        }
    }
    wgsl
}

/// The forward graphs of every model, and the training graphs of those whose graphs hold no
/// constant derived from the image size (NAFNet's attention pools a mean, whose gradient the IR
/// writes as a scale by 1 / pixels: a training step is planned for one crop size anyway).
#[test]
fn one_set_of_kernels_serves_every_size() {
    let cases = [
        ("ird_gan.ron", true),
        ("deblurgan.ron", true),
        ("unet.ron", true),
        ("nafnet.ron", false),
    ];
    let graphs = cases.iter().flat_map(|&(m, train)| {
        let modes: &[bool] = if train { &[false, true] } else { &[false] };
        modes.iter().map(move |&t| (m, t))
    });
    for ((model, train), kind) in graphs.flat_map(|g| [(g, DeviceKind::Cpu), (g, DeviceKind::Gpu)])
    {
        let what = format!("{model} (train {train}, {kind:?})");
        let (a, b) = (
            generator(model, 48, 64, train),
            generator(model, 80, 112, train),
        );
        let data = target(kind, Sizes::Data);
        let (ka, kb) = (kernels(&a, &data), kernels(&b, &data));
        let new: Vec<_> = kb.difference(&ka).collect();
        assert!(
            new.is_empty(),
            "{what}: {} kernels new at 80x112:\n{}",
            new.len(),
            new[0]
        );
        let fixed = target(kind, Sizes::Specialised);
        let (fa, fb) = (kernels(&a, &fixed), kernels(&b, &fixed));
        assert!(
            fb.difference(&fa).count() > fb.len() / 2,
            "{what}: specialised"
        );
    }
}

#[test]
fn a_plan_says_how_its_kernels_take_sizes() {
    let g = generator("unet.ron", 32, 32, false);
    for (sizes, line) in [
        (
            Sizes::Specialised,
            "sizes: specialised (every kernel compiled for this size)",
        ),
        (
            Sizes::Data,
            "sizes: as data (kernels read image sizes from their uniform: one set of pipelines \
             for every size)",
        ),
    ] {
        let (plan, _) = compile(&g, &target(DeviceKind::Cpu, sizes)).unwrap();
        let text = compiler::print::text(&plan, false);
        assert!(text.lines().any(|l| l == line), "{text}");
    }
}
