//! The data sources behind one interface, [`Source`], opened from a [`DataSpec`] by [`open`].
//!
//! Indexing: in the training split `index` counts samples across epochs: epoch `index / len`
//! visits the images in a fresh order shuffled from `(seed, epoch)`, and the crop, flip and (for
//! synthetic blur) the kernel of sample `index` come from `rng_for(seed, index)`. So a pair
//! depends only on the seed and its index, and a resumed run sees the same data. The test split
//! is fixed: `0..len` in file order, the centre crop (or the whole image), no flip.
//!
//! Held-out splits: GoPro's `test` folder; for a folder of sharp images the last tenth of its
//! files in sorted order (at least one; the folder needs two images); for the procedural images
//! [`PROCEDURAL_TEST_LEN`] images drawn from a stream that training never uses.

use super::crop::{cut, flip, hw, pad_to, window};
use super::{blur, procedural, rng_for, DataError, Pair, Split};
use crate::image_io::read_image;
use rand::seq::SliceRandom;
use rand::Rng;
use std::path::{Path, PathBuf};

/// How many held-out procedural images there are.
pub const PROCEDURAL_TEST_LEN: u64 = 32;
/// Stream offset of the held-out procedural images: far past any training index.
const HELD_OUT: u64 = 1 << 62;
/// Keeps the epochs' shuffle streams apart from the samples' (which are named by the indices).
const EPOCH_SALT: u64 = 0x0e90_c5ee_d5a1_7000;

/// Where the pairs come from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSpec {
    /// Procedural sharp images of `size x size`, blurred by the synthetic blur with Gaussian
    /// noise `noise` (standard deviation on the [0, 1] scale; 0 for none). `blur_scale` scales
    /// the blur trajectories (1: docs/spec.md's 60 pixels; small images want shorter ones).
    Procedural {
        size: usize,
        noise: f32,
        blur_scale: f64,
    },
    /// GoPro's layout: `dir/{train,test}/<sequence>/{blur,sharp}/NNNNNN.png`, paired by file name.
    GoPro { dir: PathBuf },
    /// Every image under `dir` (recursively, any format the `image` crate reads), blurred on the
    /// fly by the synthetic blur with noise `noise` and trajectories scaled by `blur_scale`.
    SharpFolder {
        dir: PathBuf,
        noise: f32,
        blur_scale: f64,
    },
}

/// A data set split: pairs by index. (`len` is `None` for an endless source, so an `is_empty`
/// would say nothing more.)
#[allow(clippy::len_without_is_empty)]
pub trait Source: Send {
    /// Pairs per epoch (training) or in all (test); `None`: endless (procedural training).
    fn len(&self) -> Option<u64>;
    /// The pair at `index` (see the module comment). An unreadable image is an error naming the
    /// file; the [`super::Loader`] skips it with a warning.
    fn pair(&self, index: u64) -> Result<Pair, DataError>;
    /// One line for logs, e.g. `GoPro /data/GOPRO_Large (train): 2103 pairs`.
    fn describe(&self) -> String;
}

/// Open `split` of `spec`, with crops of `crop x crop` (`None`: whole images; images smaller than
/// the crop are reflect-padded), all randomness drawn from `seed`.
pub fn open(
    spec: &DataSpec,
    split: Split,
    crop: Option<usize>,
    seed: u64,
) -> Result<Box<dyn Source>, DataError> {
    let aug = Augment { split, crop, seed };
    Ok(match spec {
        DataSpec::Procedural {
            size,
            noise,
            blur_scale,
        } => Box::new(Procedural {
            size: *size,
            blur: Synthetic::new(*noise, *blur_scale)?,
            aug,
        }),
        DataSpec::GoPro { dir } => Box::new(GoPro::open(dir, aug)?),
        DataSpec::SharpFolder {
            dir,
            noise,
            blur_scale,
        } => Box::new(SharpFolder::open(
            dir,
            Synthetic::new(*noise, *blur_scale)?,
            aug,
        )?),
    })
}

/// The crop and flip of one split.
#[derive(Debug, Clone, Copy)]
struct Augment {
    split: Split,
    crop: Option<usize>,
    seed: u64,
}

impl Augment {
    fn train(&self) -> bool {
        self.split == Split::Train
    }

    /// Which of `len` items sample `index` shows: shuffled per epoch in training, in order in test.
    fn item(&self, index: u64, len: u64, what: &str) -> Result<u64, DataError> {
        if !self.train() {
            return if index < len {
                Ok(index)
            } else {
                Err(DataError::Index {
                    index,
                    len,
                    what: what.into(),
                })
            };
        }
        let mut order: Vec<u64> = (0..len).collect();
        order.shuffle(&mut rng_for(self.seed ^ EPOCH_SALT, index / len));
        Ok(order[(index % len) as usize])
    }

