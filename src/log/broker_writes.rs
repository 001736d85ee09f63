//! When the broker last wrote to a log: the signal that shortens every shard's catch-up reads
//! while any shard writes ([`super::CatchUpReads`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// [`BrokerWrites`] keeps the last write to this precision.
const NOTE_GRANULARITY: Duration = Duration::from_millis(1);

/// When a shard of the broker last wrote to a log, shared by every shard's [`super::CatchUpReads`]:
/// the shards' writes and reads queue on the same disk (or disks, taken as one).
#[derive(Debug)]
pub struct BrokerWrites {
    epoch: Instant,
    /// Nanoseconds from `epoch` to the last write, plus one; 0 before the first.
    last: AtomicU64,
}

impl BrokerWrites {
    pub fn new() -> Arc<Self> {
        Arc::new(Self { epoch: Instant::now(), last: AtomicU64::new(0) })
    }

    pub(super) fn note(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1;
        // Most notes find one under a millisecond old (the window is 100 ms): those skip the
        // locked update of a line every shard's writers share. The latest wins whichever
        // shard's update lands last.
        if now.saturating_sub(self.last.load(Ordering::Relaxed)) >= NOTE_GRANULARITY.as_nanos() as u64 {
            self.last.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// Tests: as if no shard had written for longer than any window, without waiting it out.
    #[cfg(test)]
    pub(super) fn forget(&self) {
        self.last.store(0, Ordering::Relaxed);
    }

    /// Whether a shard wrote within `window`.
    pub(super) fn within(&self, window: Duration) -> bool {
        match self.last.load(Ordering::Relaxed) {
            0 => false,
            last => {
                let since = Duration::from_nanos(last - 1);
                self.epoch.elapsed().saturating_sub(since) < window
            }
        }
    }
}
