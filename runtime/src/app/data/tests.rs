//! The sources and the loader on tiny data sets written to a temporary folder.

use super::*;
use std::path::{Path, PathBuf};

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("irdc-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A 12x10 RGB image of distinct pixels, and its inverse.
fn pattern(seed: u32) -> (image::RgbImage, image::RgbImage) {
    let img = image::RgbImage::from_fn(12, 10, |x, y| {
        let v = (x * 7 + y * 31 + seed * 50) % 256;
        image::Rgb([v as u8, (v * 3 % 256) as u8, (255 - v) as u8])
    });
    let mut inv = img.clone();
    inv.pixels_mut().for_each(|p| p.0 = p.0.map(|v| 255 - v));
    (img, inv)
}

/// GoPro layout with `blur` = the inverse of `sharp`, so a pair cut from the same window with the
/// same flip satisfies `blurred == -sharp` exactly.
fn gopro(root: &Path, split: &str, seq: &str, n: u32) {
    for d in ["blur", "sharp"] {
        std::fs::create_dir_all(root.join(split).join(seq).join(d)).unwrap();
    }
    for i in 0..n {
        let (s, b) = pattern(i);
        let file = format!("{:06}.png", i + 1);
        s.save(root.join(split).join(seq).join("sharp").join(&file))
            .unwrap();
        b.save(root.join(split).join(seq).join("blur").join(&file))
            .unwrap();
    }
}

#[test]
fn gopro_pairs_share_the_crop_window_and_the_flip() {
    let root = scratch("gopro");
    gopro(&root, "train", "SEQ_A", 2);
    let src = open(
        &DataSpec::GoPro { dir: root.clone() },
        Split::Train,
        Some(6),
        5,
    )
    .unwrap();
    assert_eq!(src.len(), Some(2));
    let full = crate::image_io::read_image(&root.join("train/SEQ_A/sharp/000001.png")).unwrap();
    let mut flips = [0, 0];
    for index in 0..16 {
        let p = src.pair(index).unwrap();
        assert_eq!(p.sharp.shape, [1, 3, 6, 6]);
        assert_eq!(p.blurred.shape, [1, 3, 6, 6]);
        for (b, s) in p.blurred.data.iter().zip(&p.sharp.data) {
            assert!((b + s).abs() < 1e-6, "blurred and sharp windows differ");
        }
        // The sharp crop is a window of its image, mirrored or not.
        if p.name == "SEQ_A/000001.png" {
            let found = (0..=4)
                .flat_map(|y| (0..=6).map(move |x| (y, x)))
                .find_map(|(y, x)| {
                    let win = crop::Window { y, x, h: 6, w: 6 };
                    let c = crop::cut(&full, win);
                    (c == p.sharp)
                        .then_some(0)
                        .or((crop::flip(&c) == p.sharp).then_some(1))
                });
            flips[found.expect("the crop is a window of the image")] += 1;
        }
        // Deterministic per (seed, index).
        assert_eq!(src.pair(index).unwrap().sharp, p.sharp);
    }
    assert!(
        flips[0] > 0 && flips[1] > 0,
        "flips {flips:?}: both orientations should occur"
    );
    let test = open(&DataSpec::GoPro { dir: root.clone() }, Split::Test, None, 5);
    assert!(test.err().unwrap().to_string().contains("no `test` folder"));
}

#[test]
fn a_corrupt_image_is_named_and_skipped_by_the_loader() {
    let root = scratch("corrupt");
    gopro(&root, "test", "S", 3);
    let bad = root.join("test/S/blur/000002.png");
    std::fs::write(&bad, b"not a png").unwrap();
    let src = open(&DataSpec::GoPro { dir: root.clone() }, Split::Test, None, 0).unwrap();
    let err = src.pair(1).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("cannot read image {}", bad.display())),
        "{err}"
    );
    let got: Vec<u64> = Loader::spawn(src, 0, None, 2)
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(got, [0, 2]);
}

#[test]
fn nothing_readable_stops_the_loader_with_an_error() {
    let root = scratch("allbad");
    gopro(&root, "train", "S", 2);
    for f in ["000001.png", "000002.png"] {
        std::fs::write(root.join("train/S/sharp").join(f), b"junk").unwrap();
    }
    let src = open(&DataSpec::GoPro { dir: root }, Split::Train, Some(4), 0).unwrap();
    let items: Vec<_> = Loader::spawn(src, 0, None, 1).collect();
    assert_eq!(items.len(), 1);
    let err = items[0].as_ref().unwrap_err().to_string();
    assert!(
        err.starts_with("2 images in a row could not be read"),
        "{err}"
    );
}

