//! Nothing a user made is lost: `irdc train` into a run directory that holds a run refuses unless
//! told to continue it (`--resume`) or to start over (`--overwrite`); one run at a time holds a
//! directory (`irdc.lock`), a stale lock is taken over; `irdc demo` starts over in its own
//! directory and says so. Training is tiny (IRD-GAN at N = 2, 16x16 crops, 1 critic step).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SETS: [&str; 6] = [
    "N=2",
    "ndf=2",
    "per_weight=0",
    "H=16",
    "W=16",
    "critic_steps=1",
];

fn irdc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irdc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn train(out: &Path, steps: &str, extra: &[&str]) -> Output {
    let mut args = vec!["train", "models/ird_gan.ron", "--steps", steps, "--out"];
    args.push(out.to_str().unwrap());
    for s in SETS {
        args.extend(["--set", s]);
    }
    args.extend(extra);
    irdc(&args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("irdc-run-dir-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", stderr(o));
}

fn refused(o: &Output, message: &str) {
    assert!(!o.status.success(), "expected a refusal: {}", stderr(o));
    assert_eq!(stderr(o).trim_end(), message);
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn rows(dir: &Path) -> Vec<String> {
    let csv = String::from_utf8(read(dir.join("metrics.csv"))).unwrap();
    let steps = csv.lines().skip(1).map(|l| l.split(',').next().unwrap());
    steps.map(String::from).collect()
}

fn step(dir: &Path) -> u64 {
    runtime::checkpoint::load(&dir.join("checkpoint.safetensors"))
        .unwrap()
        .1
        .step
}

#[test]
fn a_second_fresh_run_is_refused_resume_continues_overwrite_starts_over() {
    let dir = scratch("again");
    ok(&train(&dir, "2", &[]));
    let (ckpt, csv) = (
        read(dir.join("checkpoint.safetensors")),
        read(dir.join("metrics.csv")),
    );
    assert!(
        !dir.join("irdc.lock").exists(),
        "the lock goes with the run"
    );

    refused(
        &train(&dir, "2", &[]),
        &format!(
            "error: {} already holds a run (checkpoint.safetensors at step 2, metrics.csv): \
             continue it with --resume, start over with --overwrite, or choose another --out",
            dir.display()
        ),
    );
    assert_eq!(read(dir.join("checkpoint.safetensors")), ckpt);
    assert_eq!(read(dir.join("metrics.csv")), csv);
    assert!(!dir.join("irdc.lock").exists());

    // --resume continues: steps 3 and 4 after the first run's 1 and 2.
    ok(&train(&dir, "4", &["--resume"]));
    assert_eq!(rows(&dir), ["1", "2", "3", "4"]);
    assert_eq!(step(&dir), 4);
    assert!(read(dir.join("metrics.csv")).starts_with(&csv));

    // --overwrite starts over, and says what it replaces.
    let o = train(&dir, "1", &["--overwrite"]);
    ok(&o);
    assert!(
        stderr(&o).contains(&format!(
            "--overwrite: starting over in {} (removing its checkpoint.safetensors at step 4, \
             metrics.csv, plot and samples)\n",
            dir.display()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(rows(&dir), ["1"]);
    assert_eq!(step(&dir), 1);
    let mut samples: Vec<_> = std::fs::read_dir(dir.join("samples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    samples.sort();
    assert_eq!(
        samples,
        ["step_000001.png"],
        "the old run's samples are gone"
    );

    refused(
        &train(&dir, "1", &["--overwrite", "--resume"]),
        "error: the argument '--overwrite' cannot be used with '--resume'\n\n\
         Usage: irdc train --steps <STEPS> --out <OUT> --set <NAME=VALUE> --overwrite <MODEL>\n\n\
         For more information, try '--help'.",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_held_lock_refuses_and_a_stale_one_is_taken_over() {
    let dir = scratch("lock");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = dir.join("irdc.lock");

    // Another run holds the directory (this test process, as irdc does: pid and flock).
    let held = File::create(&lock).unwrap();
    held.try_lock().unwrap();
    std::fs::write(&lock, format!("{}\n", std::process::id())).unwrap();
    refused(
        &train(&dir, "1", &[]),
        &format!(
            "error: {} is in use by another run (pid {} holds {}): wait for it to end, or \
             choose another --out",
            dir.display(),
            std::process::id(),
            lock.display()
        ),
    );
    assert!(!dir.join("metrics.csv").exists());
    drop(held);

    // A lock file left by a run that died: its pid is gone and nothing holds the file.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(&lock, format!("{dead}\n")).unwrap();
    let o = train(&dir, "1", &[]);
    ok(&o);
    assert!(
        stderr(&o).starts_with(&format!(
            "warning: {} was left by pid {dead}, which no longer holds it (its run ended \
             without removing it); taking it over\n",
            lock.display()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(rows(&dir), ["1"]);
    assert!(!lock.exists());

    // A metrics file without a checkpoint is a run too, but one --resume cannot continue.
    std::fs::remove_file(dir.join("checkpoint.safetensors")).unwrap();
    refused(
        &train(&dir, "1", &[]),
        &format!(
            "error: {} already holds a run (metrics.csv): start over with --overwrite, or \
             choose another --out",
            dir.display()
        ),
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The demo's directory is its own product: a second demo starts over in it and says so.
#[test]
fn the_demo_starts_over_in_its_directory_and_says_so() {
    let dir = scratch("demo");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("metrics.csv"),
        "step,critic_loss\n1,0.5\n2,0.25\n3,0.1\n",
    )
    .unwrap();
    let out = dir.to_str().unwrap();
    let o = irdc(&["demo", "--out", out, "--steps", "2", "--test-images", "1"]);
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!(
            "\nstarting over in {out}: replacing the run there (metrics.csv, plot and samples)\n"
        )),
        "{stdout}"
    );
    assert_eq!(rows(&dir), ["1", "2"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
