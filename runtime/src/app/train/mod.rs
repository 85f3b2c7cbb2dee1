//! Training (docs/spec.md "Training"): the WGAN-GP step on the GPU and the loop around it.
//!
//! - [`params`]: a network's parameters, Adam moments and gradients in flat GPU buffers, and the
//!   copies between them and a compiled graph's arenas.
//! - [`adam`]: Adam on the GPU (`shaders/adam.wgsl`), bias-corrected as PyTorch does, and the
//!   same update on the CPU for the tests.
//! - [`bound`]: one compiled graph tied to the trainer's networks.
//! - [`ema`]: the moving average of the generator's weights (`ema`), on the GPU.
//! - [`trainer`]: the step: G(blurred), `critic_steps` critic updates, one generator update; or a
//!   content step (warm-up, no critic); `setup.rs` builds it, `state.rs` checkpoints it.
//! - [`validate`]: PSNR/SSIM of whole held-out images during training.
//! - [`run`]: the loop: data, learning-rate schedule, checkpoints, metrics ([`metrics_file`]),
//!   validation, samples, NaN guard.
//! - [`collective`]: data-parallel training, the gradients averaged over the ranks (MPI), in
//!   buckets that start while the backward pass runs ([`exchange`]).
//! - [`plot`]: the loss plot and the sample triptychs (PNG).
//! - [`rundir`]: the run directory: the run it holds, starting over, one run at a time (a lock).
//!
//! Every random choice is a function of `(seed, step)`, so a resumed run (from a checkpoint's
//! parameters, moments and step) computes exactly what the uninterrupted run would have.

pub mod adam;
pub mod bound;
pub mod collective;
pub mod ema;
pub mod exchange;
pub mod metrics_file;
pub mod params;
pub mod plot;
pub mod reuse;
pub mod run;
pub mod rundir;
mod setup;
mod state;
pub mod trainer;
pub mod validate;

pub use collective::{Collective, DataParallel, SyncTimes};
pub use exchange::Exchange;
pub use run::{lr_at, run, Event, RunOptions, Validation};
pub use setup::StepGraphs;
pub use state::EMA_PREFIX;
pub use trainer::{StepLosses, Trainer};
pub use validate::{ValScores, Validator};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Front(#[from] ir::front::FrontError),
    #[error(transparent)]
    Compile(#[from] compiler::CompileError),
    #[error(transparent)]
    Runtime(#[from] crate::RuntimeError),
    #[error(transparent)]
    File(#[from] crate::io::TensorFileError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error("{0}")]
    Setup(String),
    /// Frozen parameters (VGG19's) were not supplied but the perceptual loss is on.
    #[error(
        "the perceptual loss needs VGG19's ImageNet weights ({count} tensors, e.g. `{first}`), which irdc cannot ship or download: \
         give them with --vgg19 FILE.safetensors (torchvision's names: features.0.weight, .., features.14.bias), \
         or train without the perceptual loss with --set per_weight=0 (it is {per_weight} now)"
    )]
    MissingFrozen {
        first: String,
        count: usize,
        per_weight: f64,
    },
    /// A loss became NaN or infinite: training stops, the last good checkpoint stays.
    #[error("step {step}: the {what} is {value}; training stopped{}", match checkpoint { Some(c) => format!(", the last good checkpoint ({c}) is kept"), None => String::new() })]
    NonFinite {
        step: u64,
        what: String,
        value: f32,
        checkpoint: Option<String>,
    },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}
