//! `irdc import`: ONNX models made by the `onnx` package (tests/onnx/make_models.py) imported,
//! run on the device with `irdc run`, and held against the `onnx` reference evaluator's output;
//! and the errors a user meets.

mod cli_support;
mod onnx_made;

use cli_support::*;
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    scratch_in("import", name)
}

fn fails_with(args: &[&str], message: &str) {
    let o = irdc(args);
    assert!(
        !o.status.success(),
        "expected failure; stderr: {}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).trim_end(), message);
}

/// Import `tests/onnx/NAME.onnx` to scratch model file `out` with `extra` options; its path.
fn import(name: &str, out: &str, extra: &[&str]) -> PathBuf {
    let ron = scratch(out);
    let onnx = format!("tests/onnx/{name}.onnx");
    let mut args = vec!["import", &onnx, "--out", ron.to_str().unwrap(), "--force"];
    args.extend_from_slice(extra);
    let o = irdc(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    ron
}

/// Run the imported model on the test input with the imported weights, and compare every
/// output with the reference evaluator's.
fn runs_as_the_reference(name: &str, ron: &Path) {
    let out = scratch(&format!("{name}.out.safetensors"));
    let weights = ron.with_extension("safetensors");
    let input = format!("tests/onnx/{name}.input.safetensors");
    let o = irdc(&[
        "run",
        ron.to_str().unwrap(),
        "--graph",
        "model",
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        &input,
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = runtime::io::read_tensors(&out).unwrap();
    let want =
        runtime::io::read_tensors(format!("tests/onnx/{name}.expected.safetensors").as_ref())
            .unwrap();
    assert_eq!(got.tensors.len(), want.tensors.len());
    for (n, w) in &want.tensors {
        let g = got.get(n).unwrap_or_else(|| panic!("no output `{n}`"));
        assert_eq!(g.shape, w.shape, "{n}");
        for (i, (a, b)) in g.data.iter().zip(&w.data).enumerate() {
            assert!((a - b).abs() <= 1e-4, "{n}[{i}]: irdc {a}, reference {b}");
        }
    }
}

#[test]
fn a_conv_net_runs_as_the_reference_evaluator_does() {
    let ron = import("convnet", "convnet.ron", &[]);
    let weights = runtime::io::read_tensors(&ron.with_extension("safetensors")).unwrap();
    let mut names: Vec<&str> = weights.tensors.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    // The convs keep the names PyTorch gave their weights; the norm's affine is two Params.
    assert_eq!(
        names,
        [
            "c1.bias",
            "c1.weight",
            "c2.weight",
            "dw.bias",
            "dw.weight",
            "norm_bias",
            "norm_weight",
            "up.bias",
            "up.weight"
        ]
    );
    assert_eq!(weights.get("norm_weight").unwrap().shape, [1, 8, 1, 1]);
    assert_eq!(weights.get("up.weight").unwrap().shape, [8, 3, 3, 3]);
    runs_as_the_reference("convnet", &ron);
}

#[test]
fn elementwise_ops_pad_norms_and_reductions_run_as_the_reference_evaluator_does() {
    let ron = import("elementwise", "elementwise.ron", &["--input", "x=1x2x5x5"]);
    let weights = runtime::io::read_tensors(&ron.with_extension("safetensors")).unwrap();
    let mut names: Vec<&str> = weights.tensors.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    // The batch norm's statistics are folded into its scale and shift.
    assert_eq!(names, ["bn_bias", "bn_weight", "shift"]);
    runs_as_the_reference("elementwise", &ron);
}

#[test]
fn layout_attention_and_head_ops_run_as_the_reference_evaluator_does() {
    let ron = import("layout", "layout.ron", &[]);
    let text = std::fs::read_to_string(&ron).unwrap();
    // Reshape's 0 and -1 are resolved from the input's shape; a weight matrix gains batch axes.
    for line in [
        "split_q: Reshape(in: down, shape: [1, 2, 2, 16])",
        "proj_weight: Param(shape: [1, 1, 4, 3])",
        "up_nearest: Resize(in: unshuffle, factor: 2, mode: \"nearest\")",
        "up_linear: Resize(in: x, factor: 2, mode: \"bilinear\")",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let weights = runtime::io::read_tensors(&ron.with_extension("safetensors")).unwrap();
    let mut names: Vec<&str> = weights.tensors.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["fc_bias", "fc_weight", "proj_weight"]);
    runs_as_the_reference("layout", &ron);
}

#[test]
fn an_open_input_size_asks_for_the_shape() {
    let out = scratch("open.ron");
    fails_with(
        &[
            "import",
            "tests/onnx/elementwise.onnx",
            "--out",
            out.to_str().unwrap(),
        ],
        "error: tests/onnx/elementwise.onnx: input `x` has shape [N, 2, 5, 5], whose sizes are \
         not all fixed; give its shape with --input x=1x2x5x5",
    );
    assert!(!out.exists());
}

#[test]
fn every_unsupported_op_is_listed_with_its_nodes() {
    let out = scratch("unsupported.ron");
    fails_with(
        &[
            "import",
            "tests/onnx/unsupported.onnx",
            "--out",
            out.to_str().unwrap(),
        ],
        &format!(
            "error: tests/onnx/unsupported.onnx: 4 nodes irdc cannot import: Conv with dilations [2, 2] \
             (dilated); Gather (pick, pick2); Transpose (output y); irdc imports {IMPORTED} \
             (docs/onnx.md): replace the others in the model before exporting it"
        ),
    );
    assert!(!out.exists() && !out.with_extension("safetensors").exists());
}

#[test]
fn an_existing_model_file_is_replaced_only_with_force() {
    let ron = import("convnet", "existing.ron", &[]);
    let path = ron.to_str().unwrap();
    fails_with(
        &["import", "tests/onnx/convnet.onnx", "--out", path],
        &format!("error: {path} exists; pass --force to replace it"),
    );
    // The parameters file alone blocks it too: both are written together.
    std::fs::remove_file(&ron).unwrap();
    let weights = ron.with_extension("safetensors");
    fails_with(
        &["import", "tests/onnx/convnet.onnx", "--out", path],
        &format!(
            "error: {} exists; pass --force to replace it",
            weights.display()
        ),
    );
    let o = irdc(&[
        "import",
        "tests/onnx/convnet.onnx",
        "--out",
        path,
        "--force",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&ron).unwrap().contains("Model("));
}

#[test]
fn what_is_not_an_onnx_model_is_a_clear_error() {
    let out = scratch("bad.ron");
    let out = out.to_str().unwrap();
    fails_with(
        &["import", "tests/onnx/missing.onnx", "--out", out],
        "error: cannot read `tests/onnx/missing.onnx`; give the path of an .onnx file: No such \
         file or directory (os error 2)",
    );
    let empty = scratch("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let empty = empty.to_str().unwrap();
    fails_with(
        &["import", empty, "--out", out],
        &format!(
            "error: {empty}: not an ONNX model (no graph or no IR version); is it an .onnx file?"
        ),
    );
    let o = irdc(&["import", "models/ird_gan.ron", "--out", out]);
    assert!(!o.status.success());
    let prefix = "error: models/ird_gan.ron: not an ONNX model (the protobuf does not decode: ";
    assert!(stderr(&o).starts_with(prefix), "{}", stderr(&o));
}

fn write_made(name: &str, bytes: Vec<u8>) -> String {
    let path = scratch(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn uses_of_ops_irdc_has_but_not_so_are_listed_with_their_nodes() {
    use onnx_made::*;
    let mut foo = node("Foo", "foo", &["x"], vec![]);
    foo.domain = "com.example".into();
    let nodes = vec![
        node(
            "Conv",
            "skew",
            &["x", "w"],
            vec![ints("pads", &[0, 1, 0, 1])],
        ),
        node(
            "MaxPool",
            "ceil",
            &["x"],
            vec![ints("kernel_shape", &[2, 2]), int("ceil_mode", 1)],
        ),
        node(
            "Pad",
            "zeros",
            &["x"],
            vec![ints("pads", &[0, 0, 1, 1, 0, 0, 1, 1])],
        ),
        node(
            "ReduceMean",
            "flat",
            &["x"],
            vec![ints("axes", &[1]), int("keepdims", 0)],
        ),
        node("Gelu", "gelu", &["x"], vec![string("approximate", "erf")]),
        foo,
    ];
    let path = write_made(
        "uses.onnx",
        model(nodes, vec![zeros("w", &[4, 4, 3, 3])], 20),
    );
    let out = scratch("uses.ron");
    fails_with(
        &["import", &path, "--out", out.to_str().unwrap()],
        &format!(
            "error: {path}: 6 nodes irdc cannot import: Conv with pads [0, 1, 0, 1] (irdc takes \
             one for every side) (skew); Foo of domain `com.example` (foo); Gelu with \
             approximate `erf` (gelu); MaxPool with ceil_mode 1 (ceil); Pad in constant mode \
             (zeros); ReduceMean with keepdims 0 (irdc keeps the reduced axes) (flat); irdc \
             imports {IMPORTED} (docs/onnx.md): replace the others in the model before exporting \
             it"
        ),
    );
}

const IMPORTED: &str =
    "Abs, Add, AveragePool, BatchNormalization, Clip, Concat, Constant, Conv, ConvTranspose, \
    DepthToSpace, Div, Dropout, Erf, Exp, Flatten, Gelu, Gemm, GlobalAveragePool, Identity, \
    InstanceNormalization, LeakyRelu, Log, MatMul, Max, MaxPool, Min, Mul, Neg, Pad, ReduceMean, \
    ReduceSum, Relu, Reshape, Resize, Sigmoid, Softmax, Softplus, SpaceToDepth, Sqrt, Sub, Tanh";

#[test]
fn uses_of_layout_and_attention_ops_irdc_computes_otherwise_are_listed() {
    use onnx_made::*;
    let mut scales = zeros("scales", &[4]);
    scales.float_data = vec![1.0, 1.0, 1.5, 1.5];
    let nodes = vec![
        node("DepthToSpace", "dcr", &["x"], vec![int("blocksize", 2)]),
        node("SpaceToDepth", "s2d", &["x"], vec![int("blocksize", 2)]),
        node(
            "Resize",
            "cubic",
            &["x", "", "scales"],
            vec![string("mode", "cubic")],
        ),
        node("Resize", "third", &["x", "", "scales"], vec![]),
        node(
            "Resize",
            "corners",
            &["x", "", "scales"],
            vec![
                string("mode", "linear"),
                string("coordinate_transformation_mode", "align_corners"),
            ],
        ),
        node(
            "AveragePool",
            "exclusive",
            &["x"],
            vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1])],
        ),
        node("MatMul", "vec", &["x", "v"], vec![]),
        node("Reshape", "r5", &["x", "five"], vec![]),
        node(
            "LayerNormalization",
            "ln",
            &["x", "v"],
            vec![float("epsilon", 1e-5)],
        ),
    ];
    let mut five = zeros("five", &[5]);
    five.data_type = 7;
    five.float_data.clear();
    five.int64_data = vec![1, 2, 2, 6, 6];
    let path = write_made(
        "layout_uses.onnx",
        model(nodes, vec![scales, zeros("v", &[6]), five], 18),
    );
    let out = scratch("layout_uses.ron");
    fails_with(
        &["import", &path, "--out", out.to_str().unwrap()],
        &format!(
            "error: {path}: 9 nodes irdc cannot import: AveragePool with count_include_pad 0 \
             and padding (irdc counts the padding in) (exclusive); DepthToSpace in DCR mode \
             (irdc's PixelShuffle is CRD) (dcr); LayerNormalization (ln); MatMul of ranks 4 and \
             1 (irdc multiplies rank-4 tensors) (vec); Reshape to shape [1, 2, 2, 6, 6] (irdc's \
             tensors have rank 1 to 4) (r5); Resize by [1.0, 1.0, 1.5, 1.5] (irdc resizes height \
             and width of NCHW by one whole factor) (third); Resize in cubic mode (cubic); Resize \
             linear with align_corners coordinates (corners); SpaceToDepth of an input of shape \
             [1, 4, 6, 6] (ONNX orders the channels block first, irdc channel first: they agree \
             for one channel) (s2d); irdc imports {IMPORTED} (docs/onnx.md): replace the others \
             in the model before exporting it"
        ),
    );
}

#[test]
fn a_softmax_before_opset_13_is_imported_only_along_the_last_axis() {
    use onnx_made::*;
    let nodes = vec![node("Softmax", "rows", &["x"], vec![])];
    let path = write_made("softmax11.onnx", model(nodes, vec![], 11));
    let out = scratch("softmax11.ron");
    let out = out.to_str().unwrap();
    fails_with(
        &["import", &path, "--out", out],
        &format!(
            "error: {path}: 1 node irdc cannot import: Softmax along axes 1 to 3 of opset 11 \
             (irdc's softmax is along one axis) (rows); irdc imports {IMPORTED} (docs/onnx.md): \
             replace the others in the model before exporting it"
        ),
    );
    let nodes = vec![node("Softmax", "rows", &["x"], vec![int("axis", -1)])];
    let path = write_made("softmax11_last.onnx", model(nodes, vec![], 11));
    let o = irdc(&["import", &path, "--out", out, "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(out).unwrap();
    assert!(text.contains("rows: Softmax(in: x, axis: 3)"), "{text}");
}

#[test]
fn a_malformed_node_an_unknown_opset_and_an_unknown_input_are_clear_errors() {
    use onnx_made::*;
    let out = scratch("malformed.ron");
    let out = out.to_str().unwrap();
    let path = write_made(
        "dangling.onnx",
        model(vec![node("Relu", "r", &["nope"], vec![])], vec![], 17),
    );
    fails_with(
        &["import", &path, "--out", out],
        &format!("error: {path}: Relu node `r`: reads tensor `nope`, which no node, input or initialiser makes"),
    );
    let path = write_made(
        "opset30.onnx",
        model(vec![node("Relu", "r", &["x"], vec![])], vec![], 30),
    );
    fails_with(
        &["import", &path, "--out", out],
        &format!("error: {path}: opset 30 of the default domain; irdc imports opsets 7 to 28: convert the model with onnx.version_converter"),
    );
    let path = write_made(
        "relu.onnx",
        model(vec![node("Relu", "r", &["x"], vec![])], vec![], 17),
    );
    fails_with(
        &["import", &path, "--out", out, "--input", "y=1x4x8x8"],
        &format!("error: {path}: --input y: the model has no input `y`; its inputs: x"),
    );
}

#[test]
fn an_output_of_another_shape_than_the_model_declares_is_reported() {
    use onnx_made::*;
    let nodes = vec![node(
        "MaxPool",
        "pool",
        &["x"],
        vec![ints("kernel_shape", &[2, 2])],
    )];
    // ONNX's MaxPool strides default to 1 (5x5 here), not to the kernel as irdc's do.
    let path = write_made(
        "pool.onnx",
        model_with(nodes, vec![], 17, info("pool_out", &[1, 4, 5, 5])),
    );
    let out = scratch("pool.ron");
    let o = irdc(&["import", &path, "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("pool: MaxPool(in: x, kernel: 2, stride: 1, pad: 0)"),
        "{text}"
    );
    let nodes = vec![node("Relu", "r", &["x"], vec![])];
    let path = write_made(
        "declared.onnx",
        model_with(nodes, vec![], 17, info("r_out", &[1, 4, 5, 5])),
    );
    fails_with(
        &["import", &path, "--out", out.to_str().unwrap(), "--force"],
        &format!("error: {path}: output `r_out` has shape [1, 4, 5, 5] in the ONNX model, but [1, 4, 6, 6] as imported; please report it with the ONNX file"),
    );
}
