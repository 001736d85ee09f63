//! The log of a partition: segment files with their indexes, recovery, and the durable append
//! path. Runs on the shard that owns the partition; files are touched only through strand-io.
//!
//! Directory of a partition: `<log.dirs>/<topic>-<partition>/`, segments named by base offset
//! (20 digits): `.log` (record batches v2 as stored), `.index` (sparse offset -> position),
//! `.timeindex` (timestamp -> offset).

mod batch_scan;
mod error;
mod offset_index;
mod partition_log;
mod recovery;
mod segment;
mod time_index;

pub use error::LogError;
pub use offset_index::OffsetIndex;
pub use partition_log::{AppendInfo, LogConfig, LogOffsets, LogRead, PartitionLog};
pub use segment::Segment;
pub use time_index::TimeIndex;
