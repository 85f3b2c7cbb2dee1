//! Data-parallel training (docs/mpi.md): K processes ("ranks") each run the step on their share of
//! the batch, and between each backward pass and its Adam update the ranks average their
//! gradients, so every rank applies the same update and holds the same weights. The transport is
//! the caller's ([`Collective`]: MPI in the `irdc` binary); wgpu shares no device memory with it,
//! so gradients go through host memory: read back, all-reduced, written back.

use super::bound::{Bound, Net};
use super::TrainError;
use crate::data::{DataError, Pair, Source};
use crate::device::Gpu;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

/// The ranks of a data-parallel run and their one collective operation.
pub trait Collective {
    /// This process's rank, 0-based.
    fn rank(&self) -> usize;
    /// How many ranks the run has.
    fn size(&self) -> usize;
    /// Replace `data` on every rank by its element-wise sum over the ranks (the same on each).
    fn sum(&self, data: &mut [f32]) -> Result<(), String>;
}

/// Seconds spent per kind of work in the step's gradient exchange, summed over the steps after
/// the first (whose time is mostly the driver compiling its pipelines).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SyncTimes {
    /// Whether the first step is over (and the sums have started).
    pub warm: bool,
    pub steps: u64,
    /// Waiting for the GPU to finish the recorded work before each read-back.
    pub compute: f64,
    /// Gradients and losses from the GPU to the host and back.
    pub copy: f64,
    /// The all-reduces themselves.
    pub all_reduce: f64,
    /// The part of them during which the device still computed the backward pass.
    pub overlapped: f64,
    /// Buckets the trained network's gradients went in (the last step's).
    pub buckets: usize,
}

impl SyncTimes {
    /// "compute 12.3 ms, copy 1.2 ms, all-reduce 3.4 ms per step" (means over the steps).
    pub fn per_step(&self) -> String {
        let ms = |s: f64| s * 1e3 / self.steps.max(1) as f64;
        format!(
            "compute {:.1} ms, copy {:.1} ms, all-reduce {:.1} ms ({:.1} ms of it beside the backward pass) per step (mean of {} steps after the first; gradients in {} bucket{})",
            ms(self.compute),
            ms(self.copy),
            ms(self.all_reduce),
            ms(self.overlapped),
            self.steps,
            self.buckets,
            if self.buckets == 1 { "" } else { "s" }
        )
    }
}

/// A data-parallel run as the trainer sees it: the ranks, and where the steps' time went (shared
/// with the caller, who reports it).
#[derive(Clone)]
pub struct DataParallel {
    pub comm: Rc<dyn Collective>,
    pub times: Rc<Cell<SyncTimes>>,
    /// About how many bytes of gradients each all-reduce takes ([`super::exchange::Exchange`]);
    /// `None`: the device's policy (`compiler::Policy::gradient_bucket_bytes`).
    pub bucket_bytes: Option<u64>,
}

impl DataParallel {
    pub fn new(comm: Rc<dyn Collective>) -> DataParallel {
        DataParallel {
            comm,
            times: Default::default(),
            bucket_bytes: None,
        }
    }

    /// The ranks' mean of `data`: every loss is a mean over the batch, so the mean of the ranks'
    /// gradients (and losses) over equal shares is the gradient (loss) of the whole batch.
    pub fn mean(&self, data: &mut [f32]) -> Result<(), TrainError> {
        let start = Instant::now();
        let rank = self.comm.rank();
        self.comm
            .sum(data)
            .map_err(|e| TrainError::Setup(format!("rank {rank}: the all-reduce failed: {e}")))?;
        let k = self.comm.size() as f32;
        data.iter_mut().for_each(|v| *v /= k);
        self.add(|t| t.all_reduce += start.elapsed().as_secs_f64());
        Ok(())
    }

    pub fn add(&self, f: impl FnOnce(&mut SyncTimes)) {
        let mut t = self.times.get();
        f(&mut t);
        self.times.set(t);
    }
}

/// The step's command encoder. With a [`DataParallel`], [`Rec::gradients`] submits the backward
/// pass in pieces as its gradients are exchanged (`exchange.rs`) and opens the next; without one,
/// the whole step stays one command buffer.
pub(super) struct Rec<'a> {
    pub enc: wgpu::CommandEncoder,
    pub gpu: &'a Gpu,
    pub sync: Option<&'a DataParallel>,
}

impl Rec<'_> {
    /// Record `bound`'s kernels from `from` on (its whole plan, or its second phase), then put its
    /// gradients into `net`'s gradient buffer: copied there, or in a data-parallel run averaged
    /// over the ranks bucket by bucket while the rest of the backward pass still runs.
    pub fn gradients(&mut self, bound: &Bound, net: &Net, from: usize) -> Result<(), TrainError> {
        let Some(sync) = self.sync else {
            bound
                .exe
                .record_part(&mut self.enc, from..bound.exe.kernels());
            return bound.take_grads(&mut self.enc, net);
        };
        let g = net.set.opt.as_ref().map(|o| &o.g).ok_or_else(|| {
            TrainError::Setup("the trained network has no gradient buffer".into())
        })?;
        let bytes =
            (sync.bucket_bytes).unwrap_or_else(|| self.gpu.target().policy.gradient_bucket_bytes);
        let exchange = bound.exchange(self.gpu, bytes)?;
        let enc = std::mem::replace(
            &mut self.enc,
            self.gpu.device.create_command_encoder(&Default::default()),
        );
        self.enc = exchange.run(self.gpu, &bound.exe, enc, from, g, sync)?;
        Ok(())
    }
}

impl std::ops::Deref for Rec<'_> {
    type Target = wgpu::CommandEncoder;
    fn deref(&self) -> &wgpu::CommandEncoder {
        &self.enc
    }
}

impl std::ops::DerefMut for Rec<'_> {
    fn deref_mut(&mut self) -> &mut wgpu::CommandEncoder {
        &mut self.enc
    }
}

/// A rank's share of the run's data stream: its `batch` pairs of each step of a global batch of
/// `ranks * batch`, so K ranks see between them exactly the pairs one process with the global
/// batch would. Local index `i` counts from `base`, the stream's position at the run's start.
pub struct Share {
    pub inner: Box<dyn Source>,
    pub base: u64,
    pub batch: u64,
    pub ranks: u64,
    pub rank: u64,
}

impl Share {
    fn global(&self, i: u64) -> u64 {
        let (step, k) = (i / self.batch, i % self.batch);
        self.base + (step * self.ranks + self.rank) * self.batch + k
    }
}

impl Source for Share {
    fn len(&self) -> Option<u64> {
        self.inner.len()
    }
    fn pair(&self, index: u64) -> Result<Pair, DataError> {
        self.inner.pair(self.global(index))
    }
    fn describe(&self) -> String {
        format!(
            "{} (rank {} of {}: pairs {}..{} of every {})",
            self.inner.describe(),
            self.rank,
            self.ranks,
            self.rank * self.batch,
            (self.rank + 1) * self.batch,
            self.ranks * self.batch
        )
    }
}
