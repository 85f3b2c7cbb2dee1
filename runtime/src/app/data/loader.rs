//! A background thread that prepares pairs while the GPU trains on the previous ones.
//!
//! One worker, a bounded channel: pairs arrive in index order, so the sequence a run sees
//! depends only on the source's seed and the first index. An unreadable image is reported on
//! stderr and skipped (the index moves on); only when every image tried in a row fails (as
//! many as the split holds, or 100 for an endless one) does the iterator yield the error and stop.

use super::{DataError, Pair, Source};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

/// Pairs `(index, pair)` for `first..first + count` (or endlessly), prepared ahead.
pub struct Loader {
    rx: Receiver<Result<(u64, Pair), DataError>>,
    /// Kept so the thread is joined when the loader is dropped (it stops at its next send).
    worker: Option<JoinHandle<()>>,
}

impl Loader {
    /// Start preparing pairs `first, first + 1, ...` (`count` of them, `None`: as long as the
    /// loader is read; a finite test split ends at its length), at most `prefetch` ahead.
    pub fn spawn(
        source: Box<dyn Source>,
        first: u64,
        count: Option<u64>,
        prefetch: usize,
    ) -> Loader {
        let (tx, rx) = sync_channel(prefetch.max(1));
        let end = count.map_or(u64::MAX, |n| first.saturating_add(n));
        let worker = std::thread::spawn(move || {
            let patience = source.len().unwrap_or(100).max(1);
            let mut failed = 0u64;
            for index in first..end {
                let item = match source.pair(index) {
                    Ok(pair) => {
                        failed = 0;
                        Ok((index, pair))
                    }
                    // Past the end of a finite split: done.
                    Err(DataError::Index { .. }) => return,
                    Err(e) => {
                        failed += 1;
                        if failed < patience {
                            eprintln!("warning: {e}; skipped");
                            continue;
                        }
                        Err(DataError::NothingReadable {
                            failed,
                            last: Box::new(e),
                        })
                    }
                };
                let stop = item.is_err();
                if tx.send(item).is_err() || stop {
                    return;
                }
            }
        });
        Loader {
            rx,
            worker: Some(worker),
        }
    }
}

impl Iterator for Loader {
    type Item = Result<(u64, Pair), DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        // Unblock the worker: swap in a dead receiver so its next send fails, then wait for it.
        let (_, dead) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, dead));
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
