//! Folders of (blurred, sharp) pairs in GoPro's layout, for evaluation and validation: a dataset
//! root (`DIR/test/<sequence>/{blur,sharp}`), a split (`DIR/<sequence>/{blur,sharp}`) or one
//! sequence (`DIR/{blur,sharp}`), detected in that order; pairs by file name, sorted.

use super::source::image_files;
use super::DataError;
use std::path::{Path, PathBuf};

/// The (blurred, sharp) image files of a GoPro-style folder (see the module comment), sorted by
/// sequence, then file name. A blurred image without its sharp counterpart is an error.
pub fn pair_files(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, DataError> {
    if !dir.is_dir() {
        return Err(DataError::NoDir(dir.into()));
    }
    let is_sequence = |d: &Path| d.join("blur").is_dir() && d.join("sharp").is_dir();
    let sequences: Vec<PathBuf> = if is_sequence(dir) {
        vec![dir.to_path_buf()]
    } else {
        let split = if dir.join("test").is_dir() {
            dir.join("test")
        } else {
            dir.to_path_buf()
        };
        let entries = std::fs::read_dir(&split).map_err(|e| DataError::List {
            path: split.clone(),
            message: e.to_string(),
        })?;
        let mut seqs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_sequence(p))
            .collect();
        seqs.sort();
        seqs
    };
    if sequences.is_empty() {
        return Err(DataError::Empty {
            path: dir.into(),
            message: "not a GoPro-style folder: expected test/<sequence>/blur and .../sharp, \
                      <sequence>/blur and .../sharp, or blur/ and sharp/"
                .into(),
        });
    }
    let mut pairs = Vec::new();
    for seq in sequences {
        for blur in image_files(&seq.join("blur"))? {
            let sharp = seq.join("sharp").join(blur.file_name().unwrap_or_default());
            if !sharp.is_file() {
                return Err(DataError::Image {
                    path: blur,
                    message: format!("no sharp counterpart {}", sharp.display()),
                });
            }
            pairs.push((blur, sharp));
        }
    }
    if pairs.is_empty() {
        return Err(DataError::Empty {
            path: dir.into(),
            message: "no images in its blur/ folders".into(),
        });
    }
    Ok(pairs)
}
