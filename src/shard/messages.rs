//! The requests one shard sends another, each carrying its typed reply slot.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strand_shards::Reply;

use crate::cluster::{ControllerRequest, MetadataImage};
use crate::group::{GroupRequest, GroupResponse};
use crate::log::{AppendInfo, LogRead, ProducerSummary};
use crate::partition::{ListedOffset, PartitionError};

/// The bytes one partition holds on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSize {
    pub topic: String,
    pub partition: i32,
    pub size_bytes: u64,
}

/// One partition of a fetch: where to read and its own byte limit.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub max_bytes: usize,
}

/// One partition of a produce request: its records as the client sent them.
#[derive(Debug, Clone)]
pub struct PartitionAppend {
    pub topic: String,
    pub partition: i32,
    pub records: Bytes,
}

pub enum ShardRequest {
    /// Append a produce request's records to the partitions of it this shard owns, at once;
    /// answered when every one is (durable, for acks 1 and -1), in the same order.
    Produce { appends: Vec<PartitionAppend>, acks: i16, reply: Reply<Vec<Result<AppendInfo, PartitionError>>> },
    /// Read from a partition this shard owns.
    /// Read a fetch's partitions this shard owns, in order, within `max_bytes` in all
    /// ([`crate::shard::ShardState::fetch_partitions`]).
    Fetch { reads: Vec<PartitionRead>, max_bytes: usize, reply: Reply<Vec<Result<LogRead, PartitionError>>> },
    /// Answer once any of these partitions has data past the given offset, or after `max_wait`.
    WaitForData { waits: Vec<(String, i32, i64)>, max_wait: Duration, reply: Reply<()> },
    ListOffset {
        topic: String,
        partition: i32,
        timestamp: i64,
        reply: Reply<Result<ListedOffset, PartitionError>>,
    },
    /// The idempotent producers a partition knows.
    DescribeProducers { topic: String, partition: i32, reply: Reply<Result<Vec<ProducerSummary>, PartitionError>> },
    /// DeleteRecords on a partition this shard owns: move its log start offset to `offset`
    /// (-1: the high watermark); answers the new log start offset.
    DeleteRecords { topic: String, partition: i32, offset: i64, reply: Reply<Result<i64, PartitionError>> },
    /// The on-disk size of every partition this shard owns (DescribeLogDirs).
    PartitionSizes { reply: Reply<Vec<PartitionSize>> },
    /// Adopt a new metadata image: open partitions newly placed here, apply changed topic
    /// configs, drop deleted ones.
    ApplyMetadata { image: Arc<MetadataImage>, reply: Reply<()> },
    /// Every shard has applied the first metadata image: start the journal and serving.
    /// Answers the partitions that did not replay the last run's journal.
    Serve { reply: Reply<usize> },
    /// For shard 0: a request to the controller.
    Controller(ControllerRequest),
    /// A request for a group whose __consumer_offsets `partition` this shard owns.
    Group { partition: i32, request: GroupRequest, reply: Reply<GroupResponse> },
}
