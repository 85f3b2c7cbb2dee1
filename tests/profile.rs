//! `irdc profile` end to end on a tiny model: every kernel of the plan is timed once, FLOPs follow
//! the formulas of `compiler::cost`, times are real, `--train` times the backward kernels, and bad
//! arguments get their exact message.

mod cli_support;

use cli_support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    scratch_in("profile", name)
}

/// conv 3x3 stride 2 (3 -> C channels), then the mean: the conv's kernel carries out the conv
/// alone, so its FLOPs are the formula's.
const MODEL: &str = r#"
Model(
    params: { C: 4 },
    graphs: {
        net: Graph(
            inputs: { x: [1, 3, 8, 8] },
            nodes: {
                conv: Conv(in: x, out: C, kernel: 3, stride: 2),
                loss: Mean(in: conv),
            },
            outputs: { loss: loss },
        ),
    },
)
"#;

/// The model file, written once: the tests run in parallel threads, and one rewriting it while
/// another's `irdc` reads it would hand that one a truncated file.
fn model() -> PathBuf {
    static WRITTEN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    WRITTEN
        .get_or_init(|| {
            let path = scratch("tiny.ron");
            std::fs::write(&path, MODEL).unwrap();
            path
        })
        .clone()
}

/// Run `irdc profile` with `extra` arguments; return the JSON profile and stdout.
fn profile(extra: &[&str], json_name: &str) -> (Value, String) {
    let model = model();
    let json = scratch(json_name);
    let mut args = vec!["profile", model.to_str().unwrap(), "--graph", "net"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--json", json.to_str().unwrap()]);
    let o = irdc(&args);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (doc, stdout)
}

/// The kernel names of the plan `irdc plan` shows for the same graph.
/// The names of the plan's kernels that run every time, sorted: without its prologue (what
/// depends on constants and frozen parameters alone runs once, and is not profiled).
fn plan_kernels(model: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "plan",
        model.to_str().unwrap(),
        "--graph",
        "net",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let o = irdc(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let once = plan["prologue"].as_u64().unwrap() as usize;
    let mut names: Vec<String> = (plan["kernels"].as_array().unwrap().iter())
        .skip(once)
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn kernels(doc: &Value) -> &Vec<Value> {
    doc["kernels"].as_array().unwrap()
}

fn assert_times_real(doc: &Value) {
    for k in kernels(doc) {
        let s = k["seconds"].as_f64().unwrap();
        assert!(s.is_finite() && s > 0.0, "{k}");
    }
    let wall = &doc["wall_s"];
    for key in ["median", "min"] {
        let s = wall[key].as_f64().unwrap();
        assert!(s.is_finite() && s > 0.0, "{wall}");
    }
    // Largest first, and the shares of a whole.
    let secs: Vec<f64> = kernels(doc)
        .iter()
        .map(|k| k["seconds"].as_f64().unwrap())
        .collect();
    assert!(secs.windows(2).all(|w| w[0] >= w[1]), "{secs:?}");
    let shares: f64 = (doc["templates"].as_array().unwrap().iter())
        .map(|t| t["share"].as_f64().unwrap())
        .sum();
    assert!((shares - 1.0).abs() < 1e-9, "{shares}");
}

#[test]
fn every_kernel_is_timed_once_and_a_conv_has_the_formulas_flops() {
    let (doc, stdout) = profile(&["--input", "x=2x3x9x9", "--repeat", "2"], "fwd.json");
    let mut names: Vec<String> = (kernels(&doc).iter())
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, plan_kernels(&model(), &["--input", "x=2x3x9x9"]));
    assert_times_real(&doc);
    assert_eq!(doc["repeat"], 2);
    for k in kernels(&doc) {
        assert_eq!(k["runs_s"].as_array().unwrap().len(), 2, "{k}");
    }
    // x [2, 3, 9, 9], conv 3x3 stride 2 pad 1 -> [2, 4, 5, 5]: 2 N Co Ho Wo Ci kh kw FLOPs; it reads
    // x, the weight and the bias and writes its output.
    let conv = (kernels(&doc).iter())
        .find(|k| k["nodes"].as_array().unwrap().iter().any(|n| n == "conv"))
        .expect("a kernel carries out the conv");
    assert_eq!(conv["nodes"], serde_json::json!(["conv"]));
    assert_eq!(conv["flops"], 2 * (2 * 4 * 5 * 5) * (3 * 3 * 3));
    assert_eq!(
        conv["bytes"],
        4 * (2 * 3 * 9 * 9 + 4 * 3 * 3 * 3 + 4 + 2 * 4 * 5 * 5)
    );
    let rate = conv["gflop_per_s"].as_f64().unwrap();
    let expected = conv["flops"].as_f64().unwrap() / conv["seconds"].as_f64().unwrap() * 1e-9;
    assert!(
        (rate - expected).abs() <= 1e-9 * expected,
        "{rate} vs {expected}"
    );
    // The text names the timing method and shows each kernel with its nodes.
    assert!(stdout.contains("wall time per run: median "), "{stdout}");
    assert!(
        stdout.contains("GPU timestamps") || stdout.contains("CPU-timed"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{}: conv\n", conv["name"].as_str().unwrap())),
        "{stdout}"
    );
}

#[test]
fn train_profiles_the_gradient_kernels_too() {
    let (doc, stdout) = profile(&["--train", "--repeat", "1"], "train.json");
    let model = model();
    // The plan of the adapter the profile ran on (a CPU adapter fuses less into conv loads).
    let cpu = doc["adapter"].as_str().unwrap().contains("| Cpu |");
    let extra: &[&str] = if cpu {
        &["--train", "--cpu"]
    } else {
        &["--train"]
    };
    assert_eq!(kernels(&doc).len(), plan_kernels(&model, extra).len());
    // More nodes carried out than the forward pass's (independent kernels may share a dispatch).
    let nodes = |doc: &Value| -> usize {
        (kernels(doc).iter())
            .map(|k| k["nodes"].as_array().unwrap().len())
            .sum()
    };
    let (forward, _) = profile(&["--repeat", "1"], "train_forward.json");
    assert!(nodes(&doc) > nodes(&forward));
    assert_times_real(&doc);
    // The weight gradient of the conv: x [1, 3, 8, 8] against gy [1, 4, 4, 4], 2 N Co Ho Wo Ci kh kw,
    // plus what fusion puts into its load: the mean's gradient (a scale of one element, then its
    // broadcast to gy), at most one FLOP per gy element each. The conv itself does not depend on
    // it, so the two run as one dispatch: its forward FLOPs come on top.
    let grad = (kernels(&doc).iter())
        .find(|k| {
            k["nodes"]
                .as_array()
                .unwrap()
                .contains(&"grad.conv.weight".into())
        })
        .expect("a weight-gradient kernel");
    assert_eq!(grad["template"], "merged(conv2d+weight_grad)", "{grad}");
    let nodes = grad["nodes"].as_array().unwrap();
    let conv = (kernels(&forward).iter())
        .find(|k| k["nodes"][0] == "conv")
        .map(|k| k["flops"].as_u64().unwrap())
        .unwrap();
    let formula = 2 * (4 * 4 * 4) * (3 * 3 * 3) + conv;
    let flops = grad["flops"].as_u64().unwrap();
    let fused = (nodes.len() - 2) as u64;
    assert!(
        flops >= formula && flops <= formula + fused * 64,
        "{flops} vs {formula}: {grad}"
    );
    assert!(stdout.contains("weight_grad"), "{stdout}");
}

#[test]
fn host_timed_times_each_kernel_with_its_own_submit() {
    let (doc, stdout) = profile(&["--host-timed", "--repeat", "1"], "host.json");
    assert_eq!(doc["timing"], "cpu_timed");
    assert!(stdout.contains("kernel times: CPU-timed"), "{stdout}");
    assert_eq!(kernels(&doc).len(), plan_kernels(&model(), &[]).len());
    assert_times_real(&doc);
}

fn fails_with(args: &[&str], message: &str) {
    let o = irdc(args);
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim_end(), message);
}

#[test]
fn bad_arguments_are_reported() {
    let model = model();
    let m = model.to_str().unwrap();
    fails_with(
        &["profile", m, "--graph", "net", "--repeat", "0"],
        "error: --repeat must be at least 1",
    );
    fails_with(
        &["profile", m, "--graph", "net", "--input", "x=2x3x0x9"],
        "error: --input `x=2x3x0x9`: `2x3x0x9` is not a shape of positive sizes like 1x3x256x256",
    );
    // Refused by the plan, as `irdc plan` refuses it, before its 120 GB of random input exist.
    let o = irdc(&[
        "profile",
        m,
        "--graph",
        "net",
        "--input",
        "x=1x3x100000x100000",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.lines().last(),
        Some("error: memory plan: value `x` [1, 3, 100000, 100000]: one channel takes 37.25 GiB but one binding holds at most 128.00 MiB"),
        "{err}"
    );
    fails_with(
        &["profile", m, "--graph", "gen"],
        &format!("error: {m}: no graph named `gen`; the model has: net"),
    );
}
