//! `irdc blur` end to end: a folder of sharp images in, GoPro's layout and the kernels out, a
//! corrupt image reported and skipped, a missing folder a clear error.

use std::path::PathBuf;
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("irdc-blur-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn irdc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_irdc"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn blur_writes_pairs_and_kernels_in_gopro_layout() {
    let dir = scratch("ok");
    let sharp = dir.join("photos");
    std::fs::create_dir_all(&sharp).unwrap();
    // A non-square picture with edges, and a grey one.
    image::RgbImage::from_fn(40, 24, |x, y| {
        image::Rgb([if x < 20 { 230 } else { 20 }, (y * 10) as u8, 128])
    })
    .save(sharp.join("a.png"))
    .unwrap();
    image::GrayImage::from_fn(16, 16, |x, y| image::Luma([((x + y) % 2 * 255) as u8]))
        .save(sharp.join("b.png"))
        .unwrap();
    std::fs::write(sharp.join("c.png"), b"not a png").unwrap();
    let out = dir.join("out");
    let run = irdc(&[
        "blur",
        "--sharp",
        sharp.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--seed",
        "3",
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(run.status.success(), "{stderr}");
    assert!(stdout.starts_with("2 pairs written to"), "{stdout}");
    assert!(stdout.contains("1 unreadable images skipped"), "{stdout}");
    assert!(stderr.contains("c.png"), "{stderr}");
    let root = out.join("photos");
    for (file, w, h) in [("000000.png", 40, 24), ("000001.png", 16, 16)] {
        let b = image::open(root.join("blur").join(file)).unwrap().to_rgb8();
        let s = image::open(root.join("sharp").join(file))
            .unwrap()
            .to_rgb8();
        assert_eq!((b.width(), b.height()), (w, h));
        assert_eq!((s.width(), s.height()), (w, h));
        assert_ne!(b, s, "{file} was not blurred");
        let k = image::open(root.join("kernel").join(file))
            .unwrap()
            .to_luma8();
        assert_eq!(k.width() % 2, 1);
        assert_eq!(k.pixels().map(|p| p.0[0]).max(), Some(255));
    }
    assert!(!root.join("blur/000002.png").exists());
    let names = std::fs::read_to_string(root.join("names.txt")).unwrap();
    assert_eq!(names, "000000.png a.png\n000001.png b.png\n");
    // The same seed gives the same files.
    let again = dir.join("again");
    irdc(&[
        "blur",
        "--sharp",
        sharp.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--seed",
        "3",
    ]);
    assert_eq!(
        std::fs::read(root.join("blur/000000.png")).unwrap(),
        std::fs::read(again.join("photos/blur/000000.png")).unwrap()
    );
}

#[test]
fn blur_of_a_missing_folder_is_a_clear_error() {
    let dir = scratch("missing");
    let missing = dir.join("nope");
    let run = irdc(&[
        "blur",
        "--sharp",
        missing.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    assert_eq!(
        String::from_utf8_lossy(&run.stderr).trim(),
        format!("error: {}: no such directory", missing.display())
    );
}
