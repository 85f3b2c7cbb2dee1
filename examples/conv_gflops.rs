//! GFLOP/s of single conv2d kernels on the device (best of several runs, after a warm-up that
//! compiles): `cargo run --release --example conv_gflops [-- CIN COUT K HW ...]`, four numbers
//! per conv (default: 1x1 256->64 and 3x3 64->64 at 64x64, 3x3 64->64 at 256x256; batch 1).
//! `TILES=bm,bn,bk,tm,tn` times those tiles instead of the adapter's (`compiler::ConvTiles`);
//! `PRECISION=f16` the f16 precision (`compiler::Precision`: on cooperative matrices where the
//! adapter has them, unless `IRDC_COOP_MATRIX=0`).
//! `DUMP_WGSL=DIR` writes each conv's generated WGSL there; `WGSL=FILE` times FILE in its place
//! (the same bindings), for trying a kernel variant by hand.

use ir::ops::{Conv2d, Init};
use ir::{Graph, Node, Op};
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let cases: Vec<[usize; 4]> = match args.len() {
        0 => vec![[256, 64, 1, 64], [64, 64, 3, 64], [64, 64, 3, 256]],
        n if n % 4 == 0 => args.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect(),
        _ => anyhow::bail!("give CIN COUT K HW per conv"),
    };
    let precision = match std::env::var("PRECISION") {
        Ok(p) => p.parse().map_err(anyhow::Error::msg)?,
        Err(_) => compiler::Precision::F32,
    };
    let gpu = runtime::Gpu::new()?.with_precision(precision)?;
    println!("{}", gpu.describe());
    let mut target = gpu.target();
    if let Ok(t) = std::env::var("TILES") {
        let v: Vec<u32> = t.split(',').map(|x| x.parse()).collect::<Result<_, _>>()?;
        let [bm, bn, bk, tm, tn] = v[..] else {
            anyhow::bail!("TILES wants five numbers: bm,bn,bk,tm,tn");
        };
        target.conv_tiles = compiler::ConvTiles { bm, bn, bk, tm, tn };
    }
    for [cin, cout, k, hw] in cases {
        let g = conv_graph(cin, cout, k, hw);
        let (mut plan, _) = compiler::compile(&g, &target)?;
        if let Ok(dir) = std::env::var("DUMP_WGSL") {
            std::fs::write(
                format!("{dir}/conv_{cin}_{cout}_{k}_{hw}.wgsl"),
                &plan.kernels[0].wgsl,
            )?;
        }
        if let Ok(file) = std::env::var("WGSL") {
            plan.kernels[0].wgsl = std::fs::read_to_string(file)?;
        }
        let exe = runtime::Executable::new(&gpu, &plan)?;
        for (id, node) in g.nodes.iter().enumerate().take(2) {
            let n = ir::numel(&node.shape);
            exe.write(
                id,
                &(0..n).map(|i| (i % 97) as f32 / 97.0).collect::<Vec<_>>(),
            )?;
        }
        exe.run()?;
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            exe.run()?;
            best = best.min(t.elapsed());
        }
        let flops = 2.0 * (cout * hw * hw * cin * k * k) as f64;
        println!(
            "conv {k}x{k} {cin}->{cout} at {hw}x{hw}: {:.2} ms, {:.2} GFLOP/s",
            best.as_secs_f64() * 1e3,
            flops / best.as_secs_f64() / 1e9
        );
    }
    Ok(())
}

fn conv_graph(cin: usize, cout: usize, k: usize, hw: usize) -> Graph {
    let mut g = Graph {
        name: "conv".into(),
        ..Default::default()
    };
    let source = |name: &str, op, shape: Vec<usize>| Node {
        name: name.into(),
        op,
        inputs: vec![],
        shape,
    };
    g.nodes.push(source(
        "x",
        Op::Input { name: "x".into() },
        vec![1, cin, hw, hw],
    ));
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
