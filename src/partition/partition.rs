//! One partition on its owning shard.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use strand_config::{BrokerConfig, IoMode, TimestampType, TopicConfig};
use uuid::Uuid;

use super::PartitionError;
use crate::clock::wall_clock_ms;
use crate::log::{
    AppendInfo, CompactionStats, JournalKey, LogConfig, LogError, LogOffsets, LogRead, LogShared, PartitionLog, RetentionLimits,
};
use crate::protocol::record_batch::{check_client_batch, split_batches, BatchHeader};
use crate::protocol::record_validator::{validate_records, RecordRules};

/// Single-node strand has one leader epoch; replication brings epochs that move.
const LEADER_EPOCH: i32 = 0;

/// ListOffsets' special timestamps.
const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;

/// An answer to ListOffsets: an offset and the timestamp found there (-1 when not by time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    pub offset: i64,
    pub timestamp: i64,
}

pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub topic_id: Uuid,
    /// Swapped by [`Partition::set_config`] when the topic's configs change.
    config: Cell<TopicConfig>,
    /// message.decompressed.max.bytes, the broker's bound on a compressed batch's records.
    decompressed_max_bytes: usize,
    pub log: Rc<PartitionLog>,
}

impl Partition {
    pub async fn open(
        dir: &Path,
        topic: &str,
        index: i32,
        topic_id: Uuid,
        config: TopicConfig,
        broker: &BrokerConfig,
        shared: &LogShared,
    ) -> Result<Self, LogError> {
        let key = JournalKey { topic: topic.to_owned(), partition: index, topic_id };
        let log = PartitionLog::open(dir, log_config(&config, broker), shared, Some(&key)).await?;
        let decompressed_max_bytes = broker.message_decompressed_max_bytes;
        Ok(Self { topic: topic.to_owned(), index, topic_id, config: Cell::new(config), decompressed_max_bytes, log })
    }

    /// The topic's current config.
    pub fn config(&self) -> TopicConfig {
        self.config.get()
    }

    /// Adopts the topic's new config (AlterConfigs): produce limits, retention and compaction
    /// read it from now on, and the log rolls, indexes and flushes by it.
    pub fn set_config(&self, config: TopicConfig, broker: &BrokerConfig) {
        self.config.set(config);
        self.log.set_config(log_config(&config, broker));
    }

    pub fn leader_epoch(&self) -> i32 {
        LEADER_EPOCH
    }

    /// Validates and appends a produce request's records; with acks 1 or -1 returns once they
    /// are durable (the single replica is the whole ISR, so -1 and 1 wait alike).
    pub async fn produce(&self, records: Bytes, acks: i16) -> Result<AppendInfo, PartitionError> {
        if !matches!(acks, -1..=1) {
            return Err(PartitionError::InvalidRequiredAcks(acks));
        }
        let batches = split_batches(&records)?;
        let config = self.config();
        let max = config.max_message_bytes;
        if let Some((_, big)) = batches.iter().find(|(_, h)| h.total_bytes() > max as usize) {
            return Err(PartitionError::MessageTooLarge { size: big.total_bytes(), max });
        }
        let log_append_time = validate_produced(&records, &batches, &config, self.decompressed_max_bytes, wall_clock_ms())?;
        let info = self.log.append_as_leader(records, &batches, LEADER_EPOCH, log_append_time)?;
        if acks != 0 {
            self.log.wait_committed(info.last_offset).await?;
        }
        Ok(info)
    }

    /// Whole batches from `offset`, up to `max_bytes`; with `min_one`, at least one batch (the
    /// first partition with records in a fetch), otherwise never more than `max_bytes`.
    pub async fn fetch(&self, offset: i64, max_bytes: usize, min_one: bool) -> Result<LogRead, PartitionError> {
        let read = if min_one { self.log.read(offset, max_bytes).await } else { self.log.read_within(offset, max_bytes).await };
        Ok(read?)
    }

    pub fn offsets(&self) -> LogOffsets {
        self.log.offsets()
    }

