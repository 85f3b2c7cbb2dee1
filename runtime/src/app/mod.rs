//! The deblurring application on the GPU core: training (`train`: the WGAN-GP step, recipes,
//! validation, run directories), data (`data`: sources, the motion blur, crops, loaders),
//! metrics (PSNR, SSIM), images in and out, checkpoints, atomic file writes, and the padding of
//! whole images for a size-agnostic generator.

pub mod atomic;
pub mod checkpoint;
pub mod data;
pub mod image_io;
pub mod metrics;
pub mod pad;
pub mod train;
