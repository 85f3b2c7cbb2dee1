//! Data-parallel training under `mpirun -np 2` (the `mpi` feature, docs/mpi.md), on lavapipe with
//! one thread per rank: two ranks with batch b compute what one process with batch 2b computes
//! (losses and weights after 20 steps, within float tolerance: only the order of sums differs),
//! and a rank that dies ends the whole job with a message naming it, no hang, the last checkpoint
//! intact. IRD-GAN at N = 2 on 16x16 crops, with its dropout on and two critic steps. `irdc
//! deblur` under mpirun shares a folder among the ranks and writes what one process writes. The
//! two ranks exchange their gradients in small buckets, each while the backward pass still runs,
//! and `irdc profile --train` under mpirun shows the exchanged step's time once, from rank 0.
#![cfg(feature = "mpi")]

mod deblur_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SETS: [&str; 7] = [
    "N=2",
    "ndf=2",
    "per_weight=0",
    "H=16",
    "W=16",
    "critic_steps=2",
    "validate_every=1000",
];

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("irdc-mpi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn train_args(out: &Path, steps: &str, batch: usize, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["train", "models/ird_gan.ron", "--steps", steps, "--out"]
        .map(String::from)
        .into();
    args.push(out.display().to_string());
    let batch = format!("batch={batch}");
    for s in SETS.iter().copied().chain([batch.as_str()]) {
        args.extend(["--set".to_string(), s.to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// `cmd` with one lavapipe thread, as a CI machine of 2 cores runs two ranks.
fn quiet(mut cmd: Command) -> Command {
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LP_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `irdc ARGS` alone.
fn alone(args: &[String]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_irdc"));
    c.args(args);
    quiet(c).output().unwrap()
}

/// `mpirun -np 2 irdc ARGS`, killed if it runs past `limit` (a hang fails the test, not CI).
fn mpirun(args: &[String], limit: Duration) -> (Output, Duration) {
    mpirun_with(&[], args, limit)
}

/// [`mpirun`] with more options for mpirun (`-x NAME=VALUE`).
fn mpirun_with(options: &[&str], args: &[String], limit: Duration) -> (Output, Duration) {
    let mut c = Command::new("mpirun");
    // Root (CI) needs the allow flags; two ranks on a 2-core machine may need oversubscribing.
    // Shared-memory copies without ptrace rights (containers) need the single-copy switch off.
    c.args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .args(["-x", "LP_NUM_THREADS=1"])
        .args(options)
        .arg(env!("CARGO_BIN_EXE_irdc"))
        .args(args)
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
    let start = Instant::now();
    let mut child = quiet(c).spawn().expect("mpirun (Open MPI) on the PATH");
    loop {
        if child.try_wait().unwrap().is_some() {
            return (child.wait_with_output().unwrap(), start.elapsed());
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "mpirun still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ok(o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "failed: {err}");
}

/// metrics.csv's columns by name, one value per step.
fn metrics(dir: &Path) -> HashMap<String, Vec<f64>> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut cols: HashMap<String, Vec<f64>> = HashMap::new();
    for line in lines {
        for (name, v) in head.iter().zip(line.split(',')) {
            if let Ok(v) = v.parse() {
                cols.entry(name.to_string()).or_default().push(v);
            }
        }
    }
    cols
}

fn close(what: &str, a: f64, b: f64, tol: f64) {
    assert!(
        (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs())),
        "{what}: {a} with one process, {b} with two ranks"
    );
}

#[test]
fn two_ranks_with_batch_b_train_as_one_process_with_batch_2b() {
    let (one, two) = (scratch("one"), scratch("two"));
    ok(&alone(&train_args(&one, "20", 4, &[])));
    // Buckets of 8 KiB: the gradients of each network are read back and summed in several
    // pieces while the backward pass runs, so a piece cut too early would change the losses.
    let bucketed = train_args(&two, "20", 2, &["--bucket", "8K"]);
    let (o, _) = mpirun(&bucketed, Duration::from_secs(600));
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("2 ranks: compute"), "no timing line: {err}");
    let buckets: usize = (err.split("gradients in ").nth(1))
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no bucket count: {err}"));
    assert!(buckets >= 3, "{buckets} buckets of 8 KiB: {err}");

    let (m1, m2) = (metrics(&one), metrics(&two));
    for col in ["critic_loss", "generator_loss", "val_psnr"] {
        let (a, b) = (&m1[col], &m2[col]);
        assert_eq!(a.len(), b.len(), "{col}: rows");
        assert!(!a.is_empty(), "{col}: no values");
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            close(&format!("{col} at row {}", k + 1), *x, *y, 1e-3);
        }
    }
    let load = |d: &Path| runtime::checkpoint::load(&d.join("checkpoint.safetensors")).unwrap();
    let ((t1, meta1), (t2, meta2)) = (load(&one), load(&two));
    assert_eq!((meta1.step, meta2.step), (20, 20));
    assert_eq!(t1.len(), t2.len());
    // Each tensor against its own scale: the L1 loss's gradient is a sign, which a rounding
    // difference in the weights can flip pixel by pixel, so Adam's moments differ more than the
    // weights (about 2e-4 of their scale after 20 steps, the weights 4e-5).
    let mut compared = 0;
    for (name, a) in &t1 {
        let b = &t2[name];
        assert_eq!(a.shape, b.shape, "{name}");
        let scale = a.data.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        for (k, (x, y)) in a.data.iter().zip(&b.data).enumerate() {
            let (x, y) = (*x as f64, *y as f64);
            assert!(
                (x - y).abs() <= 1e-3 * scale,
                "{name}[{k}]: {x} with one process, {y} with two ranks (the tensor's scale {scale})"
            );
        }
        compared += a.data.len();
    }
    assert!(compared > 1000, "only {compared} numbers compared");
    // Only rank 0 wrote: one metrics row per step.
    assert_eq!(m2["generator_loss"].len(), 20);
}

#[test]
fn a_rank_that_dies_ends_the_job_naming_it_and_the_checkpoint_stays() {
    let out = scratch("fault");
    // A checkpoint at step 2 (one process), then 2 ranks resume it and rank 1 dies after step 4.
    ok(&alone(&train_args(&out, "8", 2, &["--stop-after", "2"])));
    let ckpt = out.join("checkpoint.safetensors");
    let before = std::fs::read(&ckpt).unwrap();
    let args = train_args(&out, "8", 2, &["--resume", "--debug-kill", "1:4"]);
    let (o, took) = mpirun(&args, Duration::from_secs(300));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the job succeeded: {err}");
    assert!(
        err.contains("checkpoint is from a 1-rank run, resumed on 2"),
        "no note on the rank count: {err}"
    );
    assert!(
        err.contains("rank 1") && err.contains("signal 9"),
        "no message naming rank 1 and its signal: {err}"
    );
    assert!(took < Duration::from_secs(300));
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        before,
        "the checkpoint changed"
    );
    let (_, meta) = runtime::checkpoint::load(&ckpt).unwrap();
    assert_eq!(meta.step, 2);
}

#[test]
fn a_rank_that_cannot_open_its_adapter_ends_the_job_naming_it() {
    let out = scratch("adapter");
    let (o, _) = mpirun_with(
        &["-x", "IRDC_ADAPTER=No-Such-GPU"],
        &train_args(&out, "2", 2, &[]),
        Duration::from_secs(120),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the job succeeded: {err}");
    assert!(
        err.contains("error: rank 0 of 2 on ") || err.contains("error: rank 1 of 2 on "),
        "no rank named: {err}"
    );
    assert!(
        err.contains("IRDC_ADAPTER=\"No-Such-GPU\" matches no adapter; found: ")
            && err.contains("ending the whole job"),
        "no cause: {err}"
    );
}

#[test]
fn two_ranks_deblur_a_folder_between_them_as_one_process_does() {
    let dir = deblur_support::scratch("mpi");
    let ck = dir.join("ck.safetensors");
    deblur_support::write_checkpoint(&ck);
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    for (k, name) in ["a", "b", "c"].iter().enumerate() {
        let c = k as u32;
        image::RgbImage::from_fn(16, 12, |x, y| {
            image::Rgb([0, 1, 2].map(|ch| deblur_support::pattern(x + c, y, ch)))
        })
        .save(inputs.join(format!("{name}.png")))
        .unwrap();
    }
    let args = |out: &Path| -> Vec<String> {
        let ck = ck.display().to_string();
        let (inputs, out) = (inputs.display().to_string(), out.display().to_string());
        ["deblur", "--checkpoint", &ck, &inputs, "--out", &out]
            .map(String::from)
            .into()
    };
    let (one, two) = (dir.join("one"), dir.join("two"));
    ok(&alone(&args(&one)));
    let (o, _) = mpirun(&args(&two), Duration::from_secs(300));
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    // Two images for rank 0, one for rank 1.
    assert!(
        err.contains("2 images in") && err.contains("1 images in"),
        "{err}"
    );
    let files = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let (a, b) = (files(&one), files(&two));
    assert_eq!(a.len(), 3);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.file_name(), y.file_name());
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{}",
            y.display()
        );
    }
}

