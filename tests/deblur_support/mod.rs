//! What the `irdc deblur` tests share: the binary, a scratch folder per test, a checkpoint as
//! the trainer writes one (a seeded N=4 IRD-GAN generator), and that generator on the CPU
//! reference, which `irdc deblur` must match.
#![allow(dead_code)]

use ir::Tensor;
use runtime::image_io::quantize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const MODEL: &str = include_str!("../../models/ird_gan.ron");

pub fn irdc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irdc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("irdc-deblur-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn generator(h: usize, w: usize) -> ir::Graph {
    let model = ir::front::parse(MODEL, "models/ird_gan.ron", &[("N".into(), "4".into())]).unwrap();
    model
        .build("generator", &[("blurred".into(), vec![1, 3, h, w])])
        .unwrap()
}

/// A checkpoint as `irdc train` writes one: prefixed generator parameters, a critic tensor that
/// must be ignored, and the model in the metadata.
pub fn write_checkpoint(path: &Path) -> HashMap<String, Tensor<f32>> {
    let params = ir::init::init_params(&generator(16, 16), 3);
    let mut tensors: Vec<(String, Tensor<f32>)> = params
        .iter()
        .map(|(n, t)| (format!("generator.{n}"), t.clone()))
        .collect();
    tensors.push(("critic.conv1.weight".into(), Tensor::zeros(&[2, 3, 4, 4])));
    let meta = runtime::checkpoint::Meta {
        model_source: MODEL.to_string(),
        model_path: "models/ird_gan.ron".to_string(),
        sets: vec!["N=4".to_string()],
        generator_graph: "generator".to_string(),
        step: 0,
        total_steps: 10,
        seed: 3,
    };
    runtime::checkpoint::save(path, &tensors, &meta).unwrap();
    params.into_iter().collect()
}

/// The generator on the CPU reference (f64): reflect-padded (no edge repeat) at the bottom and
/// right to a multiple of 4, run, cropped back: what `irdc deblur` must give.
pub fn cpu_deblur(params: &HashMap<String, Tensor<f32>>, img: &Tensor<f32>) -> Tensor<f64> {
    let (h, w) = (img.shape[2], img.shape[3]);
    let (ph, pw) = (h.div_ceil(4) * 4, w.div_ceil(4) * 4);
    let mirror = |i: usize, n: usize| if i < n { i } else { 2 * (n - 1) - i };
    let mut padded = Tensor::<f64>::zeros(&[1, 3, ph, pw]);
    for c in 0..3 {
        for y in 0..ph {
            for x in 0..pw {
                padded.data[(c * ph + y) * pw + x] =
                    img.at4(0, c, mirror(y, h), mirror(x, w)) as f64;
            }
        }
    }
    let graph = generator(ph, pw);
    let mut feeds: HashMap<String, Tensor<f64>> =
        params.iter().map(|(k, v)| (k.clone(), v.cast())).collect();
    feeds.insert("blurred".into(), padded);
    let out = &ir::cpu::evaluate(&graph, &feeds).unwrap()[graph.outputs[0].1];
    let mut cropped = Tensor::<f64>::zeros(&[1, 3, h, w]);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                cropped.data[(c * h + y) * w + x] = out.at4(0, c, y, x);
            }
        }
    }
    cropped
}

pub fn pattern(x: u32, y: u32, c: u32) -> u8 {
    ((x * 37 + y * 23 + c * 71 + x * y) % 256) as u8
}

/// Whether `out` is the CPU reference of `params` on `img`, within one level of rounding.
pub fn matches(out: &Path, params: &HashMap<String, Tensor<f32>>, img: &Tensor<f32>) -> bool {
    let written = image::open(out).unwrap().to_rgb8();
    let expected = cpu_deblur(params, img);
    let (h, w) = (img.shape[2], img.shape[3]);
    (0..3).all(|c| {
        (0..h).all(|y| {
            (0..w).all(|x| {
                let want = quantize(expected.data[(c * h + y) * w + x] as f32) as i32;
                let got = written.get_pixel(x as u32, y as u32).0[c] as i32;
                (want - got).abs() <= 1
            })
        })
    })
}
