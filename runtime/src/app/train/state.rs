//! What a checkpoint holds of the trainer: `generator.<p>`, `critic.<p>` (with a critic),
//! `adam.<net>.m.<p>`, `adam.<net>.v.<p>` (p without the net's prefix) and, with `ema`,
//! `ema.generator.<p>`: enough to continue a run exactly.

use super::params::Which;
use super::trainer::{Trainer, CRITIC, GENERATOR};
use super::TrainError;
use ir::Tensor;
use std::collections::HashMap;

/// The name prefix of the generator's moving average in a checkpoint.
pub const EMA_PREFIX: &str = "ema.";

impl Trainer {
    /// The trained networks, in checkpoint order.
    fn trained(&self) -> Vec<usize> {
        match self.has_critic() {
            true => vec![GENERATOR, CRITIC],
            false => vec![GENERATOR],
        }
    }

    /// Everything a checkpoint holds (see the module comment).
    pub fn state(&self) -> Result<Vec<(String, Tensor<f32>)>, TrainError> {
        let mut out = Vec::new();
        for i in self.trained() {
            let net = &self.nets[i];
            let name = net.prefix.trim_end_matches('.');
            out.extend(net.set.read(&self.gpu, Which::Params, &net.prefix)?);
            for (which, m) in [(Which::M, "m"), (Which::V, "v")] {
                let prefix = format!("adam.{name}.{m}.");
                out.extend(net.set.read(&self.gpu, which, &prefix)?);
            }
        }
        if let Some(e) = &self.ema {
            let net = &self.nets[GENERATOR];
            let prefix = format!("{EMA_PREFIX}{}", net.prefix);
            out.extend(net.set.read_from(&self.gpu, &e.e, &prefix)?);
        }
        Ok(out)
    }

    /// Load what [`Trainer::state`] wrote.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor<f32>>) -> Result<(), TrainError> {
        let get = |n: &str| tensors.get(n).cloned();
        let fail = |m: String| TrainError::Setup(format!("checkpoint: {m}"));
        for i in self.trained() {
            let net = &self.nets[i];
            let name = net.prefix.trim_end_matches('.');
            for (which, prefix) in [
                (Which::Params, net.prefix.clone()),
                (Which::M, format!("adam.{name}.m.")),
                (Which::V, format!("adam.{name}.v.")),
            ] {
                net.set
                    .load(&self.gpu, which, &prefix, &get)
                    .map_err(fail)?;
            }
        }
        if let Some(e) = &self.ema {
            let net = &self.nets[GENERATOR];
            let prefix = format!("{EMA_PREFIX}{}", net.prefix);
            (net.set.load_into(&self.gpu, &e.e, &prefix, &get))
                .map_err(|m| fail(format!("{m} (the moving average of `ema: {}`)", e.decay)))?;
        }
        self.gpu.wait("loading the checkpoint")?;
        Ok(())
    }
}
