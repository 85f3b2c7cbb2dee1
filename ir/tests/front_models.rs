//! The shipped models build with the shapes and parameters docs/spec.md gives, and the language's
//! expansion computes what it says (checked on the CPU reference).

use ir::front::{self, Kind};
use ir::{cpu, Graph, Tensor};
use std::collections::HashMap;
use std::path::Path;

fn model(file: &str, overrides: &[(&str, &str)]) -> front::Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(file);
    let o: Vec<(String, String)> = overrides
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    front::load(&path, &o).unwrap_or_else(|e| panic!("{e}"))
}

fn param_count(g: &Graph) -> usize {
    g.params().map(|(_, n)| ir::numel(&n.shape)).sum()
}

fn output_shape(g: &Graph, name: &str) -> Vec<usize> {
    let id = g.outputs.iter().find(|(n, _)| n == name).expect("output").1;
    g.nodes[id].shape.clone()
}

#[test]
fn ird_gan_generator_at_n64() {
    let m = model("ird_gan.ron", &[]);
    assert_eq!(
        m.graph_names(),
        [
            "generator",
            "critic",
            "vgg19",
            "critic_loss",
            "generator_loss",
            "content_loss"
        ]
    );
    assert_eq!(
        m.input_shapes("generator").unwrap(),
        [("blurred".to_string(), vec![1, 3, 256, 256])]
    );
    let g = m.build("generator", &[]).unwrap();
    // docs/spec.md says "about 5.34 M"; counted by hand: head 9,472, down 369,024, IRD blocks
    // 999 N^2 + 108 N = 4,098,816, transitions 488,128, up 368,832, tail 9,411.
    assert_eq!(param_count(&g), 5_343_683);
    assert_eq!(output_shape(&g, "sharp"), [1, 3, 256, 256]);
    // Node paths: repetition 3 of `ird`, its inception block, branch i2, the CBR's conv.
    let w = g
        .find("ird.3.inception.i2.conv.weight")
        .expect("path of a nested conv weight");
    assert_eq!(g.nodes[w].shape, [64, 64, 3, 3]);
    let b = g.find("ird.8.b.weight").unwrap();
    assert_eq!(g.nodes[b].shape, [256, 12 * 64, 1, 1]);
    let last = g.find("ird.8.out").unwrap();
    assert_eq!(g.nodes[last].shape, [1, 13 * 64, 64, 64]);
    let convt = g.find("up1.conv.weight").unwrap();
    assert_eq!(
        g.nodes[convt].shape,
        [256, 128, 3, 3],
        "ConvT weights are [C, O, k, k]"
    );
}

#[test]
fn ird_gan_small_with_set() {
    let m = model("ird_gan.ron", &[("N", "8")]);
    assert_eq!(m.params()["N"], 8.0);
    let g = m
        .build("generator", &[("blurred".into(), vec![1, 3, 32, 32])])
        .unwrap();
    assert_eq!(output_shape(&g, "sharp"), [1, 3, 32, 32]);
    // All of it is in N: 1298 N^2 + 423 N + 3 (5,343,683 at N = 64).
    assert_eq!(param_count(&g), 1298 * 64 + 423 * 8 + 3);
}

#[test]
fn ird_gan_critic_score_map() {
    let g = model("ird_gan.ron", &[]).build("critic", &[]).unwrap();
    assert_eq!(output_shape(&g, "score"), [1, 1, 35, 35]);
    assert_eq!(param_count(&g), 2_764_737);
}

#[test]
fn ird_gan_vgg19_has_torchvision_names() {
    let g = model("ird_gan.ron", &[]).build("vgg19", &[]).unwrap();
    let names: Vec<&str> = g.params().map(|(_, n)| n.name.as_str()).collect();
    let mut want = Vec::new();
    for i in [0, 2, 5, 7, 10, 12, 14] {
        want.push(format!("features.{i}.weight"));
        want.push(format!("features.{i}.bias"));
    }
    assert_eq!(names, want);
    let shapes: Vec<Vec<usize>> = g.params().map(|(_, n)| n.shape.clone()).collect();
    assert_eq!(shapes[0], [64, 3, 3, 3]);
    assert_eq!(shapes[13], [256]);
    // Ends at conv3_3 before its ReLU, at a quarter of the input size.
    let (_, out) = g.outputs[0];
    assert_eq!(g.nodes[out].name, "features.14");
    assert_eq!(g.nodes[out].op.kind_name(), "conv2d");
    assert_eq!(g.nodes[out].shape, [1, 256, 64, 64]);
}

