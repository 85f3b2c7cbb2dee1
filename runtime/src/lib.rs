//! irdc's runtime: a compiled [`compiler::Plan`] on a wgpu device.
//!
//! [`Gpu::new`] opens the adapter named by `IRDC_ADAPTER` (a case-insensitive part of its name)
//! on the backends named by `IRDC_BACKEND` (vulkan, metal, dx12, gl, all; default: the primary
//! ones), else the most capable one, with the adapter's real limits. [`Executable`] lays the
//! plan's arenas out as buffers and runs its kernels; [`execute`] does it all once.

pub mod autotune;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod driver;
pub mod error;
pub mod exec;
pub mod image_io;
pub mod io;
mod layout;
pub mod metrics;
pub mod pad;
mod panels;
pub mod pipeline_cache;
pub mod profile;
pub mod train;

pub use device::Gpu;
pub use error::RuntimeError;
pub use exec::{execute, Executable};
pub use pipeline_cache::PipelineCache;
