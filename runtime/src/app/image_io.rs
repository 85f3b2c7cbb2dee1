//! Images in and out of the generator's value range.
//!
//! Reading accepts anything the `image` crate decodes (PNG, JPEG, BMP, TIFF, WebP, ...), turned
//! upright by its EXIF orientation, and gives an RGB f32 tensor `[1, 3, H, W]` in [-1, 1]
//! (`pixel / 127.5 - 1`, pixel on the 8-bit scale):
//! - grey (with or without alpha) is replicated to the three channels;
//! - 16-bit and float images are brought to the 8-bit scale as floats (`value / 257` for 16
//!   bits), so their extra precision is kept rather than rounded away.
//!
//! [`read_photo`] also keeps what the generator does not see: the alpha channel and whether the
//! file was deeper than 8 bits a channel, so [`write_photo`] gives them back (alpha unchanged,
//! 16-bit PNG). [`read_image`] is the RGB alone: training and metrics ignore alpha.
//!
//! Writing is PNG, atomically ([`crate::atomic`]): 8-bit `round((x + 1) * 127.5)` or 16-bit
//! `round((x + 1) * 32767.5)`, clamped ([`quantize`], [`quantize16`]).

use crate::atomic::write_atomically;
use image::{DynamicImage, ImageDecoder, ImageEncoder};
use ir::Tensor;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read image {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write image {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("image tensor has shape {0:?}; an image is [1, 3, H, W]")]
    Shape(Vec<usize>),
    #[error("an alpha channel of {found} values for an image of {expected} pixels")]
    Alpha { found: usize, expected: usize },
}

/// Bits a channel of a written PNG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    Eight,
    Sixteen,
}

/// An image as read: its upright RGB for the generator and what the generator leaves alone.
#[derive(Clone, Debug)]
pub struct Photo {
    /// `[1, 3, H, W]` in [-1, 1].
    pub rgb: Tensor<f32>,
    /// Row-major alpha on the scale of `depth` (0..=255 or 0..=65535); None without one.
    pub alpha: Option<Vec<u16>>,
    /// Sixteen where the file had more than 8 bits a channel (16-bit or float).
    pub depth: Depth,
}

/// Read the image at `path` as `[1, 3, H, W]` in [-1, 1] (see the module comment).
pub fn read_image(path: &Path) -> Result<Tensor<f32>, ImageError> {
    Ok(read_photo(path)?.rgb)
}

/// Read the image at `path` with its alpha and depth (see the module comment).
pub fn read_photo(path: &Path) -> Result<Photo, ImageError> {
    let decoded = decode_upright(path).map_err(|message| ImageError::Read {
        path: path.into(),
        message,
    })?;
    let color = decoded.color();
    let depth = if color.bytes_per_pixel() == color.channel_count() {
        Depth::Eight
    } else {
        Depth::Sixteen
    };
    let alpha = color.has_alpha().then(|| match depth {
        Depth::Eight => decoded.to_rgba8().pixels().map(|p| p.0[3].into()).collect(),
        Depth::Sixteen => decoded.to_rgba16().pixels().map(|p| p.0[3]).collect(),
    });
    Ok(Photo {
        rgb: to_tensor(decoded),
        alpha,
        depth,
    })
}

/// Decode `path` and apply its EXIF orientation, so the generator sees the photo as shown.
fn decode_upright(path: &Path) -> Result<DynamicImage, String> {
    let mut decoder = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .into_decoder()
        .map_err(|e| e.to_string())?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let mut decoded = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    decoded.apply_orientation(orientation);
    Ok(decoded)
}

fn to_tensor(decoded: DynamicImage) -> Tensor<f32> {
    let (w, h) = (decoded.width() as usize, decoded.height() as usize);
    let mut t = Tensor::zeros(&[1, 3, h, w]);
    let mut put = |i: usize, rgb: [f64; 3]| {
        for (c, v) in rgb.into_iter().enumerate() {
            t.data[c * h * w + i] = (v / 127.5 - 1.0) as f32;
        }
    };
    let color = decoded.color();
    if color.bytes_per_pixel() == color.channel_count() {
        // 8 bits a channel: exact.
        for (i, px) in decoded.into_rgb8().pixels().enumerate() {
            put(i, px.0.map(f64::from));
        }
    } else {
        // Deeper (16-bit, float): through f32 RGB in [0, 1] (16 bits: v / 65535), which `* 255`
        // brings to the 8-bit scale (16-bit v lands on v / 257), precision kept.
        for (i, px) in decoded.into_rgb32f().pixels().enumerate() {
            put(i, px.0.map(|v| (v as f64 * 255.0).clamp(0.0, 255.0)));
        }
    }
    t
}

