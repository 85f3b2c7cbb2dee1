//! `mpirun -np K irdc profile MODEL --graph G --train` (docs/mpi.md): after the kernel table, the
//! step as a data-parallel run does it. Each rank runs the profiled step on its adapter, its
//! gradients are read back and averaged over the ranks in buckets while the backward pass still
//! runs (`runtime::train::Exchange`, as `irdc train` does), and rank 0 shows where a step's time
//! went: compute, copy, all-reduce.

use crate::mpi::Mpi;
use anyhow::{Context, Result};
use runtime::train::{params::Tie, Collective, DataParallel, Exchange, SyncTimes};
use std::rc::Rc;

/// What the exchanged steps measured.
pub struct Exchanged {
    pub ranks: usize,
    pub params: usize,
    pub buckets: usize,
    pub times: SyncTimes,
    /// Median wall seconds of an exchanged step, and of the same step alone (the kernel profile's).
    pub wall: (f64, f64),
}

impl Exchanged {
    /// "2 ranks, 5.34 M gradients: a step 52.0 ms (alone 48.3 ms); compute .. ms, copy .. ms,
    /// all-reduce .. ms per step (..)".
    pub fn line(&self) -> String {
        format!(
            "{} ranks, {} gradients: a step {:.1} ms (alone {:.1} ms); {}",
            self.ranks,
            super::format_count(self.params),
            self.wall.0 * 1e3,
            self.wall.1 * 1e3,
            self.times.per_step()
        )
    }

    pub fn json(&self) -> serde_json::Value {
        let ms = |s: f64| s * 1e3 / self.times.steps.max(1) as f64;
        serde_json::json!({
            "ranks": self.ranks,
            "gradients": self.params,
            "buckets": self.buckets,
            "steps": self.times.steps,
            "compute_ms": ms(self.times.compute),
            "copy_ms": ms(self.times.copy),
            "all_reduce_ms": ms(self.times.all_reduce),
            "overlapped_ms": ms(self.times.overlapped),
            "step_ms": self.wall.0 * 1e3,
            "alone_ms": self.wall.1 * 1e3,
        })
    }
}

/// Run `plan`'s step `repeat` times after one warm-up, its gradients exchanged among the
/// ranks in buckets of about `bucket_bytes`; `alone` is the step's wall seconds without them.
pub fn exchanged(
    gpu: &runtime::Gpu,
    exe: &runtime::Executable,
    plan: &compiler::Plan,
    job: &Rc<Mpi>,
    (repeat, alone): (usize, f64),
    bucket_bytes: u64,
) -> Result<Exchanged> {
    let mut ties = vec![];
    let mut len = 0;
    // `super::training_step`'s outputs: the loss, then each parameter's gradient.
    for (_, node) in plan.outputs.iter().skip(1) {
        ties.push(Tie {
            at: len,
            node: *node,
        });
        len += plan.values[*node].shape.iter().product::<usize>();
    }
    let exchange = Exchange::new(gpu, exe, &ties, bucket_bytes)?;
    let sync = DataParallel {
        bucket_bytes: Some(bucket_bytes),
        ..DataParallel::new(job.clone() as Rc<dyn Collective>)
    };
    let walls =
        (exchange.time_steps(gpu, exe, &sync, repeat)).context("profiling the exchanged step")?;
    Ok(Exchanged {
        ranks: job.size(),
        params: len,
        buckets: exchange.buckets(),
        times: sync.times.get(),
        wall: (super::profile::median(&walls), alone),
    })
}
