//! A consumer group's offsets: what it committed (OffsetFetch), where each partition's log
//! ends (ListOffsets), the lag between them, and the new offsets of a reset.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::kafka_error::explain;
use super::offset_spec::{offsets_for_timestamp, ResetTo};

/// (topic, partition).
pub type TopicPartitionKey = (String, i32);

/// One partition's committed offset (None without one) and log end offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub committed: Option<i64>,
    pub log_end_offset: i64,
}

impl PartitionOffsets {
    /// Records between the committed offset and the log end; None without a commit.
    pub fn lag(&self) -> Option<i64> {
        self.committed.map(|c| (self.log_end_offset - c).max(0))
    }
}

/// Committed offsets of `group` (the consumer's group) for `partitions`.
pub fn committed(
    consumer: &BaseConsumer,
    partitions: &[TopicPartitionKey],
    timeout: Duration,
) -> anyhow::Result<BTreeMap<TopicPartitionKey, Option<i64>>> {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition(topic, *partition);
    }
    let found = consumer.committed_offsets(list, timeout).map_err(|e| explain("committed offsets (OffsetFetch)", &e))?;
    Ok(found
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(n) => Some(n),
                _ => None,
            };
            ((e.topic().to_owned(), e.partition()), offset)
        })
        .collect())
}

/// Committed and log end offsets of every partition in `partitions`.
pub fn offsets(
    consumer: &BaseConsumer,
    partitions: &[TopicPartitionKey],
    timeout: Duration,
) -> anyhow::Result<BTreeMap<TopicPartitionKey, PartitionOffsets>> {
    let committed = committed(consumer, partitions, timeout)?;
    let mut out = BTreeMap::new();
    for (key, committed) in committed {
        let (_, high) = consumer
            .fetch_watermarks(&key.0, key.1, timeout)
            .map_err(|e| explain(&format!("offsets of {}-{}", key.0, key.1), &e))?;
        out.insert(key, PartitionOffsets { committed, log_end_offset: high });
    }
    Ok(out)
}

/// The offset each partition of `topic` moves to.
pub fn reset_targets(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    to: ResetTo,
    timeout: Duration,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut targets = BTreeMap::new();
    let by_time = match to {
        ResetTo::Datetime(ms) => Some(offsets_for_timestamp(consumer, topic, partitions, ms, timeout)?),
        _ => None,
    };
    for &partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .map_err(|e| explain(&format!("offsets of {topic}-{partition}"), &e))?;
        let found = by_time.as_ref().and_then(|found| found.iter().find(|(p, _)| *p == partition)).map(|(_, o)| *o);
        let target = match to {
            ResetTo::Earliest => low,
            ResetTo::Latest => high,
            ResetTo::Offset(n) => n,
            // No record at or after the time: the end, as Kafka's tool does.
            ResetTo::Datetime(_) => match found {
                Some(Offset::Offset(n)) => n,
                _ => high,
            },
        };
        targets.insert(partition, clamp(target, low, high));
    }
    Ok(targets)
}

/// Kafka's tool moves an out-of-range target to the nearest end of the log.
fn clamp(target: i64, log_start_offset: i64, log_end_offset: i64) -> i64 {
    target.clamp(log_start_offset, log_end_offset.max(log_start_offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_distance_to_the_log_end_and_unknown_without_a_commit() {
        assert_eq!(PartitionOffsets { committed: Some(7), log_end_offset: 10 }.lag(), Some(3));
        assert_eq!(PartitionOffsets { committed: Some(12), log_end_offset: 10 }.lag(), Some(0));
        assert_eq!(PartitionOffsets { committed: None, log_end_offset: 10 }.lag(), None);
    }

    #[test]
    fn reset_targets_outside_the_log_move_to_its_nearest_end() {
        assert_eq!(clamp(5, 10, 20), 10);
        assert_eq!(clamp(25, 10, 20), 20);
        assert_eq!(clamp(15, 10, 20), 15);
    }
}
