//! Training and evaluation data: pairs of a blurred and a sharp image.
//!
//! - [`blur`]: the synthetic motion blur of docs/spec.md (Boracchi & Foi's random trajectory).
//! - [`procedural`]: sharp RGB images drawn from a seed, so training needs no download.
//! - [`source`]: the sources behind one interface ([`Source`], opened by [`open`] from a
//!   [`DataSpec`]): GoPro, any folder of sharp images blurred on the fly, the procedural images;
//!   with the random crop and flip of docs/spec.md.
//! - [`pairs`]: folders of blurred/sharp pairs in GoPro's layout (evaluation, validation).
//! - [`loader`]: a background thread that prepares pairs ahead of the training loop.
//!
//! Every random choice is drawn from a ChaCha8 stream named by `(seed, index)` ([`rng_for`]), so
//! a pair depends on nothing but the seed and its index: a resumed run sees the same data.
//! Images are `ir::Tensor<f32>` `[1, 3, H, W]` in [-1, 1] (`pixel / 127.5 - 1`), as in the model.

pub mod blur;
mod crop;
pub mod loader;
pub mod pairs;
pub mod procedural;
pub mod source;
#[cfg(test)]
mod tests;

pub use blur::{Kernel, Trajectory};
pub use loader::Loader;
pub use source::{open, DataSpec, Source};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

/// One training or evaluation example.
#[derive(Debug, Clone)]
pub struct Pair {
    /// `[1, 3, H, W]` in [-1, 1]: the network's input.
    pub blurred: ir::Tensor<f32>,
    /// `[1, 3, H, W]` in [-1, 1]: the target, the same window of the same scene.
    pub sharp: ir::Tensor<f32>,
    /// Where it came from, for reports and output file names, e.g. `GOPR0384_11_00/000001.png`,
    /// `flowers/rose.jpg` or `procedural/17`.
    pub name: String,
}

/// Which part of a data set: the training part, or the part held out for evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0}: no such directory")]
    NoDir(PathBuf),
    #[error("cannot read image {path}: {message}")]
    Image { path: PathBuf, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("cannot list {path}: {message}")]
    List { path: PathBuf, message: String },
    /// The data set is there but holds nothing usable for the split asked for.
    #[error("{path}: {message}")]
    Empty { path: PathBuf, message: String },
    /// Index out of range of a finite split (the test split has no epochs).
    #[error("index {index} is past the end of {what} ({len} pairs)")]
    Index { index: u64, len: u64, what: String },
    /// Every image tried in a row failed: no point in going on.
    #[error("{failed} images in a row could not be read; the last: {last}")]
    NothingReadable { failed: u64, last: Box<DataError> },
    /// A data setting out of its range.
    #[error("{0}")]
    Setting(String),
}

impl From<crate::image_io::ImageError> for DataError {
    fn from(e: crate::image_io::ImageError) -> Self {
        use crate::image_io::ImageError as E;
        match e {
            E::Read { path, message } => DataError::Image { path, message },
            E::Write { path, message } => DataError::Write { path, message },
            E::Shape(s) => DataError::Image {
                path: PathBuf::new(),
                message: format!("tensor of shape {s:?} is not an image"),
            },
            e @ E::Alpha { .. } => DataError::Image {
                path: PathBuf::new(),
                message: e.to_string(),
            },
        }
    }
}

/// The random stream of item `index` under `seed`: independent across indices, reproducible.
pub fn rng_for(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}