#[test]
fn profile_under_mpirun_shows_the_exchanged_steps_time_once() {
    let json = scratch("profile.json");
    let mut args: Vec<String> = ["profile", "models/ird_gan.ron", "--graph", "critic_loss"]
        .map(String::from)
        .into();
    for s in SETS {
        args.extend(["--set".to_string(), s.to_string()]);
    }
    let tail = ["--train", "--repeat", "2", "--bucket", "1K", "--json"];
    args.extend(tail.map(String::from));
    args.push(json.display().to_string());
    let (o, _) = mpirun(&args, Duration::from_secs(300));
    ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    // Rank 0 alone prints: one kernel table, one data-parallel line.
    assert_eq!(
        out.matches("data-parallel step: 2 ranks").count(),
        1,
        "{out}"
    );
    assert_eq!(out.matches("wall time per run").count(), 1, "{out}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let dp = &doc["data_parallel"];
    assert_eq!(
        (dp["ranks"].as_u64(), dp["steps"].as_u64()),
        (Some(2), Some(2))
    );
    // The critic at ndf=2 has some thousand parameters: several buckets of 1 KiB.
    let (grads, buckets) = (
        dp["gradients"].as_u64().unwrap(),
        dp["buckets"].as_u64().unwrap(),
    );
    assert!(grads > 500 && buckets >= 3, "{dp}");
    for key in [
        "compute_ms",
        "copy_ms",
        "all_reduce_ms",
        "step_ms",
        "alone_ms",
    ] {
        assert!(dp[key].as_f64().is_some_and(|v| v >= 0.0), "{key}: {dp}");
    }
    assert!(dp["step_ms"].as_f64().unwrap() > 0.0, "{dp}");
}