#[test]
fn deblurgan_generator_builds() {
    let g = model("deblurgan.ron", &[]).build("generator", &[]).unwrap();
    assert_eq!(output_shape(&g, "sharp"), [1, 3, 256, 256]);
    // DeblurGAN's ResnetGenerator with 9 blocks and biased convs: 11.38 M parameters.
    assert_eq!(param_count(&g), 11_378_179);
    assert!(g.find("res.8.conv2.weight").is_some());
    assert_eq!(
        g.nodes
            .iter()
            .filter(|n| n.op.kind_name() == "dropout")
            .count(),
        9
    );
}

/// DeblurGAN trains as IRD-GAN does: its critic and VGG19 are the same networks with the same
/// parameter names (so one `--vgg19` file serves both), and its losses read the trained networks.
#[test]
fn deblurgan_critic_and_vgg19_are_ird_gans() {
    let (d, i) = (model("deblurgan.ron", &[]), model("ird_gan.ron", &[]));
    assert_eq!(
        d.graph_names(),
        [
            "generator",
            "critic",
            "vgg19",
            "critic_loss",
            "generator_loss"
        ]
    );
    let params = |m: &front::Model, g: &str| -> Vec<(String, Vec<usize>)> {
        let g = m.build(g, &[]).unwrap();
        g.params()
            .map(|(_, n)| (n.name.clone(), n.shape.clone()))
            .collect()
    };
    for g in ["critic", "vgg19"] {
        assert_eq!(params(&d, g), params(&i, g), "{g}");
    }
    let critic = d.build("critic", &[]).unwrap();
    assert_eq!(param_count(&critic), 2_764_737);
    assert_eq!(param_count(&d.build("vgg19", &[]).unwrap()), 1_735_488);
    // generator_loss reads G, D and VGG19; its parts are named as the trainer reports them, and it
    // has no L1 term (DeblurGAN has none).
    let gl = d.build("generator_loss", &[]).unwrap();
    let prefixes: std::collections::BTreeSet<&str> = gl
        .params()
        .map(|(_, n)| n.name.split('.').next().unwrap())
        .collect();
    assert_eq!(Vec::from_iter(prefixes), ["critic", "generator", "vgg19"]);
    assert!(gl.find("adversarial").is_some() && gl.find("perceptual").is_some());
    assert!(gl.find("l1").is_none());
    // critic_loss holds a Grad, which only the compiler's autodiff builds: tests/train_deblurgan.rs
    // trains with it.
}

#[test]
fn deblurgan_training_section_is_deblurgans_setup() {
    use front::{AdamSpec, DataDefault, Length, TrainingSpec};
    let spec = model("deblurgan.ron", &[]).training_spec().unwrap();
    let expected = TrainingSpec {
        generator: "generator".into(),
        critic: Some("critic".into()),
        critic_loss: "critic_loss".into(),
        generator_loss: "generator_loss".into(),
        critic_steps: 5,
        adam: AdamSpec {
            lr: 1e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
        },
        length: Length::Epochs(300),
        decay_after: 0.5,
        batch: 1,
        crop: 256,
        seed: 0,
        sample_every: 500,
        checkpoint_every: 1000,
        data: DataDefault::Procedural,
        // No recipes (DeblurGAN has none); validation as sample_every.
        ..Default::default()
    };
    assert_eq!(spec, expected);
    // The params of ird_gan.ron's names drive it the same way.
    let small = model(
        "deblurgan.ron",
        &[("H", "16"), ("lr", "2e-3"), ("critic_steps", "2")],
    )
    .training_spec()
    .unwrap();
    assert_eq!(
        (small.crop, small.adam.lr, small.critic_steps),
        (16, 2e-3, 2)
    );
    let m = model("deblurgan.ron", &[("per_weight", "0"), ("ndf", "4")]);
    assert_eq!(m.params()["per_weight"], 0.0);
    assert_eq!(m.params()["gp_weight"], 10.0);
    assert_eq!(
        param_count(&m.build("critic", &[]).unwrap()),
        param_count(
            &model("ird_gan.ron", &[("ndf", "4")])
                .build("critic", &[])
                .unwrap()
        )
    );
}

