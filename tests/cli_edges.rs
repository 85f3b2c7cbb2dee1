//! The command line's rough edges, found by trying bad input: a closed pipe, output printed
//! before a later failure, an image size a graph cannot take, an error said twice.

mod cli_support;

use cli_support::*;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn scratch(name: &str) -> PathBuf {
    scratch_in("edges", name)
}

#[test]
fn a_closed_pipe_ends_check_quietly() {
    // `irdc check MODEL | head -c 1`: the reader goes away after one byte.
    let mut child = Command::new(env!("CARGO_BIN_EXE_irdc"))
        .args(["check", "models/ird_gan.ron", "--set", "N=8"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err, "");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        // Done before the pipe closed, or ended by SIGPIPE as other tools are.
        assert!(
            o.status.success() || o.status.signal() == Some(13),
            "{:?}",
            o.status
        );
    }
}

#[test]
fn check_says_ok_only_when_every_graph_builds() {
    let model = scratch("second_graph_fails.ron");
    std::fs::write(
        &model,
        r#"Model(
    graphs: {
        good: Graph(inputs: { x: [1, 3, 8, 8] }, nodes: { y: Relu(in: x) }, outputs: { y: y }),
        bad: Graph(
            inputs: { x: [1, 3, 8, 8], z: [1, 3, 4, 4] },
            nodes: { y: Add(a: x, b: z) },
            outputs: { y: y },
        ),
    },
)"#,
    )
    .unwrap();
    let o = irdc(&["check", model.to_str().unwrap()]);
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
    assert_eq!(
        stderr(&o).trim_end(),
        format!(
            "{}:6:25: error: in bad.y: add: shapes [1, 3, 8, 8] and [1, 3, 4, 4] do not broadcast",
            model.display()
        )
    );
}

#[test]
fn a_size_the_generator_cannot_take_says_which_it_can() {
    let o = plan_small_generator(&["--input", "blurred=1x3x62x62"], &[]);
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o).trim_end(),
        "models/ird_gan.ron:132:23: error: graph generator takes heights and widths that are \
         multiples of 4: `blurred` is 62x62 (try 60x60 or 64x64); at the size given: in \
         generator.skip: add: shapes [1, 3, 62, 62] and [1, 3, 64, 64] do not broadcast"
    );
}

#[test]
fn each_model_names_the_multiple_it_needs() {
    // NAFNet halves four times, the U-Net three: at 30x30 a multiple of 4 or 8 around it does not
    // build for NAFNet (28 does not), so the hint must name 16 and 8, not the first factor that
    // happens to build on one side.
    let plan = |model: &str, set: &[&str]| {
        let mut args = vec!["plan", model, "--graph", "generator"];
        args.extend(set.iter().flat_map(|s| ["--set", *s]));
        args.extend(["--input", "blurred=1x3x30x30"]);
        let o = irdc(&args);
        assert!(!o.status.success());
        stderr(&o).trim_end().to_string()
    };
    assert_eq!(
        plan("models/nafnet.ron", &["width=16", "enc4=1"]),
        "models/nafnet.ron:96:21: error: graph generator takes heights and widths that are \
         multiples of 16: `blurred` is 30x30 (try 16x16 or 32x32); at the size given: in \
         generator.s4: add: shapes [1, 128, 2, 2] and [1, 128, 3, 3] do not broadcast"
    );
    assert_eq!(
        plan("models/unet.ron", &["width=8"]),
        "models/unet.ron:41:25: error: graph generator takes heights and widths that are \
         multiples of 8: `blurred` is 30x30 (try 24x24 or 32x32); at the size given: in \
         generator.u3.joined: concat: expected inputs with the N, H, W of the first input \
         [1, 32, 6, 6], found input 1 [1, 32, 7, 7]"
    );
}

