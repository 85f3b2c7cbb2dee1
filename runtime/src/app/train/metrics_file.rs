//! `metrics.csv`: one row per generator step under a header fixed at the start of the run
//! (`step, critic_loss, generator_loss, <parts>, val_psnr, val_ssim, val_psnr_blurred,
//! val_ssim_blurred, lr, seconds`); a value a step does not have (no critic step in a
//! warm-up, no validation) is an empty cell. A resumed run keeps the rows up to its checkpoint
//! (laid out again by column name if the header changed) and writes the rest anew.

use super::TrainError;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The validation columns, before `lr` and `seconds`.
pub const VAL_COLUMNS: [&str; 4] = [
    "val_psnr",
    "val_ssim",
    "val_psnr_blurred",
    "val_ssim_blurred",
];

pub struct MetricsFile {
    path: PathBuf,
    header: Vec<String>,
}

/// A row's values by column name, as text.
pub type Row = HashMap<String, String>;

fn io_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl MetricsFile {
    /// The header for the loss parts `parts`.
    pub fn header(parts: &[String]) -> Vec<String> {
        // `seconds` stays last: benches/run reads it there.
        let head = ["step", "critic_loss", "generator_loss"].map(String::from);
        let tail = VAL_COLUMNS.into_iter().chain(["lr", "seconds"]);
        (head.into_iter())
            .chain(parts.iter().cloned())
            .chain(tail.map(String::from))
            .collect()
    }

    /// Start `path` for a run that continues after step `upto` (0: a fresh run): the rows of
    /// steps up to `upto` of an existing file are kept (and returned), the file is rewritten
    /// atomically.
    pub fn open(
        path: &Path,
        header: Vec<String>,
        upto: u64,
    ) -> Result<(MetricsFile, Vec<Row>), TrainError> {
        let mut kept = Vec::new();
        let old = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(path, e)),
        };
        if let Some(text) = &old {
            let mut lines = text.lines();
            let names: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
            for line in lines {
                let row: Row = (names.iter().zip(line.split(',')))
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                match row.get("step").and_then(|s| s.parse::<u64>().ok()) {
                    Some(s) if s <= upto => kept.push(row),
                    _ => {}
                }
            }
        }
        let file = MetricsFile {
            path: path.into(),
            header,
        };
        let mut text = file.header.join(",") + "\n";
        for row in &kept {
            text.push_str(&file.line(row));
        }
        // Through a temporary file and a rename: an interruption leaves the old file whole.
        if old.as_deref() != Some(text.as_str()) {
            crate::autotune::write_atomic(path, text.as_bytes()).map_err(|e| io_err(path, e))?;
        }
        Ok((file, kept))
    }

    fn line(&self, row: &Row) -> String {
        let cells: Vec<&str> = (self.header.iter())
            .map(|h| row.get(h).map_or("", String::as_str))
            .collect();
        cells.join(",") + "\n"
    }

    /// Append one row (columns it lacks are left empty; names not in the header are dropped).
    pub fn append(&self, row: &Row) -> Result<(), TrainError> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| io_err(&self.path, e))?;
        f.write_all(self.line(row).as_bytes())
            .map_err(|e| io_err(&self.path, e))
    }
}

/// A number of a row, NaN when the cell is empty or missing.
pub fn number(row: &Row, column: &str) -> f32 {
    (row.get(column).and_then(|v| v.parse().ok())).unwrap_or(f32::NAN)
}