    /// Applies the topic's retention, if its cleanup.policy includes delete.
    pub async fn apply_retention(&self) -> Result<usize, PartitionError> {
        let config = self.config();
        if !config.cleanup_policy.delete {
            return Ok(0);
        }
        let limits = RetentionLimits { retention_ms: config.retention_ms, retention_bytes: config.retention_bytes };
        Ok(self.log.apply_retention(limits).await?)
    }

    /// Compacts the log if the topic is compacted and segments were sealed since the last pass.
    pub async fn maybe_compact(&self) -> Result<Option<CompactionStats>, PartitionError> {
        let config = self.config();
        if !config.cleanup_policy.compact || !self.log.take_compaction_due() {
            return Ok(None);
        }
        Ok(Some(self.log.compact(config.delete_retention_ms).await?))
    }

    /// DeleteRecords: moves the log start offset to `offset` (-1: the high watermark). As in
    /// Kafka, only a topic whose cleanup.policy includes delete allows it.
    pub async fn delete_records(&self, offset: i64) -> Result<i64, PartitionError> {
        if !self.config().cleanup_policy.delete {
            return Err(PartitionError::PolicyViolation(format!(
                "records of partition {}-{} can not be deleted due to the configured policy",
                self.topic, self.index
            )));
        }
        Ok(self.log.delete_records_before(offset).await?)
    }

    pub async fn list_offset(&self, timestamp: i64) -> Result<ListedOffset, PartitionError> {
        let offsets = self.log.offsets();
        let listed = match timestamp {
            EARLIEST_TIMESTAMP => ListedOffset { offset: offsets.log_start_offset, timestamp: -1 },
            LATEST_TIMESTAMP => ListedOffset { offset: offsets.high_watermark, timestamp: -1 },
            _ => match self.log.offset_for_timestamp(timestamp).await? {
                Some((offset, timestamp)) => ListedOffset { offset, timestamp },
                None => ListedOffset { offset: -1, timestamp: -1 },
            },
        };
        Ok(listed)
    }
}

/// The log settings of a partition: its topic's config and the broker's I/O settings.
fn log_config(topic: &TopicConfig, broker: &BrokerConfig) -> LogConfig {
    let positive = |n: i64| u64::try_from(n).unwrap_or(0);
    LogConfig {
        segment_bytes: positive(topic.segment_bytes),
        segment_ms: positive(topic.segment_ms),
        index_interval_bytes: positive(i64::from(topic.index_interval_bytes)),
        io_mode: broker.log_io_mode,
        preallocate_bytes: broker.log_segment_preallocate_bytes.min(positive(topic.segment_bytes)),
        flush_messages: positive(topic.flush_messages),
        flush_ms: positive(topic.flush_ms),
        // With the shard journal the segment's fdatasync is what the journal saves.
        write_through: broker.log_io_write_through && broker.shard_journal_bytes == 0,
        // Several fdatasyncs in flight only in direct mode without the journal: with the
        // journal most rounds never fdatasync their segment, so there is nothing to overlap;
        // with the page cache, one failed writeback is reported to one fdatasync of the file,
        // so another in flight could return success for the lost pages.
        syncs_max: if broker.log_io_mode == IoMode::Direct && broker.shard_journal_bytes == 0 { broker.log_flush_syncs_max } else { 1 },
    }
}

/// Kafka's LogValidator on a produced record set, before anything is written: each batch's
/// client rules and every record (framing, offset deltas, keys of a compacted topic, CreateTime
/// timestamps). Returns the time a LogAppendTime topic's batches are stamped with on append.
fn validate_produced(
    records: &Bytes,
    batches: &[(usize, BatchHeader)],
    config: &TopicConfig,
    decompressed_max_bytes: usize,
    now_ms: i64,
) -> Result<Option<i64>, PartitionError> {
    let log_append_time = config.message_timestamp_type == TimestampType::LogAppendTime;
    let window = RecordRules::create_time_window(now_ms, config.timestamp_before_max_ms(), config.timestamp_after_max_ms());
    let rules = RecordRules {
        create_time_window: (!log_append_time).then_some(window),
        require_keys: config.cleanup_policy.compact,
        decompressed_max_bytes,
    };
    for (at, header) in batches {
        check_client_batch(header)?;
        validate_records(&records.slice(*at..at + header.total_bytes()), header, &rules)?;
    }
    Ok(log_append_time.then_some(now_ms))
}