#[test]
fn an_error_from_inside_training_is_said_once() {
    // The training section's graphs are built by the trainer, which wraps the model's error.
    let out = scratch("run62");
    let o = irdc(&[
        "train",
        "models/ird_gan.ron",
        "--set",
        "N=8",
        "--set",
        "ndf=8",
        "--set",
        "per_weight=0",
        "--set",
        "H=62",
        "--set",
        "W=62",
        "--steps",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(
        err.trim_end().ends_with(
            "models/ird_gan.ron:132:23: error: graph generator takes heights and widths that \
             are multiples of 4: `blurred` is 62x62 (try 60x60 or 64x64); at the size given: in \
             generator.skip: add: shapes [1, 3, 62, 62] and [1, 3, 64, 64] do not broadcast"
        ),
        "{err}"
    );
}

#[test]
fn plan_prints_the_policy_and_the_switches_that_changed_it() {
    let plan = |cpu: bool, switch: Option<(&str, &str)>| {
        let extra: &[&str] = if cpu { &["--cpu"] } else { &[] };
        plan_small_generator(extra, switch.as_slice())
    };
    let second = |o: &Output| {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.lines().nth(1).unwrap_or_default().to_string()
    };
    assert_eq!(
        second(&plan(false, None)),
        "policy: GPU: at most 4 op(s) in a conv's loads; no small-value exception; plane \
         reductions apply their reader up to 4096 pixels; no subgroups; 3x3 convs direct"
    );
    assert_eq!(
        second(&plan(true, Some(("IRDC_WINOGRAD", "0")))),
        "policy: CPU adapter (overridden: IRDC_WINOGRAD=0): at most 1 op(s) in a conv's loads; \
         values of up to 16384 elements in loads as on GPUs; every plane reduction applies its \
         reader; 8-lane subgroups, reductions one subgroup each; 3x3 convs direct"
    );
    let o = plan(true, Some(("IRDC_SUBGROUPS", "no")));
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o).trim_end(),
        "error: IRDC_SUBGROUPS=\"no\": use 0 (off) or 1 (the default)"
    );
    // Kernels merged or not: the switch shows in the policy, and the kernel count follows.
    let o = plan(false, Some(("IRDC_MERGE", "0")));
    assert!(second(&o).ends_with("; 3x3 convs direct; independent kernels not merged"));
    let first = |o: &Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .map(String::from)
    };
    let (unmerged, merged) = (first(&o).unwrap(), first(&plan(false, None)).unwrap());
    assert!(!unmerged.contains("before merging"), "{unmerged}");
    assert!(merged.contains(" before merging, "), "{merged}");
    // The conv tiles' switch is parsed and shown with the others.
    let o = plan(false, Some(("IRDC_AUTOTUNE", "0")));
    assert!(second(&o).starts_with("policy: GPU (overridden: IRDC_AUTOTUNE=0): "));
    let o = plan(false, Some(("IRDC_AUTOTUNE", "yes")));
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o).trim_end(),
        "error: IRDC_AUTOTUNE=\"yes\": use 0 (off) or 1 (on, CPU adapters too)"
    );
}

#[test]
fn no_fuse_turns_off_fusion_only_and_passes_go_by_name() {
    let plan = |extra: &[&str]| plan_small_generator(extra, &[]);
    let passes = |o: &Output| {
        let text = stdout(o);
        let line = text.lines().find(|l| l.starts_with("graph passes: "));
        line.unwrap_or_default().to_string()
    };
    let all = "graph passes: split-norms-over-concats, winograd, lower-instance-norms, \
               pair-plane-means";
    let (fused, unfused) = (plan(&["--cpu"]), plan(&["--cpu", "--no-fuse"]));
    assert_eq!(passes(&fused), all);
    assert_eq!(passes(&unfused), all);
    // The fused plan's count before fusion is the unfused plan's count.
    let count = |o: &Output| stdout(o).lines().next().unwrap_or_default().to_string();
    let unfused_count = count(&unfused);
    let n: String = unfused_count["plan `generator`: ".len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    assert!(
        count(&fused).contains(&format!(" {n} before fusion)")),
        "{}",
        count(&fused)
    );
    let without = plan(&["--cpu", "--without", "winograd"]);
    assert_eq!(
        passes(&without),
        "graph passes: split-norms-over-concats, lower-instance-norms, pair-plane-means"
    );
    let o = plan(&["--without", "fusion"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o)
            .starts_with("error: no pass named `fusion`; the passes: split-norms-over-concats ("),
        "{}",
        stderr(&o)
    );
}
