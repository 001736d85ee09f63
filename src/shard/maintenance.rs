//! Periodic background work of a shard: retention of every partition it owns, in the
//! background task queue so it never crowds out requests.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use strand_shards::task::sleep;
use tracing::warn;

use super::ShardState;
use crate::partition::Partition;

impl ShardState {
    /// Applies retention every log.retention.check.interval.ms until the shard stops.
    pub async fn run_retention(self: Rc<Self>) {
        let interval = Duration::from_millis(self.config.log_retention_check_interval_ms);
        loop {
            let stopped = future::or(
                async {
                    sleep(interval).await;
                    false
                },
                async {
                    self.stopped().await;
                    true
                },
            )
            .await;
            if stopped {
                return;
            }
            let partitions: Vec<Rc<Partition>> = self.partitions.borrow().values().cloned().collect();
            for partition in partitions {
                if let Err(e) = partition.apply_retention().await {
                    warn!(topic = %partition.topic, partition = partition.index, error = %e, "retention failed");
                }
            }
        }
    }
}
