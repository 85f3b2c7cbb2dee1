//! Training checkpoints: one safetensors file with the generator's and the critic's parameters
//! (`generator.<param>`, `critic.<param>`) and Adam's moments (`adam.<net>.m.<param>`,
//! `adam.<net>.v.<param>`), and metadata that says how to rebuild the run: the model's full RON
//! text (`model_source`), `model_path`, `sets` (`NAME=VALUE` joined by `,`), `generator_graph`,
//! `step` (generator steps done), `total_steps`, `seed`. Every random choice of training is a
//! function of (seed, step), so no generator state is stored. Written through a temporary file
//! and a rename (`io::write_tensors`), so an interrupted write leaves the previous one intact.

use crate::io::{read_tensors, write_tensors, TensorFileError};
use ir::Tensor;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub model_source: String,
    pub model_path: String,
    pub sets: Vec<String>,
    pub generator_graph: String,
    pub step: u64,
    pub total_steps: u64,
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    File(#[from] TensorFileError),
    #[error("{path}: metadata `{key}` is {problem}; is it a checkpoint written by `irdc train`?")]
    Meta {
        path: String,
        key: &'static str,
        problem: String,
    },
}

pub fn save(
    path: &Path,
    tensors: &[(String, Tensor<f32>)],
    meta: &Meta,
) -> Result<(), CheckpointError> {
    save_with(path, tensors, meta, &[])
}

/// [`save`] with more metadata (`best.safetensors`' `val_psnr`), read back by [`metadata`].
pub fn save_with(
    path: &Path,
    tensors: &[(String, Tensor<f32>)],
    meta: &Meta,
    extra: &[(&str, String)],
) -> Result<(), CheckpointError> {
    let m: HashMap<String, String> = [
        ("model_source", meta.model_source.clone()),
        ("model_path", meta.model_path.clone()),
        ("sets", meta.sets.join(",")),
        ("generator_graph", meta.generator_graph.clone()),
        ("step", meta.step.to_string()),
        ("total_steps", meta.total_steps.to_string()),
        ("seed", meta.seed.to_string()),
    ]
    .into_iter()
    .chain(extra.iter().cloned())
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(write_tensors(path, tensors, &m)?)
}

/// Every metadata entry of a checkpoint, [`Meta`]'s and those [`save_with`] added.
pub fn metadata(path: &Path) -> Result<HashMap<String, String>, CheckpointError> {
    Ok(read_tensors(path)?.metadata.into_iter().collect())
}

pub fn load(path: &Path) -> Result<(HashMap<String, Tensor<f32>>, Meta), CheckpointError> {
    let file = read_tensors(path)?;
    let p = path.display().to_string();
    let text = |key: &'static str| -> Result<String, CheckpointError> {
        file.metadata
            .get(key)
            .cloned()
            .ok_or_else(|| CheckpointError::Meta {
                path: p.clone(),
                key,
                problem: "missing".into(),
            })
    };
    let number = |key: &'static str| -> Result<u64, CheckpointError> {
        let t = text(key)?;
        t.parse().map_err(|_| CheckpointError::Meta {
            path: p.clone(),
            key,
            problem: format!("`{t}`, not a whole number"),
        })
    };
    let meta = Meta {
        model_source: text("model_source")?,
        model_path: text("model_path")?,
        sets: text("sets")?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        generator_graph: text("generator_graph")?,
        step: number("step")?,
        total_steps: number("total_steps")?,
        seed: number("seed")?,
    };
    Ok((file.tensors.into_iter().collect(), meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_a_missing_key_is_named() {
        let dir = std::env::temp_dir().join(format!("irdc-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.safetensors");
        let meta = Meta {
            model_source: "Model(graphs: {})".into(),
            model_path: "m.ron".into(),
            sets: vec!["N=4".into(), "ndf=4".into()],
            generator_graph: "generator".into(),
            step: 3,
            total_steps: 6,
            seed: 9,
        };
        let t = vec![(
            "generator.w".to_string(),
            Tensor::new(&[2], vec![1.5, -2.0]),
        )];
        save(&path, &t, &meta).unwrap();
        let (tensors, back) = load(&path).unwrap();
        assert_eq!(back, meta);
        assert_eq!(tensors["generator.w"].data, vec![1.5, -2.0]);
        write_tensors(&path, &t, &HashMap::new()).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert_eq!(err, format!("{}: metadata `model_source` is missing; is it a checkpoint written by `irdc train`?", path.display()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