#[test]
fn sharp_folder_holds_out_its_last_images_and_pads_small_ones() {
    let root = scratch("folder");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    pattern(0).0.save(root.join("a.png")).unwrap();
    image::GrayImage::from_fn(5, 4, |x, _| image::Luma([x as u8 * 40]))
        .save(root.join("b.png"))
        .unwrap();
    pattern(2).0.save(root.join("sub/c.png")).unwrap();
    std::fs::write(root.join("notes.txt"), "not an image").unwrap();
    let spec = DataSpec::SharpFolder {
        dir: root.clone(),
        noise: 0.0,
        blur_scale: 1.0,
    };
    let train = open(&spec, Split::Train, Some(8), 1).unwrap();
    let test = open(&spec, Split::Test, None, 1).unwrap();
    assert_eq!((train.len(), test.len()), (Some(2), Some(1)));
    assert_eq!(test.pair(0).unwrap().name, "sub/c.png");
    assert_eq!(test.pair(0).unwrap().sharp.shape, [1, 3, 10, 12]);
    // b.png (5x4) is reflect-padded up to the 8x8 crop.
    for i in 0..4 {
        let p = train.pair(i).unwrap();
        assert_eq!(
            (p.sharp.shape.clone(), p.blurred.shape.clone()),
            (vec![1, 3, 8, 8], vec![1, 3, 8, 8])
        );
    }
    let missing = open(
        &DataSpec::SharpFolder {
            dir: root.join("nope"),
            noise: 0.0,
            blur_scale: 1.0,
        },
        Split::Train,
        None,
        0,
    );
    assert_eq!(
        missing.err().unwrap().to_string(),
        format!("{}: no such directory", root.join("nope").display())
    );
}

#[test]
fn procedural_source_is_seeded_and_its_test_split_is_apart() {
    let spec = DataSpec::Procedural {
        size: 24,
        noise: 0.01,
        blur_scale: 1.0,
    };
    let a = open(&spec, Split::Train, Some(16), 9).unwrap();
    assert_eq!(a.len(), None);
    let p = a.pair(3).unwrap();
    assert_eq!(p.sharp.shape, [1, 3, 16, 16]);
    assert_eq!(p.blurred.data, a.pair(3).unwrap().blurred.data);
    assert_ne!(p.sharp, a.pair(4).unwrap().sharp);
    assert_ne!(p.blurred, p.sharp);
    let test = open(&spec, Split::Test, None, 9).unwrap();
    assert_eq!(test.len(), Some(source::PROCEDURAL_TEST_LEN));
    assert_eq!(test.pair(0).unwrap().sharp.shape, [1, 3, 24, 24]);
    assert!(matches!(
        test.pair(source::PROCEDURAL_TEST_LEN),
        Err(DataError::Index { .. })
    ));
    // The loader delivers the same pairs, in index order, from any starting point.
    let got: Vec<_> = Loader::spawn(
        open(&spec, Split::Train, Some(16), 9).unwrap(),
        2,
        Some(3),
        2,
    )
    .map(|r| r.unwrap())
    .collect();
    assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(got[1].1.blurred, p.blurred);
}

#[test]
fn scaled_blur_draws_the_same_path_shorter_and_bad_scales_are_refused() {
    use super::blur::Kernel;
    let k1 = Kernel::random(&mut rng_for(3, 7));
    assert_eq!(Kernel::random_scaled(&mut rng_for(3, 7), 1.0), k1);
    let k4 = Kernel::random_scaled(&mut rng_for(3, 7), 0.25);
    // A quarter of the path fits a kernel about a quarter the size (bilinear splats add a pixel).
    assert!(k4.size < k1.size, "{} vs {}", k4.size, k1.size);
    assert!(k4.size <= k1.size / 4 + 4, "{} vs {}", k4.size, k1.size);
    let sum: f32 = k4.weights.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5);
    for (scale, noise, msg) in [
        (
            0.0,
            0.0,
            "blur scale 0: expected a value in (0, 4] (1 is docs/spec.md's 60-pixel trajectories)",
        ),
        (1.0, -0.1, "blur noise -0.1: expected a finite value >= 0"),
    ] {
        let spec = DataSpec::Procedural {
            size: 16,
            noise,
            blur_scale: scale,
        };
        assert_eq!(
            open(&spec, Split::Train, Some(16), 0)
                .err()
                .unwrap()
                .to_string(),
            msg
        );
    }
}
