//! `irdc deblur` never harms its inputs: outputs that would land on inputs or on each other are
//! refused before anything is written, a failed write leaves no partial file, and what the
//! generator does not touch (alpha, 16-bit depth, EXIF orientation) comes through.

mod deblur_support;

use deblur_support::*;
use image::ImageEncoder;
use runtime::image_io::{quantize, quantize16, read_image};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file under `dir` with its bytes, to show a refused run changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(snapshot(&p));
        } else {
            files.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
    files
}

fn deblur(ck: &Path, inputs: &[&Path], out: &Path) -> (Option<i32>, String) {
    let mut args = vec!["deblur", "--checkpoint", ck.to_str().unwrap()];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--out", out.to_str().unwrap()]);
    let o = irdc(&args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn rgb(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([0, 1, 2].map(|c| pattern(x, y, c))))
}

const OVER: &str = "error: nothing written: outputs would write over inputs; choose an --out that \
                    holds none of them:\n";

#[test]
fn an_out_holding_the_inputs_is_refused_and_nothing_is_touched() {
    let dir = scratch("over");
    let ck = dir.join("ck.safetensors");
    write_checkpoint(&ck);
    let inputs = dir.join("in");
    std::fs::create_dir_all(inputs.join("sub")).unwrap();
    let (x_png, x_jpg) = (inputs.join("x.png"), inputs.join("x.jpg"));
    rgb(8, 8).save(&x_png).unwrap();
    rgb(8, 8).save(&x_jpg).unwrap();
    let before = snapshot(&dir);

    // The case: --out is the inputs' folder (spelt another way), where x.jpg and x.png
    // both land on the original x.png.
    let out = inputs.join("sub/..");
    let (code, err) = deblur(&ck, &[&inputs], &out);
    assert_eq!(code, Some(1), "{err}");
    let want = format!(
        "{OVER}  {} -> {}, which is the input {}\n  {} -> {}, which is the input {}\n",
        x_jpg.display(),
        out.join("x.png").display(),
        x_png.display(),
        x_png.display(),
        out.join("x.png").display(),
        x_png.display()
    );
    assert_eq!(err, want);

    // An output that is a link to an input is the input too.
    let linked = dir.join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink(&x_png, linked.join("y.png")).unwrap();
    let y = dir.join("y.bmp");
    rgb(8, 8).save(&y).unwrap();
    let before_link = snapshot(&dir);
    let (code, err) = deblur(&ck, &[&x_png, &y], &linked);
    assert_eq!(code, Some(1), "{err}");
    let want = format!(
        "{OVER}  {} -> {}, which is the input {}\n",
        y.display(),
        linked.join("y.png").display(),
        x_png.display()
    );
    assert_eq!(err, want);
    assert_eq!(snapshot(&dir), before_link);
    std::fs::remove_file(&y).unwrap();
    std::fs::remove_dir_all(&linked).unwrap();
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn inputs_sharing_an_output_are_refused_before_anything_is_written() {
    let dir = scratch("shared");
    let ck = dir.join("ck.safetensors");
    write_checkpoint(&ck);
    let a = dir.join("a");
    std::fs::create_dir_all(a.join("deeper")).unwrap();
    let (x_png, x_jpg, x_bmp) = (a.join("x.png"), a.join("x.jpg"), a.join("deeper/x.bmp"));
    for p in [&x_png, &x_jpg, &x_bmp] {
        rgb(8, 8).save(p).unwrap();
    }
    let before = snapshot(&dir);
    let out = dir.join("out");
    let (code, err) = deblur(&ck, &[&a], &out);
    assert_eq!(code, Some(1), "{err}");
    let o = out.join("x.png");
    let want = format!(
        "error: nothing written: inputs with the same name would write the same output; rename \
         one, or deblur them into different --out folders:\n  {} and {} -> {}\n  {} and {} -> {}\n",
        x_bmp.display(),
        x_jpg.display(),
        o.display(),
        x_bmp.display(),
        x_png.display(),
        o.display()
    );
    assert_eq!(err, want);
    assert!(!out.exists());
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn a_failed_write_leaves_no_partial_file_and_names_it() {
    let dir = scratch("failed");
    let ck = dir.join("ck.safetensors");
    write_checkpoint(&ck);
    let input = dir.join("x.png");
    rgb(8, 8).save(&input).unwrap();
    let out = dir.join("out");
    // A folder where the PNG must go: the encoded file cannot be renamed onto it.
    std::fs::create_dir_all(out.join("x.png")).unwrap();
    let (code, err) = deblur(&ck, &[&input], &out);
    assert_eq!(code, Some(1), "{err}");
    let want = format!(
        "[1/1] error: cannot write image {}: Is a directory (os error 21); skipped\n",
        out.join("x.png").display()
    );
    assert!(err.contains(&want), "{err}");
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, [out.join("x.png")]);
    assert_eq!(std::fs::read_dir(out.join("x.png")).unwrap().count(), 0);
}

/// An EXIF block (big-endian TIFF) holding only the orientation tag.
fn exif_orientation(value: u8) -> Vec<u8> {
    let mut exif = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01".to_vec();
    exif.extend([0, value, 0, 0, 0, 0, 0, 0]);
    exif
}

/// `img` written with EXIF orientation 6 ("turn 90 degrees clockwise to show"), stored turned
/// the other way so that it shows as `img`.
fn save_turned(img: &image::RgbImage, path: &Path, png: bool) {
    let stored = image::imageops::rotate270(img);
    let (w, h) = stored.dimensions();
    let file = std::fs::File::create(path).unwrap();
    let color = image::ExtendedColorType::Rgb8;
    if png {
        let mut e = image::codecs::png::PngEncoder::new(file);
        e.set_exif_metadata(exif_orientation(6)).unwrap();
        e.write_image(stored.as_raw(), w, h, color).unwrap();
    } else {
        let mut e = image::codecs::jpeg::JpegEncoder::new_with_quality(file, 95);
        e.set_exif_metadata(exif_orientation(6)).unwrap();
        e.write_image(stored.as_raw(), w, h, color).unwrap();
    }
}

#[test]
fn alpha_16_bits_and_orientation_come_through() {
    let dir = scratch("kept");
    let ck = dir.join("ck.safetensors");
    let params = write_checkpoint(&ck);
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    // All shown 12x8, so the generator compiles once.
    let alpha8 = |x: u32, y: u32| (x * 21 + y * 5) as u8;
    image::RgbaImage::from_fn(12, 8, |x, y| {
        let [r, g, b] = [0, 1, 2].map(|c| pattern(x, y, c));
        image::Rgba([r, g, b, alpha8(x, y)])
    })
    .save(inputs.join("rgba8.png"))
    .unwrap();
    // Sub-8-bit detail: levels that are no multiple of 257.
    let alpha16 = |x: u32, y: u32| (x * 5003 + y * 77 + 1) as u16;
    image::ImageBuffer::<image::Rgba<u16>, _>::from_fn(12, 8, |x, y| {
        let [r, g, b] = [0, 1, 2].map(|c| pattern(x, y, c) as u16 * 255 + (x * 19 + y) as u16);
        image::Rgba([r, g, b, alpha16(x, y)])
    })
    .save(inputs.join("rgba16.png"))
    .unwrap();
    let upright = rgb(12, 8);
    save_turned(&upright, &inputs.join("turned.png"), true);
    save_turned(&upright, &inputs.join("turned_jpeg.jpg"), false);
    let out = dir.join("out");
    let (code, err) = deblur(&ck, &[&inputs], &out);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        err.matches("compiling the generator for ").count(),
        1,
        "{err}"
    );

    let expect = |input: &Path| cpu_deblur(&params, &read_image(input).unwrap());
    let rgba8 = image::open(out.join("rgba8.png")).unwrap();
    assert_eq!(rgba8.color(), image::ColorType::Rgba8);
    let want = expect(&inputs.join("rgba8.png"));
    for (x, y, px) in rgba8.to_rgba8().enumerate_pixels() {
        assert_eq!(px.0[3], alpha8(x, y), "alpha at ({x}, {y})");
        for c in 0..3 {
            let w = quantize(want.at4(0, c, y as usize, x as usize) as f32);
            assert!(
                px.0[c].abs_diff(w) <= 1,
                "({c}, {y}, {x}): {} vs {w}",
                px.0[c]
            );
        }
    }

    let rgba16 = image::open(out.join("rgba16.png")).unwrap();
    assert_eq!(rgba16.color(), image::ColorType::Rgba16);
    let want = expect(&inputs.join("rgba16.png"));
    let mut fine = 0;
    for (x, y, px) in rgba16.to_rgba16().enumerate_pixels() {
        assert_eq!(px.0[3], alpha16(x, y), "alpha at ({x}, {y})");
        for c in 0..3 {
            let w = quantize16(want.at4(0, c, y as usize, x as usize) as f32);
            assert!(
                px.0[c].abs_diff(w) <= 4,
                "({c}, {y}, {x}): {} vs {w}",
                px.0[c]
            );
            fine += usize::from(px.0[c] % 257 != 0);
        }
    }
    assert!(fine > 12 * 8 * 3 / 2, "{fine} levels off the 8-bit grid");

    // Written upright (12x8, no orientation tag): the generator saw the photo as shown.
    let turned = image::open(out.join("turned.png")).unwrap().to_rgb8();
    assert_eq!(turned.dimensions(), (12, 8));
    let upright_path = dir.join("upright.png");
    upright.save(&upright_path).unwrap();
    let want = expect(&upright_path);
    for (x, y, px) in turned.enumerate_pixels() {
        for c in 0..3 {
            let w = quantize(want.at4(0, c, y as usize, x as usize) as f32);
            assert!(
                px.0[c].abs_diff(w) <= 1,
                "({c}, {y}, {x}): {} vs {w}",
                px.0[c]
            );
        }
    }
    let jpeg = image::open(out.join("turned_jpeg.png")).unwrap();
    assert_eq!((jpeg.width(), jpeg.height()), (12, 8));
}