/// An image tensor `[1, 3, H, W]` in [-1, 1] as interleaved RGB 8-bit: `round((x + 1) * 127.5)`,
/// clamped.
pub fn to_rgb8(t: &Tensor<f32>) -> Result<image::RgbImage, ImageError> {
    let (h, w) = image_size(t)?;
    Ok(image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let px = |c: usize| quantize(t.data[(c * h + y as usize) * w + x as usize]);
        image::Rgb([px(0), px(1), px(2)])
    }))
}

fn image_size(t: &Tensor<f32>) -> Result<(usize, usize), ImageError> {
    match t.shape[..] {
        [1, 3, h, w] => Ok((h, w)),
        _ => Err(ImageError::Shape(t.shape.clone())),
    }
}

/// One value in [-1, 1] to its 8-bit level.
pub fn quantize(x: f32) -> u8 {
    ((x + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
}

/// One value in [-1, 1] to its 16-bit level (the inverse of reading 16-bit v as v / 257).
pub fn quantize16(x: f32) -> u16 {
    ((x as f64 + 1.0) * 32767.5).round().clamp(0.0, 65535.0) as u16
}

/// Write an image tensor `[1, 3, H, W]` in [-1, 1] as an RGB 8-bit PNG (whatever the extension).
pub fn write_png(path: &Path, t: &Tensor<f32>) -> Result<(), ImageError> {
    write_photo(path, t, None, Depth::Eight)
}

/// Write `rgb` (`[1, 3, H, W]` in [-1, 1]) as a PNG of `depth` bits a channel, RGBA with `alpha`
/// (on the scale of `depth`, as [`Photo::alpha`]) where given, else RGB.
pub fn write_photo(
    path: &Path,
    rgb: &Tensor<f32>,
    alpha: Option<&[u16]>,
    depth: Depth,
) -> Result<(), ImageError> {
    let (h, w) = image_size(rgb)?;
    if let Some(a) = alpha.filter(|a| a.len() != h * w) {
        return Err(ImageError::Alpha {
            found: a.len(),
            expected: h * w,
        });
    }
    use image::ExtendedColorType::{Rgb16, Rgb8, Rgba16, Rgba8};
    let (bytes, color) = match (depth, alpha.is_some()) {
        (Depth::Eight, a) => (
            interleave(rgb, alpha, |x| [quantize(x)], |a| [a as u8]),
            if a { Rgba8 } else { Rgb8 },
        ),
        (Depth::Sixteen, a) => (
            interleave(
                rgb,
                alpha,
                |x| quantize16(x).to_ne_bytes(),
                u16::to_ne_bytes,
            ),
            if a { Rgba16 } else { Rgb16 },
        ),
    };
    write_atomically(path, |out| {
        image::codecs::png::PngEncoder::new(out).write_image(&bytes, w as u32, h as u32, color)
    })
    .map_err(|message| ImageError::Write {
        path: path.into(),
        message,
    })
}

/// The pixels of `rgb` (and `alpha`) interleaved as the encoder takes them (16 bits in native
/// byte order): `level` gives a value's bytes, `alpha_level` an alpha's (already on the scale).
fn interleave<const N: usize>(
    rgb: &Tensor<f32>,
    alpha: Option<&[u16]>,
    level: impl Fn(f32) -> [u8; N],
    alpha_level: impl Fn(u16) -> [u8; N],
) -> Vec<u8> {
    let n = rgb.shape[2] * rgb.shape[3];
    let mut out = Vec::with_capacity(n * 4 * N);
    for i in 0..n {
        for c in 0..3 {
            out.extend(level(rgb.data[c * n + i]));
        }
        if let Some(a) = alpha {
            out.extend(alpha_level(a[i]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("irdc-image-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn rgb8_round_trips_exactly() {
        let path = scratch("rgb.png");
        let img = image::RgbImage::from_fn(5, 3, |x, y| {
            image::Rgb([(x * 50) as u8, (y * 100) as u8, (x * 7 + y * 80) as u8])
        });
        img.save(&path).unwrap();
        let t = read_image(&path).unwrap();
        assert_eq!(t.shape, vec![1, 3, 3, 5]);
        assert_eq!(t.at4(0, 1, 2, 0), 200.0 / 127.5 - 1.0);
        assert_eq!(to_rgb8(&t).unwrap(), img);
    }

    #[test]
    fn grey_is_replicated_alpha_dropped_and_16_bit_scaled_by_257() {
        let grey = scratch("grey.png");
        image::GrayImage::from_fn(2, 2, |x, y| image::Luma([(10 + x + 2 * y) as u8]))
            .save(&grey)
            .unwrap();
        let t = read_image(&grey).unwrap();
        for c in 0..3 {
            assert_eq!(t.at4(0, c, 1, 1), 13.0 / 127.5 - 1.0);
        }

        let rgba = scratch("rgba.png");
        image::RgbaImage::from_pixel(1, 1, image::Rgba([40, 80, 120, 0]))
            .save(&rgba)
            .unwrap();
        let t = read_image(&rgba).unwrap();
        assert_eq!(to_rgb8(&t).unwrap().get_pixel(0, 0).0, [40, 80, 120]);

        let deep = scratch("deep.png");
        image::ImageBuffer::<image::Rgb<u16>, _>::from_pixel(
            1,
            1,
            image::Rgb([257 * 3, 1000, 65535]),
        )
        .save(&deep)
        .unwrap();
        let t = read_image(&deep).unwrap();
        let want = [3.0, 1000.0 / 257.0, 255.0].map(|v: f64| (v / 127.5 - 1.0) as f32);
        for (c, w) in want.into_iter().enumerate() {
            assert!(
                (t.at4(0, c, 0, 0) - w).abs() < 1e-6,
                "{c}: {}",
                t.at4(0, c, 0, 0)
            );
        }
    }

    #[test]
    fn alpha_and_16_bits_come_back_as_they_were() {
        let deep = scratch("rgba16.png");
        let img = image::ImageBuffer::<image::Rgba<u16>, _>::from_fn(3, 2, |x, y| {
            image::Rgba([
                x as u16 * 20001 + 7,
                y as u16 * 30001 + 3,
                65535,
                1000 * x as u16 + 1,
            ])
        });
        img.save(&deep).unwrap();
        let photo = read_photo(&deep).unwrap();
        assert_eq!(photo.depth, Depth::Sixteen);
        let back = scratch("rgba16-back.png");
        write_photo(&back, &photo.rgb, photo.alpha.as_deref(), photo.depth).unwrap();
        assert_eq!(image::open(&back).unwrap().into_rgba16(), img);

        // Grey and alpha, 8 bits: grey replicated, alpha kept.
        let la = scratch("la8.png");
        image::ImageBuffer::<image::LumaA<u8>, _>::from_fn(2, 2, |x, y| {
            image::LumaA([(x * 90 + y) as u8, (y * 200 + x) as u8])
        })
        .save(&la)
        .unwrap();
        let photo = read_photo(&la).unwrap();
        assert_eq!(
            (photo.depth, photo.alpha.clone()),
            (Depth::Eight, Some(vec![0, 1, 200, 201]))
        );
        write_photo(&back, &photo.rgb, photo.alpha.as_deref(), photo.depth).unwrap();
        let written = image::open(&back).unwrap();
        assert_eq!(written.color(), image::ColorType::Rgba8);
        assert_eq!(written.to_rgba8().get_pixel(1, 1).0, [91, 91, 91, 201]);

        let err = write_photo(&back, &photo.rgb, Some(&[1, 2]), Depth::Eight).unwrap_err();
        assert_eq!(
            err.to_string(),
            "an alpha channel of 2 values for an image of 4 pixels"
        );
    }

    /// An EXIF block (big-endian TIFF) holding only the orientation tag.
    fn exif_orientation(value: u8) -> Vec<u8> {
        let mut exif =
            b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01".to_vec();
        exif.extend([0, value, 0, 0, 0, 0, 0, 0]);
        exif
    }

    #[test]
    fn the_exif_orientation_is_applied_on_reading() {
        use image::ImageEncoder;
        // Stored turned a quarter left, tagged "rotate 90 clockwise to show" (6).
        let upright = image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([(x * 80 + y) as u8, 0, 9]));
        let stored = image::imageops::rotate270(&upright);
        let path = scratch("oriented.png");
        let mut png = image::codecs::png::PngEncoder::new(std::fs::File::create(&path).unwrap());
        png.set_exif_metadata(exif_orientation(6)).unwrap();
        png.write_image(stored.as_raw(), 2, 3, image::ExtendedColorType::Rgb8)
            .unwrap();
        let t = read_image(&path).unwrap();
        assert_eq!(to_rgb8(&t).unwrap(), upright);
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let path = scratch("corrupt.png");
        std::fs::write(&path, b"\x89PNG\r\n\x1a\nthis is not a png").unwrap();
        let err = read_image(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot read image {}: ", path.display())),
            "{err}"
        );
        let missing = read_image(Path::new("/nonexistent/a.png"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("cannot read image /nonexistent/a.png: "),
            "{missing}"
        );
    }

    #[test]
    fn quantize_rounds_and_clamps() {
        assert_eq!(quantize(-1.5), 0);
        assert_eq!(quantize(-1.0), 0);
        assert_eq!(quantize(1.0), 255);
        assert_eq!(quantize(3.0), 255);
        assert_eq!(quantize(0.0), 128); // 127.5 rounds half away from zero
    }
}
