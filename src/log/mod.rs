//! The log of a partition: segment files with their indexes, recovery, the durable append path,
//! and retention. Runs on the shard that owns the partition; files are touched only through
//! strand-io.
//!
//! Directory of a partition: `<log.dirs>/<topic>-<partition>/`, segments named by base offset
//! (20 digits): `.log` (record batches v2 as stored), `.index` (sparse offset -> position),
//! `.timeindex` (timestamp -> offset); `clean-shutdown` after a clean close;
//! `log-start-offset` once DeleteRecords moved the start inside a segment. The shard journal
//! (`journal`) lives in `<log.dirs>/journal/`.

mod batch_scan;
mod broker_writes;
mod catch_up_reads;
mod compaction;
mod error;
mod index_bytes;
mod index_persist;
mod journal;
mod log_reader;
mod log_shared;
mod log_writer;
mod offset_index;
mod partition_log;
mod producer_state;
mod readahead;
mod recovery;
mod retention;
mod segment;
mod segment_syncs;
mod tail_cache;
mod time_index;

#[cfg(test)]
mod catch_up_tests;
#[cfg(test)]
mod compaction_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod journal_tests;
#[cfg(test)]
mod producer_state_tests;
#[cfg(test)]
mod segment_syncs_tests;
#[cfg(test)]
mod tests;

pub use error::LogError;
pub use index_bytes::IndexBytes;
pub use journal::{Journal, JournalKey};
pub use offset_index::OffsetIndex;
pub use broker_writes::BrokerWrites;
pub use catch_up_reads::{CatchUpLimits, CatchUpReads};
pub use compaction::CompactionStats;
pub use producer_state::{ProducerState, ProducerSummary, SequenceError};
pub use log_shared::LogShared;
pub use partition_log::{AppendInfo, LogConfig, LogOffsets, LogRead, PartitionLog};
pub use retention::RetentionLimits;
pub use segment::Segment;
pub use tail_cache::{PartitionTail, TailCache};
pub use time_index::TimeIndex;
