//! What the command-line tests share: the `irdc` binary run from the repository root, its
//! output as text, and a scratch folder per test binary and process.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// `irdc plan` of a small IRD-GAN generator (N=8).
pub const PLAN_SMALL_GENERATOR: [&str; 6] = [
    "plan",
    "models/ird_gan.ron",
    "--set",
    "N=8",
    "--graph",
    "generator",
];

pub fn irdc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irdc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `name` in a folder of this test binary (`tag`) and process.
pub fn scratch_in(tag: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("irdc-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// `irdc plan` of the small generator with `extra` arguments, the `IRDC_*` policy switches
/// cleared and then `env` set, so the caller's environment cannot change the plan.
pub fn plan_small_generator(extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_irdc"));
    c.args(PLAN_SMALL_GENERATOR).args(extra);
    for name in compiler::Overrides::VARIABLES {
        c.env_remove(name);
    }
    c.envs(env.iter().copied());
    c.current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap()
}
