//! The generator of a training checkpoint, ready for inference (`irdc deblur`, `irdc eval`).
//!
//! The file format is the trainer's (`runtime::checkpoint`): the generator's parameters as
//! `generator.<param name>`, and metadata holding the model file's full RON text, its path, the
//! `--set` overrides and the generator's graph name. The model travels inside the checkpoint, so
//! a checkpoint deblurs even after models/ird_gan.ron has changed. A run with `ema` also stores
//! the moving average of the generator's weights (`ema.generator.<param name>`); inference uses
//! it when it is there, unless asked for the trained weights.

use anyhow::{bail, Context, Result};
use ir::Tensor;
use std::collections::HashMap;
use std::path::Path;

/// The generator a checkpoint holds: its model (with the checkpoint's overrides, then the
/// caller's), its graph name and its parameters without the `generator.` prefix.
pub struct Generator {
    pub model: ir::front::Model,
    pub graph: String,
    pub params: HashMap<String, Tensor<f32>>,
    /// The training step it was saved at (for messages).
    pub step: u64,
    /// Which weights `params` are, for messages: `EMA` (the moving average) or `trained`.
    pub weights: &'static str,
}

/// Load the generator of checkpoint `path`; `sets` (`NAME=VALUE`) apply after the checkpoint's own.
/// Its moving average (EMA) when the checkpoint has one, unless `trained_weights`.
pub fn load_generator(path: &Path, sets: &[String], trained_weights: bool) -> Result<Generator> {
    let (tensors, meta) = runtime::checkpoint::load(path)?;
    let name = path.display();
    let mut overrides = Vec::new();
    for s in &meta.sets {
        overrides
            .push(ir::front::parse_set(s).with_context(|| format!("{name}: metadata `sets`"))?);
    }
    for s in sets {
        overrides.push(ir::front::parse_set(s)?);
    }
    let file_name = format!("{} (in {name})", meta.model_path);
    let model = ir::front::parse(&meta.model_source, &file_name, &overrides)?;
    let ema_prefix = format!("{}generator.", runtime::train::EMA_PREFIX);
    let has_ema = tensors.keys().any(|n| n.starts_with(&ema_prefix));
    let (prefix, weights) = match has_ema && !trained_weights {
        true => (ema_prefix.as_str(), "EMA"),
        false => ("generator.", "trained"),
    };
    let params: HashMap<String, Tensor<f32>> = tensors
        .into_iter()
        .filter_map(|(n, t)| Some((n.strip_prefix(prefix)?.to_string(), t)))
        .collect();
    if params.is_empty() {
        bail!("{name}: no `generator.` tensors; is it a checkpoint written by `irdc train`?");
    }
    Ok(Generator {
        model,
        graph: meta.generator_graph,
        params,
        step: meta.step,
        weights,
    })
}