#[test]
fn training_section_is_kept_as_written() {
    let src = "Model(graphs: {}, training: (critic_steps: 5, losses: [l1(170)]))";
    let m = front::parse(src, "t.ron", &[]).unwrap();
    let Kind::Struct(None, fields) = &m.training().unwrap().kind else {
        panic!()
    };
    assert_eq!(fields[0].0.name, "critic_steps");
    assert_eq!(fields[0].1.kind, Kind::Num(5.0));
    assert!(front::parse("Model(graphs: {})", "t.ron", &[])
        .unwrap()
        .training()
        .is_none());
}

/// Blocks, repetition with its index, Seq and any node order, evaluated on the CPU:
/// y = ((x * 2 + 0) * 2 + 1) * 2 + 2 = 8x + 4, then + 10 and ReLU through a Seq.
#[test]
fn expansion_computes_what_it_says() {
    let src = r#"Model(
        params: { C: 2 },
        blocks: {
            Step: Block(args: [k], inputs: { x: "C" }, nodes: { y: Affine(in: x, scale: 2, shift: k) }, output: y),
        },
        graphs: {
            g: Graph(
                inputs: { x: [1, C, 1, 2] },
                nodes: {
                    out: Seq(in: rep, layers: [Affine(scale: 1, shift: 10), Relu]),
                    rep: Repeat(block: Step, times: 3, index: i, x: x, k: i),
                },
                outputs: { y: out },
            ),
        },
    )"#;
    let g = front::parse(src, "t.ron", &[])
        .unwrap()
        .build("g", &[])
        .unwrap();
    let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        ["x", "rep.0.y", "rep.1.y", "rep.2.y", "out.0", "out.1"]
    );
    let x = Tensor::new(&[1, 2, 1, 2], vec![-3.0f64, -1.0, 0.0, 1.0]);
    let feeds = HashMap::from([("x".to_string(), x)]);
    let values = cpu::evaluate(&g, &feeds).unwrap();
    let y = &values[g.outputs[0].1];
    assert_eq!(y.data, [0.0, 6.0, 14.0, 22.0]);
}

#[test]
fn ird_generator_runs_on_the_cpu_at_tiny_size() {
    let m = model("ird_gan.ron", &[("N", "2")]);
    let g = m
        .build("generator", &[("blurred".into(), vec![1, 3, 8, 8])])
        .unwrap();
    let mut feeds: HashMap<String, Tensor<f32>> =
        ir::init::init_params(&g, 7).into_iter().collect();
    let x: Vec<f32> = (0..192)
        .map(|i| ((i * 37) % 200) as f32 / 100.0 - 1.0)
        .collect();
    feeds.insert("blurred".into(), Tensor::new(&[1, 3, 8, 8], x));
    let values = cpu::evaluate(&g, &feeds).unwrap();
    let y = &values[g.outputs[0].1];
    assert_eq!(y.shape, [1, 3, 8, 8]);
    assert!(y.data.iter().all(|v| (-1.0..=1.0).contains(v)));
}

#[test]
fn set_arguments() {
    assert_eq!(
        front::parse_set("N=8").unwrap(),
        ("N".to_string(), "8".to_string())
    );
    assert_eq!(
        front::parse_set(" ndf = 16 ").unwrap(),
        ("ndf".to_string(), "16".to_string())
    );
}

