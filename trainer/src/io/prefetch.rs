//! Batches made ahead of the step on another thread: image decode and augmentation overlap the
//! tensor work of the previous step instead of running before it (BENCHMARKS.md, profile).
//!
//! The producer is a pure function of the step number (every batch is seeded by the run's seed
//! and its step), so prefetching changes nothing in what a run computes: a resumed run and an
//! uninterrupted one see the same batches.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::{Result, anyhow};

/// Items `make(step)` for `steps`, produced in order on a background thread, at most `depth`
/// ahead of the consumer.
pub struct Prefetch<T> {
    rx: Option<Receiver<(u64, Result<T>)>>,
    handle: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Prefetch<T> {
    /// Starts the producer thread. `depth` ≥ 1 batches are kept ready.
    pub fn new<F>(steps: std::ops::RangeInclusive<u64>, depth: usize, mut make: F) -> Self
    where
        F: FnMut(u64) -> Result<T> + Send + 'static,
    {
        let (tx, rx): (SyncSender<(u64, Result<T>)>, _) = sync_channel(depth.max(1));
        let handle = std::thread::Builder::new()
            .name("foolmap-prefetch".into())
            .spawn(move || {
                for step in steps {
                    let item = make(step);
                    let failed = item.is_err();
                    // The consumer hung up (run stopped early): stop producing.
                    if tx.send((step, item)).is_err() || failed {
                        return;
                    }
                }
            })
            .ok();
        Self {
            rx: Some(rx),
            handle,
        }
    }

    /// The item of `step`; an error if the producer failed or produced another step (a bug).
    pub fn take(&mut self, step: u64) -> Result<T> {
        let rx = self
            .rx
            .as_ref()
            .ok_or_else(|| anyhow!("batch prefetch: no producer thread"))?;
        match rx.recv() {
            Ok((s, item)) if s == step => item,
            Ok((s, _)) => Err(anyhow!(
                "batch prefetch: expected the batch of step {step}, got step {s}"
            )),
            Err(_) => Err(anyhow!(
                "batch prefetch: the producer thread stopped before step {step}"
            )),
        }
    }
}

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        // Hang up first so that a producer blocked on a full channel wakes and ends.
        drop(self.rx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_arrive_in_step_order_and_match_the_producer() {
        let mut p = Prefetch::new(3..=7, 2, |s| Ok(s * 10));
        for s in 3..=7 {
            assert_eq!(p.take(s).unwrap(), s * 10);
        }
        let err = p.take(8).unwrap_err().to_string();
        assert!(err.contains("stopped before step 8"), "{err}");
    }

    #[test]
    fn a_producer_error_reaches_the_consumer_at_its_step() {
        let mut p = Prefetch::new(1..=5, 1, |s| {
            if s == 3 {
                Err(anyhow!("cannot decode image 3"))
            } else {
                Ok(s)
            }
        });
        assert_eq!(p.take(1).unwrap(), 1);
        assert_eq!(p.take(2).unwrap(), 2);
        let err = p.take(3).unwrap_err().to_string();
        assert!(err.contains("cannot decode image 3"), "{err}");
    }

    #[test]
    fn dropping_early_ends_a_blocked_producer() {
        // 1,000 steps with room for one: dropping after one take must not hang.
        let mut p = Prefetch::new(1..=1000, 1, Ok);
        assert_eq!(p.take(1).unwrap(), 1);
        drop(p);
    }
}
