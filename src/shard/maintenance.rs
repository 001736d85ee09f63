//! Periodic background work of a shard, in the background task queue so it never crowds out
//! requests: retention every log.retention.check.interval.ms, compaction every
//! log.cleaner.backoff.ms for partitions whose cleanup.policy includes compact, and the log of
//! file operation latencies every shard.io.latency.log.ms.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use strand_io::latency;
use strand_shards::task::sleep;
use tracing::{info, warn};

use super::ShardState;
use crate::partition::Partition;

impl ShardState {
    /// Applies retention until the shard stops.
    pub async fn run_retention(self: Rc<Self>) {
        let interval = Duration::from_millis(self.config.log_retention_check_interval_ms);
        while self.pause_unless_stopped(interval).await {
            for partition in self.all_partitions() {
                if let Err(e) = partition.apply_retention().await {
                    warn!(topic = %partition.topic, partition = partition.index, error = %e, "retention failed");
                }
            }
        }
    }

    /// Compacts compacted partitions with new sealed segments until the shard stops.
    pub async fn run_compaction(self: Rc<Self>) {
        let interval = Duration::from_millis(self.config.log_cleaner_backoff_ms);
        while self.pause_unless_stopped(interval).await {
            for partition in self.all_partitions() {
                match partition.maybe_compact().await {
                    Ok(Some(stats)) if stats.segments_rewritten > 0 => {
                        info!(topic = %partition.topic, partition = partition.index, segments = stats.segments_rewritten,
                              records_before = stats.records_before, records_after = stats.records_after, "compacted");
                    }
                    Ok(_) => {}
                    Err(e) => warn!(topic = %partition.topic, partition = partition.index, error = %e, "compaction failed"),
                }
            }
        }
    }

    /// Logs the latency of the shard's file writes, fdatasyncs and reads of each interval,
    /// and what its catch-up reads did (disk reads, bytes, reads served from bytes read ahead),
    /// until the shard stops; nothing when shard.io.latency.log.ms is 0.
    pub async fn run_io_latency_log(self: Rc<Self>) {
        if self.config.shard_io_latency_log_ms == 0 {
            return;
        }
        let interval = Duration::from_millis(self.config.shard_io_latency_log_ms);
        latency::enable();
        let catch_up = &self.log_shared.catch_up;
        let totals = || (catch_up.disk_reads(), catch_up.bytes_read(), catch_up.readahead_hits());
        let mut last = totals();
        while self.pause_unless_stopped(interval).await {
            for op in latency::take() {
                info!(shard = %self.id, op = op.op.name(), count = op.count, p50_us = op.p50_us, p99_us = op.p99_us,
                      p99_9_us = op.p99_9_us, max_us = op.max_us, "I/O latency");
            }
            let now = totals();
            if now != last {
                info!(shard = %self.id, disk_reads = now.0 - last.0, read_bytes = now.1 - last.1,
                      readahead_hits = now.2 - last.2, "catch-up reads");
                last = now;
            }
        }
    }

    fn all_partitions(&self) -> Vec<Rc<Partition>> {
        self.partitions.borrow().values().cloned().collect()
    }

    /// Sleeps for `interval`; false if the shard began stopping meanwhile.
    async fn pause_unless_stopped(&self, interval: Duration) -> bool {
        future::or(
            async {
                sleep(interval).await;
                true
            },
            async {
                self.stopped().await;
                false
            },
        )
        .await
    }
}
