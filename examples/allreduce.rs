//! The all-reduce of a data-parallel step on this machine (benches/README.md, "MPI (issue 22)"):
//! `mpirun -np K target/release/examples/allreduce [PARAMS]` sums PARAMS f32 (default 5.34 M, the
//! N=64 IRD-GAN generator's parameters) over K ranks as `irdc train` does, and rank 0 prints the
//! mean time of one all-reduce and the bus bandwidth it implies.

use mpi::collective::SystemOperation;
use mpi::traits::*;
use std::time::Instant;

fn main() -> Result<(), String> {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => {
            (a.parse()).map_err(|_| format!("PARAMS is a count of f32, e.g. 5340000; got `{a}`"))?
        }
        None => 5_340_000,
    };
    let universe = mpi::initialize()
        .ok_or("MPI could not be initialised: start this under mpirun (an MPI launcher)")?;
    let world = universe.world();
    let k = world.size() as f64;
    let send: Vec<f32> = (0..n).map(|i| (i % 97) as f32).collect();
    let mut recv = vec![0f32; n];
    let reps = 20;
    for _ in 0..3 {
        world.all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum());
    }
    world.barrier();
    let start = Instant::now();
    for _ in 0..reps {
        world.all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum());
    }
    let s = start.elapsed().as_secs_f64() / reps as f64;
    if world.rank() == 0 {
        let bytes = n as f64 * 4.0;
        // A ring all-reduce moves 2 (K - 1) / K of the data through each rank's link.
        let bus = 2.0 * (k - 1.0) / k * bytes / s / 1e9;
        println!(
            "{} ranks, {n} f32 ({:.1} MB): {:.2} ms per all-reduce, bus bandwidth {bus:.2} GB/s",
            world.size(),
            bytes / 1e6,
            s * 1e3
        );
    }
    Ok(())
}
