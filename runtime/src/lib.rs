//! irdc's runtime, in two parts: the GPU core (`gpu/`: a compiled [`compiler::Plan`] on a wgpu
//! device) and the deblurring application on it (`app/`: training, data, metrics, images,
//! checkpoints).
//!
//! [`Gpu::new`] opens the adapter named by `IRDC_ADAPTER` (a case-insensitive part of its name)
//! on the backends named by `IRDC_BACKEND` (vulkan, metal, dx12, gl, all; default: the primary
//! ones), else the most capable one, with the adapter's real limits. [`Executable`] lays the
//! plan's arenas out as buffers and runs its kernels; [`execute`] does it all once.

pub mod app;
pub mod gpu;

// The modules by their short paths (`runtime::train`, `crate::io`), wherever they live.
pub use app::{atomic, checkpoint, data, image_io, metrics, pad, train};
pub(crate) use gpu::layout;
pub use gpu::{autotune, device, driver, error, exec, io, pipeline_cache, profile, streamed};

pub use device::Gpu;
pub use error::RuntimeError;
pub use exec::{execute, Executable};
pub use pipeline_cache::PipelineCache;
pub use streamed::Streamed;
