//! PSNR and SSIM against scikit-image 0.26.0 (scipy 1.17.1, numpy 2.4.6) on fixed image pairs.
//!
//! The pairs are integer formulas, written identically here (`pair`) and in the Python that made
//! the expected numbers, run once:
//!
//! ```python
//! import numpy as np
//! from skimage.metrics import structural_similarity, peak_signal_noise_ratio
//!
//! def pair(k, w, h):
//!     a = np.zeros((h, w, 3), np.int64); b = np.zeros((h, w, 3), np.int64)
//!     for y in range(h):
//!         for x in range(w):
//!             for c in range(3):
//!                 if k == 0:
//!                     a[y, x, c] = (x * 7 + y * 11 + c * 40) % 256
//!                     b[y, x, c] = min(max(a[y, x, c] + (x * 5 + y * 3 + c) % 9 - 4, 0), 255)
//!                 elif k == 1:
//!                     a[y, x, c] = ((x * x + 3 * y * c + 13 * y) * 7) % 256
//!                     b[y, x, c] = a[y, x, c] * 3 // 4 + 32
//!                 else:
//!                     a[y, x, c] = (x * y * 3 + c * 20) % 256
//!                     b[y, x, c] = (((x + 1) % w) * y * 3 + c * 20) % 256
//!     return a.astype(np.uint8), b.astype(np.uint8)
//!
//! for k, (w, h) in enumerate([(16, 12), (23, 31), (40, 33)]):
//!     a, b = pair(k, w, h)
//!     p = peak_signal_noise_ratio(a, b, data_range=255)
//!     s = structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
//!                               use_sample_covariance=False, data_range=255)
//!     print(f"({k}, {w}, {h}, {p!r}, {s!r}),")
//! ```

use ir::Tensor;
use runtime::metrics::{psnr, ssim, MetricError, Rgb8};

/// (pair, width, height, PSNR, SSIM) as scikit-image computes them.
const EXPECTED: [(usize, usize, usize, f64, f64); 3] = [
    (0, 16, 12, 39.92122155581136, 0.9923976853065367),
    (1, 23, 31, 22.768076795343045, 0.9600280438631338),
    (2, 40, 33, 8.61256737376359, 0.12121346323840439),
];

fn pair(k: usize, w: usize, h: usize) -> (Rgb8, Rgb8) {
    let mut a = vec![0u8; 3 * w * h];
    let mut b = vec![0u8; 3 * w * h];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let (pa, pb) = match k {
                    0 => {
                        let pa = (x * 7 + y * 11 + c * 40) % 256;
                        let pb = (pa as i64 + ((x * 5 + y * 3 + c) % 9) as i64 - 4).clamp(0, 255);
                        (pa, pb as usize)
                    }
                    1 => {
                        let pa = ((x * x + 3 * y * c + 13 * y) * 7) % 256;
                        (pa, pa * 3 / 4 + 32)
                    }
                    _ => (
                        (x * y * 3 + c * 20) % 256,
                        (((x + 1) % w) * y * 3 + c * 20) % 256,
                    ),
                };
                let i = (c * h + y) * w + x;
                a[i] = pa as u8;
                b[i] = pb as u8;
            }
        }
    }
    let img = |data| Rgb8 {
        width: w,
        height: h,
        data,
    };
    (img(a), img(b))
}

#[test]
fn psnr_and_ssim_match_scikit_image() {
    for (k, w, h, want_psnr, want_ssim) in EXPECTED {
        let (a, b) = pair(k, w, h);
        let p = psnr(&a, &b).unwrap();
        let s = ssim(&a, &b).unwrap();
        assert!(
            (p - want_psnr).abs() < 1e-4,
            "pair {k}: PSNR {p} vs {want_psnr}"
        );
        assert!(
            (s - want_ssim).abs() < 1e-5,
            "pair {k}: SSIM {s} vs {want_ssim}"
        );
        // Both are symmetric in their arguments.
        assert!((psnr(&b, &a).unwrap() - p).abs() < 1e-12);
        assert!((ssim(&b, &a).unwrap() - s).abs() < 1e-12);
    }
}

#[test]
fn identical_images_give_infinite_psnr_and_ssim_one() {
    let (a, _) = pair(1, 23, 31);
    assert_eq!(psnr(&a, &a).unwrap(), f64::INFINITY);
    assert!((ssim(&a, &a).unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn tensors_are_rounded_to_8_bit_before_comparing() {
    // 0.001 apart in [-1, 1] is less than half a level: the same 8-bit image.
    let t = Tensor::new(&[1, 3, 1, 2], vec![-1.0, -0.5, 0.0, 0.2, 0.5, 1.0]);
    let mut u = t.clone();
    u.data.iter_mut().for_each(|x| *x += 0.001);
    let (a, b) = (
        Rgb8::from_tensor(&t).unwrap(),
        Rgb8::from_tensor(&u).unwrap(),
    );
    assert_eq!(a.data, vec![0, 64, 128, 153, 191, 255]);
    assert_eq!(psnr(&a, &b).unwrap(), f64::INFINITY);
}

#[test]
fn mismatched_or_tiny_images_are_errors() {
    let (a, _) = pair(0, 16, 12);
    let (b, _) = pair(1, 23, 31);
    assert_eq!(psnr(&a, &b), Err(MetricError::Size(16, 12, 23, 31)));
    assert_eq!(
        ssim(&a, &b).unwrap_err().to_string(),
        "images differ in size: 16x12 against 23x31 (width x height)"
    );
    let tiny = Rgb8 {
        width: 10,
        height: 20,
        data: vec![0; 600],
    };
    assert_eq!(
        ssim(&tiny, &tiny).unwrap_err().to_string(),
        "SSIM needs images of at least 11x11 pixels (its window); this one is 10x20"
    );
}
