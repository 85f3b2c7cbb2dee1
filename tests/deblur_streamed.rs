//! `irdc deblur` of images larger than `--window`: streamed window by window with the whole
//! image's statistics, one compiled plan for every size, within a device memory budget.

mod deblur_support;

use deblur_support::*;
use runtime::image_io::read_image;

fn write_photo(path: &std::path::Path, w: u32, h: u32) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([0, 1, 2].map(|c| pattern(x, y, c))))
        .save(path)
        .unwrap();
}

#[test]
fn images_larger_than_the_window_stream_with_one_plan_and_equal_the_reference() {
    let dir = scratch("streamed");
    let ck = dir.join("ck.safetensors");
    let params = write_checkpoint(&ck);
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    // Two sizes, both over the window on each side (one not a multiple of 4).
    write_photo(&inputs.join("a.png"), 101, 75);
    write_photo(&inputs.join("b.png"), 64, 90);
    let out = dir.join("out");
    let o = irdc(&[
        "deblur",
        "--checkpoint",
        ck.to_str().unwrap(),
        inputs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--window",
        "48",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        err.matches("streaming large images in windows of 48x48")
            .count(),
        1,
        "{err}"
    );
    assert!(!err.contains("compiling the generator for"), "{err}");
    for name in ["a", "b"] {
        let img = read_image(&inputs.join(format!("{name}.png"))).unwrap();
        let written = out.join(format!("{name}.png"));
        assert!(
            matches(&written, &params, &img),
            "{name}: not the reference"
        );
    }
}

#[test]
fn a_memory_budget_shrinks_the_window_or_is_refused() {
    let dir = scratch("memory");
    let ck = dir.join("ck.safetensors");
    write_checkpoint(&ck);
    write_photo(&dir.join("p.png"), 120, 100);
    let run = |memory: &str| {
        let out = dir.join(format!("out-{memory}"));
        let args = ["--window", "96", "--memory", memory];
        let (ck, img, out) = (
            ck.to_str().unwrap(),
            dir.join("p.png"),
            out.to_str().unwrap(),
        );
        let mut all = vec![
            "deblur",
            "--checkpoint",
            ck,
            img.to_str().unwrap(),
            "--out",
            out,
        ];
        all.extend(args);
        let o = irdc(&all);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    // Windows of 96 take about 0.5 MB at N=4; 300K makes them smaller, 1K fits no window.
    let (code, err) = run("300K");
    assert_eq!(code, Some(0), "{err}");
    let side: usize = (err.split("in windows of ").nth(1))
        .and_then(|s| s.split('x').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(side < 96 && side.is_multiple_of(4), "{err}");
    let (code, err) = run("1K");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("error: --memory 0.0 MB is too little: the generator's stages take "),
        "{err}"
    );
    let (code, err) = run("2X");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("`2X`: a size is a number with K, M or G, e.g. 512M or 2G"),
        "{err}"
    );
}

#[test]
fn plan_window_shows_the_stream_plan_deblur_runs() {
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ird_gan.ron");
    let model = model.to_str().unwrap();
    let plan = |input: &str| {
        let args = [
            "plan",
            model,
            "--graph",
            "generator",
            "--set",
            "N=4",
            "--window",
            "48",
        ];
        let mut all = args.to_vec();
        all.extend(["--input", input]);
        let o = irdc(&all);
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        (
            o.status.code(),
            text,
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (code, out, err) = plan("blurred=1x3x90x130");
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with(
            "stream plan `generator`: windows of 48x48 (sides multiples of 4), 44 stages, "
        ),
        "{out}"
    );
    assert_eq!(lines[1], "for a 132x92 image (padded to multiples of 4):");
    // The head keeps 24 of each 48 (halos of 12): 3 x 5 windows cover 92 x 132.
    let first = lines[3].split_whitespace().collect::<Vec<_>>();
    assert_eq!(
        (first[0], first[3], first[4], first[6]),
        ("0", "12", "15", "head_conv"),
        "{out}"
    );
    assert!(
        out.contains("plane ops on the host between stages: 79\n"),
        "{out}"
    );
    let (code, _, err) = plan("image=1x3x90x130");
    assert_eq!(code, Some(1));
    assert!(
        err.contains(
            "error: --input image: graph generator has no input `image`; its image is `blurred`"
        ),
        "{err}"
    );
}

/// Weights that do not fit the model are refused with the tensor and both shapes, whole or
/// streamed (one loader serves both).
#[test]
fn a_checkpoint_that_does_not_fit_is_refused_naming_the_tensor_whole_or_streamed() {
    let dir = scratch("misfit");
    let ck = dir.join("ck.safetensors");
    write_checkpoint(&ck);
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    write_photo(&inputs.join("a.png"), 64, 60);
    for window in ["1024", "48"] {
        let out = dir.join(format!("out{window}"));
        let o = irdc(&[
            "deblur",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--set",
            "N=2",
            inputs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--window",
            window,
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{err}");
        let want = "the checkpoint's generator does not fit the model (were the same --set overrides given?): feed `head_conv.weight`: expected shape [2, 3, 7, 7], found [4, 3, 7, 7]";
        assert!(err.contains(want), "--window {window}: {err}");
    }
}
