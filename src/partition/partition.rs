//! One partition on its owning shard.

use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use strand_config::TopicConfig;
use uuid::Uuid;

use super::PartitionError;
use crate::log::{AppendInfo, LogConfig, LogError, LogOffsets, LogRead, PartitionLog};
use crate::protocol::record_batch::split_batches;

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
    pub config: TopicConfig,
    pub log: Rc<PartitionLog>,
}

impl Partition {
    pub async fn open(
        dir: &Path,
        topic: &str,
        index: i32,
        topic_id: Uuid,
        config: TopicConfig,
    ) -> Result<Self, LogError> {
        let log_config = LogConfig {
            segment_bytes: u64::try_from(config.segment_bytes).expect("validated positive"),
            index_interval_bytes: u64::try_from(config.index_interval_bytes).expect("validated positive"),
        };
        let log = PartitionLog::open(dir, log_config).await?;
        Ok(Self { topic: topic.to_owned(), index, topic_id, config, log })
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
        let max = self.config.max_message_bytes;
        if let Some((_, big)) = batches.iter().find(|(_, h)| h.total_bytes() > max as usize) {
            return Err(PartitionError::MessageTooLarge { size: big.total_bytes(), max });
        }
        let info = self.log.append_as_leader(records, &batches, LEADER_EPOCH)?;
        if acks != 0 {
            self.log.wait_durable(info.last_offset).await?;
        }
        Ok(info)
    }

    pub async fn fetch(&self, offset: i64, max_bytes: usize) -> Result<LogRead, PartitionError> {
        Ok(self.log.read(offset, max_bytes).await?)
    }

    pub fn offsets(&self) -> LogOffsets {
        self.log.offsets()
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
