//! The GPU core: a compiled [`compiler::Plan`] on a wgpu device. Opening the adapter with its
//! real limits and every GPU error captured (`device`), the plan's arenas as buffers and its
//! kernels dispatched (`exec`), pipelines compiled once and cached on disk (`pipeline_cache`),
//! per-kernel timing (`profile`), the GEMM tiles tuned per adapter (`autotune`), and tensor
//! files (`io`). Nothing here knows about images or training.

pub mod autotune;
pub mod device;
pub mod driver;
pub mod error;
pub mod exec;
pub mod io;
pub(crate) mod layout;
pub mod pipeline_cache;
pub mod profile;
pub mod streamed;
