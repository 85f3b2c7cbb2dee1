//! Writing a file so that it is either wholly there or not changed at all.
//!
//! The contents go to a temporary file beside the target (`.NAME.tmp-PID`, in the same folder so
//! the rename cannot cross file systems), are flushed and synced, then renamed over the target.
//! On any error the temporary file is removed: a full disk or a failing encoder never leaves a
//! 0-byte or partial file, and an existing target keeps its old contents.

use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Write `path` through `write` atomically (see the module comment). The error is the message of
/// whatever failed, without the path (the caller names the file its own way).
pub fn write_atomically<E: std::fmt::Display>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), E>,
) -> Result<(), String> {
    let tmp = temporary_path(path);
    // `create_new` never follows a link or truncates what someone else left there.
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| format!("cannot create the temporary file {}: {e}", tmp.display()))?;
    let result =
        fill(file, write).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn fill<E: std::fmt::Display>(
    file: File,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), E>,
) -> Result<(), String> {
    let mut w = BufWriter::new(file);
    write(&mut w).map_err(|e| e.to_string())?;
    let file = w.into_inner().map_err(|e| e.error().to_string())?;
    file.sync_all().map_err(|e| e.to_string())
}

/// `DIR/.NAME.tmp-PID` for `DIR/NAME`: hidden, and no image extension, so a folder search for
/// images never picks one up.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("irdc-atomic-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_write_replaces_the_target_whole() {
        let dir = scratch("ok");
        let path = dir.join("a.png");
        std::fs::write(&path, b"old").unwrap();
        write_atomically(&path, |w| w.write_all(b"new contents")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        assert_eq!(names(&dir), ["a.png"]);
    }

    #[test]
    fn a_failing_write_leaves_no_file_and_the_old_target_as_it_was() {
        let dir = scratch("fail");
        let fresh = dir.join("fresh.png");
        // Half written, then the disk is full: what the encoder sees from a full disk.
        let full = |w: &mut BufWriter<File>| {
            w.write_all(&[7; 10000])?;
            Err(std::io::Error::from_raw_os_error(28))
        };
        let err = write_atomically(&fresh, full).unwrap_err();
        assert_eq!(err, "No space left on device (os error 28)");
        assert!(names(&dir).is_empty(), "{:?}", names(&dir));

        let kept = dir.join("kept.png");
        std::fs::write(&kept, b"old").unwrap();
        write_atomically(&kept, full).unwrap_err();
        assert_eq!(std::fs::read(&kept).unwrap(), b"old");
        assert_eq!(names(&dir), ["kept.png"]);
    }

    #[test]
    fn a_target_that_cannot_be_replaced_leaves_no_temporary_file() {
        let dir = scratch("dir");
        let target = dir.join("x.png");
        std::fs::create_dir(&target).unwrap();
        let err = write_atomically(&target, |w| w.write_all(b"png")).unwrap_err();
        assert_eq!(err, "Is a directory (os error 21)");
        assert_eq!(names(&dir), ["x.png"]);
        assert!(names(&target).is_empty());
    }
}
