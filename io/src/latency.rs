//! How long this thread's file operations take: data writes, fdatasyncs and reads, each timed
//! from submission to the task's wake-up after completion (so a busy shard's lateness shows
//! too). Kept per thread, like everything a shard owns, from [`enable`] on, until [`take`]
//! hands them over and starts afresh; a shard logs them every `shard.io.latency.log.ms`.
//!
//! This is where to look first when produce latency rises: a durable append is a write and an
//! fdatasync, and on a device with one queue both wait behind the reads in flight.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::Instant;

use hdrhistogram::Histogram;

/// A timed operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    Write,
    Sync,
    /// A write-through (O_DSYNC) write: the write and its fdatasync in one operation
    /// (`dsync_write`).
    SyncedWrite,
    Read,
}

impl IoOp {
    const ALL: [IoOp; 4] = [IoOp::Write, IoOp::Sync, IoOp::SyncedWrite, IoOp::Read];

    pub fn name(self) -> &'static str {
        match self {
            IoOp::Write => "write",
            IoOp::Sync => "fdatasync",
            IoOp::SyncedWrite => "dsync_write",
            IoOp::Read => "read",
        }
    }
}

/// The longest latency told apart, in microseconds (a minute); longer ones count as this.
const MAX_MICROS: u64 = 60_000_000;

fn histogram() -> Histogram<u64> {
    // Two significant figures: within 1%, in a few KiB per histogram.
    Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("1..=MAX_MICROS at 2 figures is a valid range")
}

thread_local! {
    static HISTOGRAMS: RefCell<[Histogram<u64>; IoOp::ALL.len()]> = RefCell::new(IoOp::ALL.map(|_| histogram()));
    /// Whether anyone takes the figures: until then no operation reads the clock.
    static ENABLED: Cell<bool> = const { Cell::new(false) };
}

/// Starts timing this thread's operations (a shard that logs them).
pub fn enable() {
    ENABLED.with(|enabled| enabled.set(true));
}

/// Runs `operation`, an `op`, and records how long it took when timing is enabled.
pub(crate) async fn timed<T>(op: IoOp, operation: impl Future<Output = T>) -> T {
    if !ENABLED.with(Cell::get) {
        return operation.await;
    }
    let started = Instant::now();
    let result = operation.await;
    record(op, started);
    result
}

/// Records that an `op` started at `started` has just completed.
fn record(op: IoOp, started: Instant) {
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(MAX_MICROS).clamp(1, MAX_MICROS);
    HISTOGRAMS.with(|h| {
        // In range by the clamp above.
        let _ = h.borrow_mut()[op as usize].record(micros);
    });
}

/// One operation's latencies over an interval, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpLatency {
    pub op: IoOp,
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p99_9_us: u64,
    pub max_us: u64,
}

/// The latencies of the operations this thread completed since the last call (operations
/// with none are left out), and a fresh start.
pub fn take() -> Vec<OpLatency> {
    HISTOGRAMS.with(|h| {
        let mut histograms = h.borrow_mut();
        IoOp::ALL
            .iter()
            .filter_map(|&op| {
                let h = &mut histograms[op as usize];
                let taken = (!h.is_empty()).then(|| OpLatency {
                    op,
                    count: h.len(),
                    p50_us: h.value_at_quantile(0.5),
                    p99_us: h.value_at_quantile(0.99),
                    p99_9_us: h.value_at_quantile(0.999),
                    max_us: h.max(),
                });
                h.reset();
                taken
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn take_reports_each_operation_once_then_starts_afresh() {
        let _ = take();
        let now = Instant::now();
        for ms in [1, 2, 3, 4, 100] {
            record(IoOp::Sync, now - Duration::from_millis(ms));
        }
        record(IoOp::Read, now - Duration::from_secs(3600));
        let taken = take();
        assert_eq!(taken.iter().map(|t| t.op).collect::<Vec<_>>(), vec![IoOp::Sync, IoOp::Read]);
        let sync = taken[0];
        assert_eq!(sync.count, 5);
        assert!((3_000..3_100).contains(&sync.p50_us), "{sync:?}");
        assert!((100_000..101_500).contains(&sync.max_us) && sync.p99_us == sync.max_us, "{sync:?}");
        let read = taken[1];
        assert!(read.max_us >= MAX_MICROS && read.max_us < MAX_MICROS * 101 / 100, "an hour counts as a minute: {read:?}");
        assert!(take().is_empty());
    }
}
