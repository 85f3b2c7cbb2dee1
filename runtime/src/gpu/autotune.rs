//! Per-adapter tiles of the convolution GEMM (`compiler::ConvTiles`): a short timing run of a few
//! candidate tiles on two representative convs (a 1x1 and a 3x3, IRD-GAN's two kinds) picks the
//! fastest, and the choice is cached on disk so the next start of the same adapter and irdc
//! version does not time again.
//!
//! The cache is `conv_tiles.json` in [`cache_dir`], a JSON object from [`adapter_key`] to tiles.
//! `IRDC_AUTOTUNE=0` turns tuning off (default tiles); CPU adapters are tuned only with
//! `IRDC_AUTOTUNE=1`. Tuning never fails a run: an error (a
//! corrupt cache, a candidate the driver rejects) is a warning on stderr and the default tiles.

use crate::error::{Result, RuntimeError};
use crate::{Executable, Gpu};
use compiler::{ConvTiles, Target};
use ir::ops::{Conv2d, Init};
use ir::{Graph, Node, Op};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CACHE_FILE: &str = "conv_tiles.json";

/// The tiles timed; each passes `ConvTiles::check`. The default comes first, so a tie keeps it.
/// Direct tiles (`bk` 0) suit CPUs, workgroup-memory tiles GPUs.
pub fn candidates() -> Vec<ConvTiles> {
    let t = |bm, bn, bk, tm, tn| ConvTiles { bm, bn, bk, tm, tn };
    vec![
        ConvTiles::default(),
        t(16, 512, 0, 16, 16),
        t(8, 256, 0, 8, 8),
        t(16, 64, 0, 16, 1),
        t(16, 128, 0, 16, 2),
        t(64, 64, 16, 4, 4),
        t(64, 64, 16, 8, 4),
    ]
}

/// `$IRDC_CACHE_DIR`, else `$XDG_CACHE_HOME/irdc`, else `~/.cache/irdc`.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("IRDC_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("irdc")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("irdc")))
}

/// What the tiles depend on: the adapter, its driver (and version), the backend, irdc's
/// version (its kernels), and the precision, past f32.
pub fn adapter_key(info: &wgpu::AdapterInfo, precision: compiler::Precision) -> String {
    let key = format!(
        "{} | {} {} | {:?} | irdc {}",
        info.name,
        info.driver,
        info.driver_info,
        info.backend,
        env!("CARGO_PKG_VERSION")
    );
    match precision {
        compiler::Precision::F32 => key,
        p => format!("{key} | {p}"),
    }
}

/// The tiles chosen, and whether they came from the cache (false: timed now).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuned {
    pub tiles: ConvTiles,
    pub from_cache: bool,
}

/// The cached tiles of this adapter in `dir`, or (none cached, or the cache unreadable, which
/// is warned about) time `candidates` and write the winner back.
pub fn tune_cached(gpu: &Gpu, dir: &Path, candidates: &[ConvTiles]) -> Result<Tuned> {
    let path = dir.join(CACHE_FILE);
    let key = adapter_key(&gpu.info, gpu.precision());
    let mut entries = match read_cache(&path) {
        Ok(entries) => entries,
        Err(why) => {
            eprintln!("warning: ignoring the tile cache {}: {why}", path.display());
            BTreeMap::new()
        }
    };
    if let Some(&tiles) = entries.get(&key) {
        if tiles.check().is_ok() {
            let from_cache = true;
            return Ok(Tuned { tiles, from_cache });
        }
    }
    let tiles = fastest(gpu, candidates)?;
    entries.insert(key, tiles);
    let json = serde_json::to_string_pretty(&entries).expect("tiles serialise");
    if let Err(e) = write_atomic(&path, json.as_bytes()) {
        eprintln!(
            "warning: cannot write the tile cache {}: {e}",
            path.display()
        );
    }
    let from_cache = false;
    Ok(Tuned { tiles, from_cache })
}

/// A missing file is an empty cache; anything else unreadable is an error to warn about.
fn read_cache(path: &Path) -> std::result::Result<BTreeMap<String, ConvTiles>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// Write to a temporary file beside `path`, then rename: a reader never sees half a file, and
/// two processes writing at once leave one whole file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Unique per write, not only per process: two caches of one process (tests' threads) may
    // save the same file at once, and a shared temporary name made one rename fail.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}.{n}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// The candidate with the least total time over the representative convs (best of a few runs