    /// The same window and flip of `sharp` and of the blurred image that `blurred` makes for a
    /// window (so synthetic blur only blurs what is kept).
    fn apply(
        &self,
        sharp: &ir::Tensor<f32>,
        rng: &mut impl Rng,
        blurred: impl FnOnce(&ir::Tensor<f32>, super::crop::Window) -> ir::Tensor<f32>,
    ) -> (ir::Tensor<f32>, ir::Tensor<f32>) {
        let c = self.crop.unwrap_or(0);
        let sharp = pad_to(sharp, c, c);
        let (h, w) = hw(&sharp);
        let win = window(h, w, self.crop, self.train(), rng);
        let b = blurred(&sharp, win);
        let s = cut(&sharp, win);
        if self.train() && rng.random::<bool>() {
            (flip(&b), flip(&s))
        } else {
            (b, s)
        }
    }

    /// A pair made from a sharp image by the synthetic blur.
    fn synthetic(&self, sharp: &ir::Tensor<f32>, s: Synthetic, index: u64, name: String) -> Pair {
        let mut rng = rng_for(self.seed, index);
        let noise = s.noise;
        let k = blur::Kernel::random_scaled(&mut rng, s.blur_scale);
        let (mut blurred, sharp) = self.apply(sharp, &mut rng, |img, win| {
            blur::blur_window(img, &k, win.y, win.x, win.h, win.w)
        });
        blur::add_noise(&mut blurred, noise, &mut rng);
        Pair {
            blurred,
            sharp,
            name,
        }
    }
}

/// The synthetic blur's settings, checked.
#[derive(Debug, Clone, Copy)]
struct Synthetic {
    noise: f32,
    blur_scale: f64,
}

impl Synthetic {
    fn new(noise: f32, blur_scale: f64) -> Result<Synthetic, DataError> {
        if !(noise >= 0.0 && noise.is_finite()) {
            return Err(DataError::Setting(format!(
                "blur noise {noise}: expected a finite value >= 0"
            )));
        }
        if !(blur_scale > 0.0 && blur_scale <= 4.0) {
            return Err(DataError::Setting(format!(
                "blur scale {blur_scale}: expected a value in (0, 4] (1 is docs/spec.md's 60-pixel trajectories)"
            )));
        }
        Ok(Synthetic { noise, blur_scale })
    }
}

struct Procedural {
    size: usize,
    blur: Synthetic,
    aug: Augment,
}

impl Source for Procedural {
    fn len(&self) -> Option<u64> {
        (!self.aug.train()).then_some(PROCEDURAL_TEST_LEN)
    }
    fn pair(&self, index: u64) -> Result<Pair, DataError> {
        let image = if self.aug.train() {
            index
        } else {
            self.aug
                .item(index, PROCEDURAL_TEST_LEN, "the procedural test split")?
                + HELD_OUT
        };
        let sharp = procedural::image(self.size, self.size, self.aug.seed, image);
        Ok(self
            .aug
            .synthetic(&sharp, self.blur, image, format!("procedural/{image}")))
    }
    fn describe(&self) -> String {
        let n = self
            .len()
            .map_or("endless".into(), |n| format!("{n} images"));
        format!("procedural {0}x{0} ({1:?}): {n}", self.size, self.aug.split)
    }
}

struct GoPro {
    dir: PathBuf,
    /// (name `<sequence>/<file>`, blurred path, sharp path), sorted by name.
    pairs: Vec<(String, PathBuf, PathBuf)>,
    aug: Augment,
}

impl GoPro {
    fn open(root: &Path, aug: Augment) -> Result<GoPro, DataError> {
        let dir = root.join(if aug.train() { "train" } else { "test" });
        if !root.is_dir() {
            return Err(DataError::NoDir(root.into()));
        }
        if !dir.is_dir() {
            return Err(DataError::Empty {
                path: root.into(),
                message: format!(
                    "no `{}` folder; expected GoPro's layout {{train,test}}/<sequence>/{{blur,sharp}}/NNNNNN.png",
                    dir.file_name().unwrap_or_default().to_string_lossy()
                ),
            });
        }
        let mut pairs = Vec::new();
        for seq in list(&dir)?.into_iter().filter(|p| p.is_dir()) {
            let seq_name = seq
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let (blur_dir, sharp_dir) = (seq.join("blur"), seq.join("sharp"));
            if !blur_dir.is_dir() || !sharp_dir.is_dir() {
                eprintln!(
                    "warning: {}: no blur/ and sharp/ folders; skipped",
                    seq.display()
                );
                continue;
            }
            for b in list(&blur_dir)?.into_iter().filter(|p| p.is_file()) {
                let file = b.file_name().unwrap_or_default().to_os_string();
                let s = sharp_dir.join(&file);
                if s.is_file() {
                    pairs.push((format!("{seq_name}/{}", file.to_string_lossy()), b, s));
                } else {
                    eprintln!(
                        "warning: {}: no sharp image {}; skipped",
                        b.display(),
                        s.display()
                    );
                }
            }
        }
        if pairs.is_empty() {
            return Err(DataError::Empty {
                path: dir,
                message: "no blur/sharp pairs; expected <sequence>/{blur,sharp}/NNNNNN.png".into(),
            });
        }
        Ok(GoPro {
            dir: root.into(),
            pairs,
            aug,
        })
    }
}

