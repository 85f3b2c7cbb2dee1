//! The gradient exchange of a data-parallel step, in buckets (docs/mpi.md): the backward pass is
//! submitted in pieces, cut where a bucket of gradients is complete (the last layers' first), so
//! the ranks sum each bucket while the device still computes the ones after it. wgpu shares no
//! memory with MPI: a bucket is copied into its own mappable buffer, read on the host, summed
//! over the ranks, and its mean written into the flat gradient buffer that Adam reads.

use super::collective::DataParallel;
use super::params::{copy_out, Tie};
use super::TrainError;
use crate::device::Gpu;
use crate::exec::Executable;
use std::sync::mpsc;
use std::time::Instant;

/// One executable's gradients, grouped into buckets in the order the plan completes them.
pub struct Exchange {
    buckets: Vec<Bucket>,
}

struct Bucket {
    /// Kernels of the plan that must run before every gradient of the bucket is complete.
    until: usize,
    /// Each gradient: `at` in the flat gradient buffer, its value in the executable.
    ties: Vec<Tie>,
    /// Element count of each tie, in order; the bucket is their concatenation.
    lens: Vec<usize>,
    /// The same gradients tied to their place in the bucket (`staging`), not the flat buffer.
    local: Vec<Tie>,
    staging: wgpu::Buffer,
}

impl Bucket {
    fn len(&self) -> usize {
        self.lens.iter().sum()
    }
}

impl Exchange {
    /// Buckets of about `bucket_bytes` (at least one gradient each) of the gradients `grads`
    /// of `exe`, ordered by the kernel that completes them.
    pub fn new(
        gpu: &Gpu,
        exe: &Executable,
        grads: &[Tie],
        bucket_bytes: u64,
    ) -> Result<Exchange, TrainError> {
        let mut ready = Vec::with_capacity(grads.len());
        for t in grads {
            let len = exe.value(t.node)?.shape.iter().product::<usize>();
            ready.push((exe.ready_after(t.node)?, *t, len));
        }
        ready.sort_by_key(|&(until, t, _)| (until, t.at));
        let mut groups: Vec<Vec<(usize, Tie, usize)>> = vec![];
        let mut open: Vec<(usize, Tie, usize)> = vec![];
        let mut bytes = 0;
        for r in ready {
            bytes += r.2 as u64 * 4;
            open.push(r);
            if bytes >= bucket_bytes {
                groups.push(std::mem::take(&mut open));
                bytes = 0;
            }
        }
        groups.extend((!open.is_empty()).then_some(open));
        let buckets = (groups.into_iter().enumerate())
            .map(|(i, g)| {
                let len: usize = g.iter().map(|r| r.2).sum();
                let staging = gpu.checked("allocating a gradient bucket", || {
                    gpu.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(&format!("irdc.train.bucket{i}")),
                        size: len.max(1) as u64 * 4,
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                })?;
                let lens: Vec<usize> = g.iter().map(|r| r.2).collect();
                let local = (g.iter().zip(offsets(&lens)))
                    .map(|(r, at)| Tie { at, node: r.1.node })
                    .collect();
                Ok(Bucket {
                    until: g.last().map_or(0, |r| r.0),
                    ties: g.iter().map(|r| r.1).collect(),
                    lens,
                    local,
                    staging,
                })
            })
            .collect::<Result<_, TrainError>>()?;
        Ok(Exchange { buckets })
    }