/// each, since the CPU may be shared).
pub fn fastest(gpu: &Gpu, candidates: &[ConvTiles]) -> Result<ConvTiles> {
    let mut best: Option<(Duration, ConvTiles)> = None;
    for &tiles in candidates {
        let mut total = Duration::ZERO;
        for (cin, cout, k, hw) in [(256, 64, 1, 64), (64, 64, 3, 64)] {
            let g = conv_graph(cin, cout, k, hw);
            total += time_conv(gpu, &g, tiles)?;
        }
        if best.is_none_or(|(t, _)| total < t) {
            best = Some((total, tiles));
        }
    }
    best.map(|b| b.1)
        .ok_or_else(|| RuntimeError::Plan("no candidate tiles to tune".into()))
}

/// x [1, cin, hw, hw] -> conv k x k, pad k / 2 -> [1, cout, hw, hw].
fn conv_graph(cin: usize, cout: usize, k: usize, hw: usize) -> Graph {
    let mut g = Graph {
        name: format!("tune_conv{k}x{k}_{cin}to{cout}"),
        ..Default::default()
    };
    let source = |name: &str, op, shape: Vec<usize>| Node {
        name: name.into(),
        op,
        inputs: vec![],
        shape,
    };
    let x = Op::Input { name: "x".into() };
    g.nodes.push(source("x", x, vec![1, cin, hw, hw]));
    let w = Op::Param {
        init: Init::Normal { std: 0.02 },
    };
    g.nodes.push(source("w", w, vec![cout, cin, k, k]));
    let conv = Op::Conv2d(Conv2d {
        stride: 1,
        pad: k / 2,
        bias: false,
        groups: 1,
    });
    let y = g.push("y", conv, vec![0, 1]).expect("a valid conv");
    g.outputs.push(("y".into(), y));
    g
}

/// Best of 3 runs, after one that compiles and warms up.
fn time_conv(gpu: &Gpu, g: &Graph, tiles: ConvTiles) -> Result<Duration> {
    let target = Target {
        conv_tiles: tiles,
        ..gpu.limits_target()
    };
    let (plan, _) = compiler::compile(g, &target).map_err(|e| RuntimeError::Plan(e.to_string()))?;
    let exe = Executable::new(gpu, &plan)?;
    for (id, node) in g.nodes.iter().enumerate().take(2) {
        let n = ir::numel(&node.shape);
        let data: Vec<f32> = (0..n).map(|i| ((i * 7919) % 101) as f32 / 101.0).collect();
        exe.write(id, &data)?;
    }
    exe.run()?;
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        exe.run()?;
        best = best.min(start.elapsed());
    }
    Ok(best)
}

/// The tiles of one `Gpu`, settled on first use (see `Gpu::target`).
#[derive(Default)]
pub(crate) struct TileState(Mutex<State>);

#[derive(Default, Clone, Copy)]
enum State {
    #[default]
    Unknown,
    /// Being timed: plans made meanwhile (the timing's own) get the default tiles.
    Tuning,
    Known(ConvTiles),
}

impl TileState {
    pub(crate) fn get(&self, gpu: &Gpu) -> ConvTiles {
        {
            let Ok(mut s) = self.0.lock() else {
                return ConvTiles::default();
            };
            match *s {
                State::Known(t) => return t,
                State::Tuning => return ConvTiles::default(),
                State::Unknown => *s = State::Tuning,
            }
        }
        let tiles = settle(gpu);
        if let Ok(mut s) = self.0.lock() {
            *s = State::Known(tiles);
        }
        tiles
    }
}

/// `IRDC_AUTOTUNE=0` (`compiler::Overrides`, read when the device opened), cooperative
/// matrices, or no cache directory: the default tiles; else the cached or timed ones.
/// A CPU adapter (lavapipe) is tuned only with `IRDC_AUTOTUNE=1`: there every candidate ran at
/// the same speed (its loads go one SIMD lane at a time, whatever the tile), while timing them
/// takes most of a minute at each first start, in every process of a test run.
fn settle(gpu: &Gpu) -> ConvTiles {
    let target = gpu.limits_target();
    let cpu = gpu.info.device_type == wgpu::DeviceType::Cpu;
    match target.overrides.autotune {
        Some(false) => return ConvTiles::default(),
        None if cpu => return ConvTiles::default(),
        _ => {}
    }
    // GEMMs on cooperative matrices have a block of their own, whatever the tiles.
    if compiler::codegen::uses_coop_matrices(&target) {
        return ConvTiles::default();
    }
    let Some(dir) = cache_dir() else {
        eprintln!("warning: no cache directory (set IRDC_CACHE_DIR); default conv tiles");
        return ConvTiles::default();
    };
    match tune_cached(gpu, &dir, &candidates()) {
        Ok(t) => t.tiles,
        Err(e) => {
            eprintln!("warning: conv tile tuning failed, using the default tiles: {e}");
            ConvTiles::default()
        }
    }
}
