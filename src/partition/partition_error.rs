//! Why a partition-level request failed; `protocol::error_code` maps each to Kafka's code.

use strand_shards::ShardsError;

use crate::log::LogError;
use crate::protocol::record_batch::BatchError;
use crate::protocol::record_validator::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("invalid record batch: {0}")]
    Batch(#[from] BatchError),
    #[error("record batch of {size} bytes is over max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: i32 },
    #[error("invalid record: {0}")]
    Record(#[from] RecordError),
    #[error("{0}")]
    PolicyViolation(String),
    #[error("acks must be -1, 0 or 1, not {0}")]
    InvalidRequiredAcks(i16),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("crossing to the owning shard: {0}")]
    Shard(#[from] ShardsError),
}
