//! The on-disk caches: the autotuned conv tiles (written, re-read without timing again, a
//! corrupt file ignored with a warning) and the driver's pipeline cache (written after the first
//! compile, loaded by the next `PipelineCache` over the same directory, results still right);
//! and kernels that differ only in where their operands live share one compiled pipeline.

mod gpu_support;

use compiler::ConvTiles;
use gpu_support::{assert_close, gpu, random_feeds, G};
use ir::ops::Conv2d;
use ir::Op;
use runtime::{autotune, Executable, PipelineCache};
use std::collections::HashMap;
use std::path::PathBuf;

/// A fresh, empty directory of this test's own.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("irdc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn tuned_tiles_are_cached_and_reread_and_a_corrupt_cache_is_ignored() {
    let dir = scratch("tiles");
    let two = [ConvTiles::default(), autotune::candidates()[1]];
    let first = autotune::tune_cached(gpu(), &dir, &two).unwrap();
    assert!(!first.from_cache);
    assert!(two.contains(&first.tiles));
    let file = dir.join("conv_tiles.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&autotune::adapter_key(&gpu().info, gpu().precision())),
        "{text}"
    );

    // No candidates to time: only the cache can answer.
    let second = autotune::tune_cached(gpu(), &dir, &[]).unwrap();
    assert_eq!(second.tiles, first.tiles);
    assert!(second.from_cache);

    std::fs::write(&file, "{ not json").unwrap();
    let again = autotune::tune_cached(gpu(), &dir, &two[..1]).unwrap();
    assert_eq!(again.tiles, ConvTiles::default());
    assert!(!again.from_cache);
    // Rewritten whole.
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with('{') && text.contains("\"bm\""), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_pipeline_cache_starts_from_the_first_ones_file() {
    let dir = scratch("pipelines");
    let mut g = G::new("cached_conv");
    let x = g.input("x", &[1, 5, 6, 7]);
    let w = g.param("w", &[6, 5, 3, 3]);
    let conv = Conv2d {
        stride: 1,
        pad: 1,
        bias: false,
        groups: 1,
    };
    let y = g.op("y", Op::Conv2d(conv), &[x, w]);
    g.output(y);
    let feeds = random_feeds(&g.0, 7);
    let f64_feeds: HashMap<_, _> = feeds.iter().map(|(k, v)| (k.clone(), v.cast())).collect();
    let cpu = ir::cpu::evaluate::<f64>(&g.0, &f64_feeds).unwrap();
    let (plan, _) = compiler::compile(&g.0, &gpu().target()).unwrap();
    let has_cache = PipelineCache::persists_on(gpu());
    for round in 0..2 {
        let mut cache = PipelineCache::with_dir(Some(dir.clone()));
        let exe = Executable::with_cache(gpu(), &plan, &mut cache).unwrap();
        if has_cache {
            assert_eq!(cache.loaded_bytes() > 0, round == 1, "round {round}");
        }
        exe.write(0, &feeds["x"].data).unwrap();
        exe.write(1, &feeds["w"].data).unwrap();
        exe.run().unwrap();
        assert_close("cached_conv", &exe.read(y).unwrap(), &cpu[y]);
        drop(cache);
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        if has_cache {
            assert_eq!(files.len(), 1, "{files:?}");
            assert!(files[0].metadata().unwrap().len() > 0);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kernels_that_differ_only_in_offsets_share_one_pipeline() {
    // Three convs of the same shape in a chain: three kernels, one WGSL, one pipeline, each
    // dispatch reading and writing its own values (checked against the CPU).
    let mut g = G::new("three_convs");
    let mut v = g.input("x", &[1, 4, 6, 6]);
    let conv = Conv2d {
        stride: 1,
        pad: 1,
        bias: false,
        groups: 1,
    };
    for i in 0..3 {
        let w = g.param(&format!("w{i}"), &[4, 4, 3, 3]);
        v = g.op(&format!("c{i}"), Op::Conv2d(conv.clone()), &[v, w]);
    }
    g.output(v);
    let feeds = random_feeds(&g.0, 11);
    let f64_feeds: HashMap<_, _> = feeds.iter().map(|(k, v)| (k.clone(), v.cast())).collect();
    let cpu = ir::cpu::evaluate::<f64>(&g.0, &f64_feeds).unwrap();
    let (plan, _) = compiler::compile(&g.0, &gpu().target()).unwrap();
    assert_eq!(plan.kernels.len(), 3);
    assert!(plan.kernels.iter().all(|k| k.wgsl == plan.kernels[0].wgsl));
    let mut cache = PipelineCache::with_dir(None);
    let exe = Executable::with_cache(gpu(), &plan, &mut cache).unwrap();
    // One pipeline for the three convs.
    assert_eq!(cache.len(), 1);
    for (id, node) in g.0.nodes.iter().enumerate() {
        let key = match &node.op {
            Op::Input { name } => name.clone(),
            Op::Param { .. } => node.name.clone(),
            _ => continue,
        };
        exe.write(id, &feeds[&key].data).unwrap();
    }
    exe.run().unwrap();
    assert_close("three_convs", &exe.read(v).unwrap(), &cpu[v]);
}