impl Source for GoPro {
    fn len(&self) -> Option<u64> {
        Some(self.pairs.len() as u64)
    }
    fn pair(&self, index: u64) -> Result<Pair, DataError> {
        let i = self
            .aug
            .item(index, self.pairs.len() as u64, &self.describe())?;
        let (name, b, s) = &self.pairs[i as usize];
        let (blurred, sharp) = (read_image(b)?, read_image(s)?);
        if blurred.shape != sharp.shape {
            return Err(DataError::Image {
                path: b.clone(),
                message: format!(
                    "size {:?} differs from its sharp image's {:?}",
                    &blurred.shape[2..],
                    &sharp.shape[2..]
                ),
            });
        }
        let mut rng = rng_for(self.aug.seed, index);
        let c = self.aug.crop.unwrap_or(0);
        let blurred = pad_to(&blurred, c, c);
        let (blurred, sharp) = self
            .aug
            .apply(&sharp, &mut rng, |_, win| cut(&blurred, win));
        Ok(Pair {
            blurred,
            sharp,
            name: name.clone(),
        })
    }
    fn describe(&self) -> String {
        format!(
            "GoPro {} ({:?}): {} pairs",
            self.dir.display(),
            self.aug.split,
            self.pairs.len()
        )
    }
}

struct SharpFolder {
    dir: PathBuf,
    /// This split's files, sorted.
    files: Vec<PathBuf>,
    blur: Synthetic,
    aug: Augment,
}

impl SharpFolder {
    fn open(dir: &Path, blur: Synthetic, aug: Augment) -> Result<SharpFolder, DataError> {
        let mut files = image_files(dir)?;
        if files.len() < 2 {
            return Err(DataError::Empty {
                path: dir.into(),
                message: format!(
                    "{} image(s); a folder needs at least 2 (one held out for evaluation)",
                    files.len()
                ),
            });
        }
        let held_out = files.len().div_ceil(10);
        let test = files.split_off(files.len() - held_out);
        let files = if aug.train() { files } else { test };
        Ok(SharpFolder {
            dir: dir.into(),
            files,
            blur,
            aug,
        })
    }
}

impl Source for SharpFolder {
    fn len(&self) -> Option<u64> {
        Some(self.files.len() as u64)
    }
    fn pair(&self, index: u64) -> Result<Pair, DataError> {
        let i = self
            .aug
            .item(index, self.files.len() as u64, &self.describe())?;
        let path = &self.files[i as usize];
        let sharp = read_image(path)?;
        let name = path
            .strip_prefix(&self.dir)
            .unwrap_or(path)
            .to_string_lossy()
            .to_string();
        Ok(self.aug.synthetic(&sharp, self.blur, index, name))
    }
    fn describe(&self) -> String {
        format!(
            "sharp images {} ({:?}): {} images",
            self.dir.display(),
            self.aug.split,
            self.files.len()
        )
    }
}

/// The entries of `dir`, sorted.
fn list(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let err = |e: std::io::Error| DataError::List {
        path: dir.into(),
        message: e.to_string(),
    };
    let mut out = std::fs::read_dir(dir)
        .map_err(err)?
        .map(|e| e.map(|e| e.path()).map_err(err))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    Ok(out)
}

/// Every file under `dir` (recursively, sorted) whose extension the `image` crate can decode.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    if !dir.is_dir() {
        return Err(DataError::NoDir(dir.into()));
    }
    let mut out = Vec::new();
    for p in list(dir)? {
        if p.is_dir() {
            out.extend(image_files(&p)?);
        } else if image::ImageFormat::from_path(&p).is_ok_and(|f| f.reading_enabled()) {
            out.push(p);
        }
    }
    Ok(out)
}
