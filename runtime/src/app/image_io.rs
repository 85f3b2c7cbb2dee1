//! Images in and out of the generator's value range.
//!
//! Reading accepts anything the `image` crate decodes (PNG, JPEG, BMP, TIFF, WebP, ...) and gives
//! an RGB f32 tensor `[1, 3, H, W]` in [-1, 1] (`pixel / 127.5 - 1`, pixel on the 8-bit scale):
//! - grey (with or without alpha) is replicated to the three channels;
//! - alpha is DROPPED (not composited): GoPro and the usual deblurring sets have none, and a
//!   blurred photograph with transparency has no meaningful background to blend onto;
//! - 16-bit and float images are brought to the 8-bit scale as floats (`value / 257` for 16
//!   bits), so their extra precision is kept rather than rounded away.
//!
//! Writing is RGB 8-bit PNG: `round((x + 1) * 127.5)`, clamped to 0..=255 ([`to_rgb8`]).

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
}

/// Read the image at `path` as `[1, 3, H, W]` in [-1, 1] (see the module comment).
pub fn read_image(path: &Path) -> Result<Tensor<f32>, ImageError> {
    let read = |message: String| ImageError::Read {
        path: path.into(),
        message,
    };
    let reader = image::ImageReader::open(path)
        .map_err(|e| read(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| read(e.to_string()))?;
    let decoded = reader.decode().map_err(|e| read(e.to_string()))?;
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
    Ok(t)
}

/// An image tensor `[1, 3, H, W]` in [-1, 1] as interleaved RGB 8-bit: `round((x + 1) * 127.5)`,
/// clamped.
pub fn to_rgb8(t: &Tensor<f32>) -> Result<image::RgbImage, ImageError> {
    let [1, 3, h, w] = t.shape[..] else {
        return Err(ImageError::Shape(t.shape.clone()));
    };
    Ok(image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let px = |c: usize| quantize(t.data[(c * h + y as usize) * w + x as usize]);
        image::Rgb([px(0), px(1), px(2)])
    }))
}

/// One value in [-1, 1] to its 8-bit level.
pub fn quantize(x: f32) -> u8 {
    ((x + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
}

/// Write an image tensor `[1, 3, H, W]` in [-1, 1] as an RGB 8-bit PNG (whatever the extension).
pub fn write_png(path: &Path, t: &Tensor<f32>) -> Result<(), ImageError> {
    to_rgb8(t)?
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| ImageError::Write {
            path: path.into(),
            message: e.to_string(),
        })
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
