//! Tensor files: safetensors in and out, the format of inputs, outputs, weights and checkpoints.
//! Reading accepts F32, F64, F16 and BF16 (converted to f32), so a PyTorch `save_file` of any of
//! them loads; writing is F32, atomically (a temporary file renamed into place), so an
//! interrupted write never leaves a broken file.

use ir::Tensor;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TensorFileError {
    #[error("cannot read tensor file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write tensor file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid safetensors file: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: tensor `{name}` has dtype {dtype:?}; irdc reads F32, F64, F16 and BF16")]
    Dtype {
        path: PathBuf,
        name: String,
        dtype: Dtype,
    },
}

/// A file's tensors, in the file's order, and its free-form metadata.
pub struct TensorFile {
    pub tensors: Vec<(String, Tensor<f32>)>,
    pub metadata: HashMap<String, String>,
}

impl TensorFile {
    pub fn get(&self, name: &str) -> Option<&Tensor<f32>> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

pub fn read_tensors(path: &Path) -> Result<TensorFile, TensorFileError> {
    let bytes = std::fs::read(path).map_err(|source| TensorFileError::Read {
        path: path.into(),
        source,
    })?;
    let format = |e: safetensors::SafeTensorError| TensorFileError::Format {
        path: path.into(),
        message: e.to_string(),
    };
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(format)?;
    let file = SafeTensors::deserialize(&bytes).map_err(format)?;
    let mut tensors = Vec::new();
    for (name, view) in file.tensors() {
        let data = to_f32(view.dtype(), view.data()).ok_or_else(|| TensorFileError::Dtype {
            path: path.into(),
            name: name.clone(),
            dtype: view.dtype(),
        })?;
        tensors.push((name, Tensor::new(view.shape(), data)));
    }
    // safetensors stores tensors in its own order (by alignment, then name); sort by name so a
    // file always reads back the same way, whoever wrote it.
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(TensorFile {
        tensors,
        metadata: meta.metadata().clone().unwrap_or_default(),
    })
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    let words = |n: usize| bytes.chunks_exact(n);
    Some(match dtype {
        Dtype::F32 => words(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        Dtype::F64 => words(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
            .collect(),
        Dtype::F16 => words(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => words(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

/// Write `tensors` (F32) with `metadata` to `path` through a temporary file in the same folder.
pub fn write_tensors(
    path: &Path,
    tensors: &[(String, Tensor<f32>)],
    metadata: &HashMap<String, String>,
) -> Result<(), TensorFileError> {
    let raw: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                bytemuck::cast_slice::<f32, u8>(&t.data).to_vec(),
                t.shape.clone(),
            )
        })
        .collect();
    let views = raw.iter().map(|(n, bytes, shape)| {
        (
            n.as_str(),
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
                .expect("sizes match"),
        )
    });
    let meta = (!metadata.is_empty()).then(|| metadata.clone());
    let bytes = safetensors::serialize(views, meta).map_err(|e| TensorFileError::Format {
        path: path.into(),
        message: e.to_string(),
    })?;
    let write = |source| TensorFileError::Write {
        path: path.into(),
        source,
    };
    let tmp = path.with_extension("safetensors.tmp");
    std::fs::write(&tmp, bytes).map_err(write)?;
    std::fs::rename(&tmp, path).map_err(write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_values_and_metadata_sorted_by_name() {
        let dir = std::env::temp_dir().join(format!("irdc-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.safetensors");
        let tensors = vec![
            (
                "z.weight".to_string(),
                Tensor::new(&[2, 3], vec![1.0, -2.0, 3.5, 0.0, 1e-7, 9.0]),
            ),
            ("a.bias".to_string(), Tensor::new(&[2], vec![0.25, -0.5])),
        ];
        let meta = HashMap::from([("step".to_string(), "7".to_string())]);
        write_tensors(&path, &tensors, &meta).unwrap();
        let back = read_tensors(&path).unwrap();
        let mut sorted = tensors.clone();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(back.tensors, sorted);
        assert_eq!(back.metadata, meta);
        assert!(!path.with_extension("safetensors.tmp").exists());
    }

    #[test]
    fn garbage_is_a_format_error_naming_the_file() {
        let path =
            std::env::temp_dir().join(format!("irdc-io-bad-{}.safetensors", std::process::id()));
        std::fs::write(&path, b"not a tensor file").unwrap();
        let err = read_tensors(&path).err().unwrap().to_string();
        assert!(
            err.starts_with(&format!(
                "{} is not a valid safetensors file: ",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read_tensors(Path::new("/nonexistent/x.safetensors"))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(err, "cannot read tensor file /nonexistent/x.safetensors: No such file or directory (os error 2)");
    }
}

/// Why a tensor file does not fit a graph.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("{file}: no tensor named `{name}` (the graph needs it with shape {shape:?}){hint}")]
    Missing {
        file: String,
        name: String,
        shape: Vec<usize>,
        hint: String,
    },
    #[error("{file}: tensor `{name}` has shape {found:?}, the graph expects {expected:?}")]
    Shape {
        file: String,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
}

/// The tensors taken, by name, and the names of the file's other tensors.
pub type Fitted = (Vec<(String, Tensor<f32>)>, Vec<String>);

/// Take from `file` one tensor per (name, shape) in `wanted`, checking names and shapes; tensors
/// of the file that are not wanted are returned as the second list (the caller may warn).
pub fn fit_tensors(
    file_name: &str,
    file: &TensorFile,
    wanted: &[(String, Vec<usize>)],
) -> Result<Fitted, FitError> {
    let mut taken = Vec::new();
    for (name, shape) in wanted {
        let Some(t) = file.get(name) else {
            let names: Vec<&str> = file
                .tensors
                .iter()
                .map(|(n, _)| n.as_str())
                .take(8)
                .collect();
            let hint = if names.is_empty() {
                "; the file holds no tensors".into()
            } else {
                format!("; the file holds: {}", names.join(", "))
            };
            return Err(FitError::Missing {
                file: file_name.into(),
                name: name.clone(),
                shape: shape.clone(),
                hint,
            });
        };
        if &t.shape != shape {
            return Err(FitError::Shape {
                file: file_name.into(),
                name: name.clone(),
                expected: shape.clone(),
                found: t.shape.clone(),
            });
        }
        taken.push((name.clone(), t.clone()));
    }
    let unused = file
        .tensors
        .iter()
        .filter(|(n, _)| !wanted.iter().any(|(w, _)| w == n))
        .map(|(n, _)| n.clone())
        .collect();
    Ok((taken, unused))
}