/// NAFNet's parameters, counted per part: a NAF block at c channels has 7c^2 + 33c (1x1 convs
/// c -> 2c, c -> c twice, c -> 2c, c -> c with biases: 7c^2 + 7c; the depthwise 3x3 on 2c
/// channels 20c; two layer norms 4c; beta and gamma 2c), a down 2x2 conv c -> 2c 8c^2 + 2c, an
/// up 1x1 conv c -> 2c without bias 2c^2, the intro 3x3 conv 3 -> w 28w, the ending w -> 3 27w + 3.
fn nafnet_params(w: usize, enc: [usize; 4], middle: usize, dec: [usize; 4]) -> usize {
    let block = |c: usize| 7 * c * c + 33 * c;
    let mut total = 28 * w + 27 * w + 3;
    for (level, (&e, &d)) in enc.iter().zip(dec.iter().rev()).enumerate() {
        let c = w << level;
        total += e * block(c) + 8 * c * c + 2 * c; // encoder blocks and the down conv
        total += 2 * (2 * c) * (2 * c) + d * block(c); // the up conv into this level, its decoder
    }
    total + middle * block(16 * w)
}

#[test]
fn nafnet_has_the_papers_parameter_count() {
    // NAFNet-width32 for GoPro (the file's defaults): 17.11 M in the paper.
    let g = model("nafnet.ron", &[]).build("generator", &[]).unwrap();
    assert_eq!(param_count(&g), 17_111_907);
    assert_eq!(
        param_count(&g),
        nafnet_params(32, [1, 1, 1, 28], 1, [1, 1, 1, 1])
    );
    assert_eq!(output_shape(&g, "sharp"), [1, 3, 256, 256]);
    let set = [
        ("width", "16"),
        ("enc4", "1"),
        ("middle", "2"),
        ("dec1", "2"),
    ];
    let g = model("nafnet.ron", &set).build("generator", &[]).unwrap();
    assert_eq!(
        param_count(&g),
        nafnet_params(16, [1, 1, 1, 1], 2, [1, 1, 1, 2])
    );
    // Each block's per-channel scales, named by path, start at 0.
    let beta = g.find("e4.0.beta").expect("the first deep block's beta");
    assert_eq!(g.nodes[beta].shape, [1, 128, 1, 1]);
}

/// The U-Net at width 32: a double 3x3 conv from c_in to c has 9 c_in c + 9 c^2 + 2c; the levels
/// 3 -> 32 -> 64 -> 128 -> 256 (bottom), up again with a 1x1 conv (c_in c + c) before each
/// concatenation, whose double conv reads 2c; and the 1x1 conv to RGB.
#[test]
fn unet_parameter_count() {
    let double = |cin: usize, c: usize| 9 * cin * c + 9 * c * c + 2 * c;
    let up = |cin: usize, c: usize| cin * c + c + double(2 * c, c);
    let want = double(3, 32)
        + double(32, 64)
        + double(64, 128)
        + double(128, 256)
        + up(256, 128)
        + up(128, 64)
        + up(64, 32)
        + 32 * 3
        + 3;
    let g = model("unet.ron", &[]).build("generator", &[]).unwrap();
    assert_eq!(param_count(&g), want);
    assert_eq!(want, 1_796_643);
    assert_eq!(output_shape(&g, "sharp"), [1, 3, 256, 256]);
}

#[test]
fn the_readme_model_builds_and_widens_with_n() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"));
    let readme = readme.unwrap();
    let start = readme.find("```ron\n").expect("README has a RON model") + "```ron\n".len();
    let src = &readme[start..start + readme[start..].find("```").unwrap()];
    let params = |n: &str| {
        let m = front::parse(src, "README.md", &[("N".into(), n.into())]).unwrap();
        let g = m.build("net", &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(output_shape(&g, "sharp"), [1, 3, 64, 64]);
        param_count(&g)
    };
    // Three CBR blocks of N, 2N and 3N channels, then a 1x1 conv to RGB, each with a bias.
    let expect = |n: usize| {
        (3 * 9 + 1) * n + (n * 9 + 1) * 2 * n + (2 * n * 9 + 1) * 3 * n + (3 * n + 1) * 3
    };
    assert_eq!(params("8"), expect(8));
    assert_eq!(params("16"), expect(16));
}
