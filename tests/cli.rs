//! The `irdc` binary end to end: what a user types, what they read back, and the exit code.

mod cli_support;

use cli_support::*;
use ir::Tensor;
use runtime::io::write_tensors;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    scratch_in("cli", name)
}

fn save(path: &Path, tensors: Vec<(&str, Vec<usize>)>) {
    let ts: Vec<(String, Tensor<f32>)> = tensors
        .into_iter()
        .map(|(n, s)| {
            let len = s.iter().product::<usize>();
            (
                n.to_string(),
                Tensor::new(
                    &s,
                    (0..len).map(|i| ((i % 17) as f32 / 8.5) - 1.0).collect(),
                ),
            )
        })
        .collect();
    write_tensors(path, &ts, &HashMap::new()).unwrap();
}

fn assert_fails_with(o: &Output, message: &str) {
    assert!(
        !o.status.success(),
        "expected failure, got success; stdout: {}",
        stdout(o)
    );
    assert_eq!(stderr(o).trim_end(), message);
}

#[test]
fn check_summarises_every_graph() {
    let o = irdc(&["check", "models/ird_gan.ron", "--set", "N=8"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("models/ird_gan.ron: ok\n"), "{out}");
    for graph in ["generator:", "critic:", "vgg19:"] {
        assert!(out.contains(graph), "{out}");
    }
    assert!(
        out.contains("output sharp        [1, 3, 256, 256]"),
        "{out}"
    );
}

#[test]
fn params_lists_names_shapes_and_total() {
    let o = irdc(&["params", "models/ird_gan.ron", "--graph", "vgg19"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let first = out.lines().next().unwrap();
    assert_eq!(
        first.split_whitespace().collect::<Vec<_>>(),
        ["features.0.weight", "64x3x3x3", "1,728"]
    );
    // conv1_1..conv3_3 of VGG19: 7 convs, weights and biases.
    assert_eq!(
        out.lines().last().unwrap(),
        "total: 1,735,488 parameters in 14 tensors"
    );
}

#[test]
fn a_bad_set_is_an_error() {
    let o = irdc(&["check", "models/ird_gan.ron", "--set", "N"]);
    assert_fails_with(&o, "error: --set `N`: expected NAME=NUMBER, e.g. --set N=8");
}

#[test]
fn a_missing_model_file_is_an_error_naming_it() {
    let o = irdc(&["check", "models/nope.ron"]);
    assert_fails_with(&o, "error: cannot read the model file `models/nope.ron`: No such file or directory (os error 2); give the path of a .ron model, e.g. models/ird_gan.ron");
}

/// The I/O error shows once, not again as the cause of the message that already quotes it.
#[test]
fn a_missing_input_file_is_one_error_naming_it() {
    let o = irdc(&[
        "run",
        "models/ird_gan.ron",
        "--graph",
        "generator",
        "--input",
        "no/such.safetensors",
        "--output",
        "out.safetensors",
    ]);
    assert_fails_with(
        &o,
        "error: cannot read tensor file no/such.safetensors: No such file or directory (os error 2)",
    );
}

#[test]
fn an_unknown_graph_lists_the_graphs() {
    let o = irdc(&["params", "models/ird_gan.ron", "--graph", "gen"]);
    assert_fails_with(
        &o,
        "error: models/ird_gan.ron: no graph named `gen`; the model has: generator, critic, vgg19, critic_loss, generator_loss, content_loss",
    );
}

#[test]
fn run_rejects_an_input_of_the_wrong_name() {
    let input = scratch("wrong-name.safetensors");
    save(&input, vec![("image", vec![1, 3, 16, 16])]);
    let out = scratch("o1.safetensors");
    let o = irdc(&[
        "run",
        "models/ird_gan.ron",
        "--set",
        "N=8",
        "--graph",
        "generator",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_fails_with(
        &o,
        &format!("error: {}: no tensor named `blurred`, the input of graph generator (shape [1, 3, 256, 256]); the file holds: image", input.display()),
    );
}

#[test]
fn run_rejects_an_input_of_the_wrong_channels() {
    let input = scratch("wrong-shape.safetensors");
    save(&input, vec![("blurred", vec![1, 4, 16, 16])]);
    let out = scratch("o2.safetensors");
    let o = irdc(&[
        "run",
        "models/ird_gan.ron",
        "--set",
        "N=8",
        "--graph",
        "generator",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_fails_with(
        &o,
        &format!("error: {}: tensor `blurred` has shape [1, 4, 16, 16]; graph generator takes [1, 3, 256, 256] (batch and spatial sizes may differ, rank and channels may not)", input.display()),
    );
}

#[test]
fn run_rejects_weights_with_a_missing_or_misshaped_tensor() {
    let input = scratch("in3.safetensors");
    save(&input, vec![("blurred", vec![1, 3, 16, 16])]);
    let out = scratch("o3.safetensors");
    let weights = scratch("w3.safetensors");
    save(&weights, vec![("head.weight", vec![8, 3, 7, 7])]);
    let args = |w: &str| {
        irdc(&[
            "run",
            "models/ird_gan.ron",
            "--set",
            "N=8",
            "--graph",
            "generator",
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--weights",
            w,
        ])
    };
    let o = args(weights.to_str().unwrap());
    assert!(!o.status.success());
    assert!(
        stderr(&o).starts_with(&format!("error: {}: no tensor named `", weights.display())),
        "{}",
        stderr(&o)
    );

    save(&weights, vec![("head_conv.weight", vec![8, 3, 5, 5])]);
    let o = args(weights.to_str().unwrap());
    assert_fails_with(
        &o,
        &format!("error: {}: tensor `head_conv.weight` has shape [8, 3, 5, 5], the graph expects [8, 3, 7, 7]", weights.display()),
    );
}

#[test]
fn no_adapter_says_how_to_get_lavapipe() {
    let input = scratch("in4.safetensors");
    save(&input, vec![("blurred", vec![1, 3, 16, 16])]);
    let out = scratch("o4.safetensors");
    // Linux has no Metal: asking for it alone leaves no adapter, as on a machine with no GPU driver.
    let o = Command::new(env!("CARGO_BIN_EXE_irdc"))
        .args([
            "run",
            "models/ird_gan.ron",
            "--set",
            "N=8",
            "--graph",
            "generator",
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("IRDC_BACKEND", "metal")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("mesa-vulkan-drivers"), "{err}");
}

#[test]
fn run_writes_the_generator_output_and_the_seeded_weights() {
    let input = scratch("in5.safetensors");
    save(&input, vec![("blurred", vec![1, 3, 16, 20])]);
    let out = scratch("o5.safetensors");
    let weights = scratch("w5.safetensors");
    let o = irdc(&[
        "run",
        "models/ird_gan.ron",
        "--set",
        "N=4",
        "--graph",
        "generator",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--seed",
        "3",
        "--save-weights",
        weights.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = runtime::io::read_tensors(&out).unwrap();
    let sharp = written
        .get("sharp")
        .expect("the generator's output is named sharp");
    assert_eq!(sharp.shape, vec![1, 3, 16, 20]);
    assert!(sharp.data.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
    // Running again from the saved weights gives the same output.
    let out2 = scratch("o5b.safetensors");
    let o = irdc(&[
        "run",
        "models/ird_gan.ron",
        "--set",
        "N=4",
        "--graph",
        "generator",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out2.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        runtime::io::read_tensors(&out2)
            .unwrap()
            .get("sharp")
            .unwrap(),
        sharp
    );
}

#[test]
fn a_model_error_names_file_line_and_column() {
    let model = scratch("bad.ron");
    std::fs::write(
        &model,
        "Model(\n  params: { N: 4 },\n  graphs: {\n    g: Graph(\n      inputs: { x: [1, 3, 8, 8] },\n      nodes: { y: Conv3(in: x, out: N, kernel: 3) },\n      outputs: { y: y },\n    ),\n  },\n)\n",
    )
    .unwrap();
    let o = irdc(&["check", model.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "{}:6:19: error: in g.y: unknown op `Conv3`",
            model.display()
        )),
        "{err}"
    );
}

/// `--precision`: f16 plans say what their GEMMs multiply in, and the JSON plan's target
/// records it; a precision or a matrix side that does not exist is refused, by name.
#[test]
fn plan_shows_the_precision_and_refuses_unknown_ones() {
    let plan = |extra: &[&str]| plan_small_generator(extra, &[]);
    let o = plan(&["--precision", "f16", "--coop-matrix", "16"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fourth = stdout(&o).lines().nth(3).unwrap_or_default().to_string();
    assert_eq!(
        fourth,
        "precision f16: every GEMM on 16x16 cooperative matrices (f16 operands, f32 sums)"
    );
    let o = plan(&["--precision", "f16", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["target"]["precision"], "f16");
    assert_eq!(json["target"]["limits"]["coop_matrix"], 0);
    assert_fails_with(
        &plan(&["--precision", "f64"]),
        "error: invalid value 'f64' for '--precision <f32|f16>': precision `f64` is not one of \
         f32, f16\n\nFor more information, try '--help'.",
    );
    assert_fails_with(
        &plan(&["--precision", "f16", "--coop-matrix", "12"]),
        "error: --coop-matrix 12: wgpu's cooperative matrices are 8x8 or 16x16",
    );
}

/// `irdc check` refuses the training sections `irdc train` refuses, by the same rules, at the
/// value's file:line:col with the range allowed: each case is models/ird_gan.ron with one edit
/// (`from` -> `to`, the value `at` bytes into `to`), or a `--set` of a parameter it uses.
#[test]
fn check_refuses_a_bad_training_section_where_train_would() {
    let source = std::fs::read_to_string("models/ird_gan.ron").unwrap();
    let cases: [(&str, &str, usize, &str, &str); 10] = [
        ("seed: 0,", "seed: 0, lrr: 1,", 9, "", "Training has no field `lrr`; expected one of generator, critic, critic_loss, generator_loss, content_loss, critic_steps, batch, crop, sample_every, checkpoint_every, seed, optimizer, schedule, data, warmup, validate_every, val_images, val_size, ema, val_data"),
        ("Adam(lr: lr,", "Adam(lr: -1,", 9, "", "Adam `lr` must be >= 0, found -1"),
        ("Adam(lr: lr,", "Adam(lr: lr,", 9, "lr=-1", "Adam `lr` must be >= 0, found -1"),
        ("checkpoint_every: 1000", "checkpoint_every: 0", 18, "", "`checkpoint_every` must be a whole number >= 1, found 0"),
        ("decay_after: 0.5", "decay_after: 2.5", 13, "", "`decay_after` is a fraction of the run in [0, 1], found 2.5"),
        ("batch: batch,", "batch: batch,", 7, "batch=0", "`batch` must be a whole number >= 1, found 0 (from `batch`)"),
        ("crop: H,", "crop: 0,", 6, "", "`crop` must be a whole number >= 4, found 0"),
        ("critic_steps: critic_steps,", "critic_steps: 0,", 14, "", "`critic_steps` must be a whole number >= 1, found 0"),
        ("epochs: 300", "epochs: 0", 8, "", "`epochs` must be a whole number >= 1, found 0"),
        ("eps: 1e-8", "eps: -1e-8", 5, "", "Adam `eps` must be > 0, found -0.00000001"),
    ];
    for (i, (from, to, at, set, message)) in cases.into_iter().enumerate() {
        assert_eq!(source.matches(from).count(), 1, "{from}");
        let text = source.replacen(from, to, 1);
        let offset = text.find(to).unwrap() + at;
        let line = text[..offset].matches('\n').count() + 1;
        let col = offset - text[..offset].rfind('\n').map_or(0, |n| n + 1) + 1;
        let model = scratch(&format!("training_{i}.ron"));
        std::fs::write(&model, &text).unwrap();
        let mut args = vec!["check", model.to_str().unwrap()];
        if !set.is_empty() {
            args.extend(["--set", set]);
        }
        assert_fails_with(
            &irdc(&args),
            &format!("{}:{line}:{col}: error: {message}", model.display()),
        );
    }
}
