//! The run directory as a thing a person owns: what run it already holds ([`held`]), starting
//! over in it deliberately ([`clear`]), and one run at a time in it ([`RunLock`]).
//!
//! The lock is `irdc.lock` in the directory, holding the pid of the run, with an advisory lock
//! (`flock`) on it for the whole run: the system releases that when the process ends however it
//! ends, so a lock file left by a killed run is stale by construction and is taken over with a
//! warning, while one held by a running process refuses the second run, naming the pid.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name in a run directory.
pub const LOCK: &str = "irdc.lock";
/// What a run writes (besides `samples/step_NNNNNN.png`).
pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const METRICS: &str = "metrics.csv";
pub const PLOT: &str = "losses.png";

#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{dir} is in use by another run (pid {pid} holds {lock}): wait for it to end, or choose another --out", dir = dir.display(), lock = lock.display(), pid = pid.map_or("unknown".into(), |p| p.to_string()))]
    Locked {
        dir: PathBuf,
        lock: PathBuf,
        pid: Option<u32>,
    },
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
}

fn io(path: &Path, e: impl std::fmt::Display) -> RunDirError {
    RunDirError::Io {
        path: path.into(),
        message: e.to_string(),
    }
}

/// A run found in a directory: it has a checkpoint and/or a metrics file.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// The checkpoint's step, or why it could not be read; `None`: no checkpoint.
    pub checkpoint: Option<Result<u64, String>>,
    pub metrics: bool,
}

impl std::fmt::Display for Held {
    /// `checkpoint.safetensors at step 40, metrics.csv`
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let mut parts = Vec::new();
        match &self.checkpoint {
            Some(Ok(step)) => parts.push(format!("{CHECKPOINT} at step {step}")),
            Some(Err(why)) => parts.push(format!("{CHECKPOINT}, unreadable: {why}")),
            None => {}
        }
        if self.metrics {
            parts.push(METRICS.into());
        }
        write!(f, "{}", parts.join(", "))
    }
}

/// The run `dir` holds, if any.
pub fn held(dir: &Path) -> Option<Held> {
    let ckpt = dir.join(CHECKPOINT);
    let held = Held {
        checkpoint: ckpt.exists().then(|| checkpoint_step(&ckpt)),
        metrics: dir.join(METRICS).exists(),
    };
    (held.checkpoint.is_some() || held.metrics).then_some(held)
}

/// The `step` of a checkpoint's metadata, from the safetensors header alone (a checkpoint may
/// be hundreds of MB; the header is its first few KB).
fn checkpoint_step(path: &Path) -> Result<u64, String> {
    let mut f = File::open(path).map_err(|e| e.to_string())?;
    fn not<E>(_: E) -> String {
        "not a safetensors file".into()
    }
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(not)?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return Err(not(()));
    }
    let mut header = vec![0u8; len as usize];
    f.read_exact(&mut header).map_err(not)?;
    let header: serde_json::Value = serde_json::from_slice(&header).map_err(not)?;
    let step = header["__metadata__"]["step"].as_str();
    step.and_then(|s| s.parse().ok())
        .ok_or_else(|| "no step in its metadata".into())
}

/// Remove what a run wrote in `dir` (checkpoint, metrics, plot, samples), to start over there.
/// Nothing else in the directory is touched.
pub fn clear(dir: &Path) -> Result<(), RunDirError> {
    let mut files: Vec<PathBuf> = [CHECKPOINT, METRICS, PLOT].map(|f| dir.join(f)).into();
    let samples = dir.join("samples");
    if let Ok(entries) = std::fs::read_dir(&samples) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("step_") && name.ends_with(".png") {
                files.push(e.path());
            }
        }
    }
    for f in files {
        match std::fs::remove_file(&f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&f, e)),
            _ => {}
        }
    }
    Ok(())
}

/// One run at a time in a directory: held from [`RunLock::take`] until dropped, which removes
/// the lock file (and the directory, if the lock created it and nothing else was written).
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    created: Option<PathBuf>,
    _file: File,
}