    /// How many buckets the gradients go in.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Run `exe`'s kernels from `from` to its end after what `enc` holds, and replace every
    /// gradient in `flat` by its mean over the ranks. Each bucket's piece of the plan is submitted
    /// as soon as it is recorded, and the bucket before it is read back and summed over the ranks
    /// while the device computes that piece. Returns the encoder the caller records the rest of
    /// the step into (its Adam update, which the gradients' writes precede).
    pub fn run(
        &self,
        gpu: &Gpu,
        exe: &Executable,
        mut enc: wgpu::CommandEncoder,
        from: usize,
        flat: &wgpu::Buffer,
        sync: &DataParallel,
    ) -> Result<wgpu::CommandEncoder, TrainError> {
        let mut at = from;
        let mut pending = None;
        let mut means = Vec::with_capacity(self.buckets.len());
        for b in &self.buckets {
            let submitting = Instant::now();
            // A gradient of frozen values alone is complete after the prologue (run once).
            let until = b.until.max(at).max(exe.prologue_kernels());
            exe.record_part(&mut enc, at..until);
            at = until;
            copy_out(&mut enc, exe, &b.staging, &b.local)?;
            let next = gpu.device.create_command_encoder(&Default::default());
            let done = std::mem::replace(&mut enc, next);
            let index = gpu.checked(CONTEXT, || gpu.queue.submit([done.finish()]))?;
            let (tx, rx) = mpsc::channel();
            b.staging.map_async(wgpu::MapMode::Read, .., move |r| {
                let _ = tx.send(r);
            });
            // A device that runs one submission at a time (lavapipe) makes the submit wait.
            sync.add(|t| t.compute += submitting.elapsed().as_secs_f64());
            if let Some((before, index, rx)) = pending.replace((b, index, rx)) {
                means.push(take(gpu, before, index, rx, sync)?);
            }
        }
        exe.record_part(&mut enc, at..exe.kernels());
        if let Some((last, index, rx)) = pending {
            means.push(take(gpu, last, index, rx, sync)?);
        }
        let write = Instant::now();
        for (b, data) in self.buckets.iter().zip(&means) {
            for ((t, len), first) in b.ties.iter().zip(&b.lens).zip(offsets(&b.lens)) {
                let bytes = bytemuck::cast_slice(&data[first..first + len]);
                gpu.queue.write_buffer(flat, t.at as u64 * 4, bytes);
            }
        }
        gpu.check(CONTEXT)?;
        sync.add(|t| {
            t.copy += write.elapsed().as_secs_f64();
            t.buckets = self.buckets.len();
        });
        Ok(enc)
    }
}

const CONTEXT: &str = "running the training step";

/// Bucket `b`'s mean over the ranks, once submission `index` (which copies it out) is done.
fn take(
    gpu: &Gpu,
    b: &Bucket,
    index: wgpu::SubmissionIndex,
    rx: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
    sync: &DataParallel,
) -> Result<Vec<f32>, TrainError> {
    let fail = |e: &dyn std::fmt::Display| TrainError::Setup(format!("{CONTEXT}: {e}"));
    let waited = Instant::now();
    // The device finishes submissions in order: wait for this bucket's, not for all.
    let wait = wgpu::PollType::Wait {
        submission_index: Some(index),
        timeout: None,
    };
    gpu.device.poll(wait).map_err(|e| fail(&e))?;
    let mapped = rx
        .try_recv()
        .map_err(|_| fail(&"a gradient bucket was not read back after its work was done"))?;
    mapped.map_err(|e| fail(&e))?;
    let read = Instant::now();
    let mut data: Vec<f32> = gpu.take_mapped(&b.staging)?;
    data.truncate(b.len());
    sync.add(|t| {
        t.compute += (read - waited).as_secs_f64();
        t.copy += read.elapsed().as_secs_f64();
    });
    let reducing = Instant::now();
    sync.mean(&mut data)?;
    // Work still queued after the sum means the device computed all the while.
    let queued = gpu
        .device
        .poll(wgpu::PollType::Poll)
        .map_err(|e| fail(&e))?;
    if !queued.is_queue_empty() {
        sync.add(|t| t.overlapped += reducing.elapsed().as_secs_f64());
    }
    Ok(data)
}

impl Exchange {
    /// `repeat` steps of `exe` alone after one warm-up (not counted in `sync`'s times): its whole
    /// plan, its gradients exchanged into a scratch buffer (`irdc profile --train` under mpirun).
    /// Returns each timed step's wall seconds.
    pub fn time_steps(
        &self,
        gpu: &Gpu,
        exe: &Executable,
        sync: &DataParallel,
        repeat: usize,
    ) -> Result<Vec<f64>, TrainError> {
        let len = (self.buckets.iter().flat_map(|b| b.ties.iter().zip(&b.lens)))
            .map(|(t, len)| t.at + len)
            .max()
            .unwrap_or(0);
        let flat = gpu.checked("allocating the gradients", || {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("irdc.profile.gradients"),
                size: len.max(1) as u64 * 4,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        let mut walls = vec![];
        for run in 0..=repeat {
            if run == 1 {
                sync.times.set(Default::default());
            }
            let start = Instant::now();
            let enc = gpu.device.create_command_encoder(&Default::default());
            let enc = self.run(gpu, exe, enc, 0, &flat, sync)?;
            gpu.checked(CONTEXT, || gpu.queue.submit([enc.finish()]))?;
            // The step's tail (after its last bucket) ends before the next step is timed.
            gpu.wait(CONTEXT)?;
            sync.add(|t| t.steps += 1);
            walls.extend((run > 0).then(|| start.elapsed().as_secs_f64()));
        }
        Ok(walls)
    }
}

/// Where each of consecutive pieces of `lens` elements starts.
fn offsets(lens: &[usize]) -> impl Iterator<Item = usize> + '_ {
    lens.iter().scan(0, |at, &len| {
        let first = *at;
        *at += len;
        Some(first)
    })
}