impl RunLock {
    /// Create `dir` if needed and lock it; a live holder refuses with its pid, a stale lock file
    /// (its run ended without removing it) is taken over with a warning.
    pub fn take(dir: &Path) -> Result<RunLock, RunDirError> {
        let created = (!dir.exists()).then(|| dir.to_path_buf());
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let path = dir.join(LOCK);
        // A holder removes the file as it ends: one opened just before that is locked in vain
        // (no other run can see it), so lock again until the file locked is the one named.
        for _ in 0..100 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            let old = read_pid(&mut file);
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(RunDirError::Locked {
                        dir: dir.into(),
                        lock: path,
                        pid: old,
                    })
                }
                // A file system without locks: the pid decides.
                Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                    if let Some(pid) = old.filter(|&p| alive(p)) {
                        return Err(RunDirError::Locked {
                            dir: dir.into(),
                            lock: path,
                            pid: Some(pid),
                        });
                    }
                }
                Err(TryLockError::Error(e)) => return Err(io(&path, e)),
            }
            if !same_file(&file, &path) {
                continue;
            }
            if let Some(pid) = old {
                eprintln!(
                    "warning: {} was left by pid {pid}, which no longer holds it (its run ended without removing it); taking it over",
                    path.display()
                );
            }
            let mine = format!("{}\n", std::process::id());
            (file.set_len(0).and_then(|_| file.rewind()))
                .and_then(|_| file.write_all(mine.as_bytes()))
                .map_err(|e| io(&path, e))?;
            return Ok(RunLock {
                path,
                created,
                _file: file,
            });
        }
        Err(io(&path, "the lock file keeps being replaced"))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked (the file closes after this), so no run locks it in vain.
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = &self.created {
            let _ = std::fs::remove_dir(dir); // only if empty
        }
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Whether process `pid` runs (where that can be told: Linux's /proc; elsewhere assumed).
fn alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Whether the open `file` is still the file at `path`.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("irdc-rundir-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn one_lock_at_a_time_and_none_left_behind() {
        let d = dir("lock");
        let lock = RunLock::take(&d).unwrap();
        let text = std::fs::read_to_string(d.join(LOCK)).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        // A second open file is a second holder, even in this process.
        let err = RunLock::take(&d).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} is in use by another run (pid {} holds {}): wait for it to end, or choose another --out",
                d.display(),
                std::process::id(),
                d.join(LOCK).display()
            )
        );
        drop(lock);
        // The lock created the directory and nothing else was written: both are gone.
        assert!(!d.exists());

        // A lock file whose run ended without removing it is taken over.
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(LOCK), "4000000000\n").unwrap();
        let lock = RunLock::take(&d).unwrap();
        let text = std::fs::read_to_string(d.join(LOCK)).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        drop(lock);
        assert!(d.exists() && !d.join(LOCK).exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_held_run_is_described_and_cleared() {
        let d = dir("held");
        std::fs::create_dir_all(d.join("samples")).unwrap();
        assert_eq!(held(&d), None);
        for f in [METRICS, PLOT, "samples/step_000002.png", "notes.txt"] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        let meta = crate::checkpoint::Meta {
            model_source: "Model(graphs: {})".into(),
            model_path: "m.ron".into(),
            sets: vec![],
            generator_graph: "generator".into(),
            step: 40,
            total_steps: 80,
            seed: 0,
        };
        let t = vec![("generator.w".to_string(), ir::Tensor::new(&[1], vec![1.0]))];
        crate::checkpoint::save(&d.join(CHECKPOINT), &t, &meta).unwrap();
        let h = held(&d).unwrap();
        assert_eq!(
            h.to_string(),
            "checkpoint.safetensors at step 40, metrics.csv"
        );
        std::fs::write(d.join(CHECKPOINT), "short").unwrap();
        assert_eq!(
            held(&d).unwrap().to_string(),
            "checkpoint.safetensors, unreadable: not a safetensors file, metrics.csv"
        );
        clear(&d).unwrap();
        assert_eq!(held(&d), None);
        assert!(!d.join(PLOT).exists() && !d.join("samples/step_000002.png").exists());
        assert!(
            d.join("notes.txt").exists(),
            "what a run did not write stays"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
