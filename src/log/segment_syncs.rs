//! The strict writer's fdatasyncs in flight (log.flush.syncs.max), on the partition's shard.
//!
//! A round's fdatasync starts as soon as its write lands, and the next round writes beside it
//! instead of waiting: on one partition that takes all of a producer's load (a sticky
//! partitioner sends each partition everything for a while), a round then costs the longer of
//! its write and an fdatasync, not their sum.
//!
//! The durability contract: an fdatasync covers every append that completed before it started,
//! so when it returns, the rounds up to its start (its `offset`) are durable. The writer lands
//! the syncs in the order they started, and publishes a sync's offset only once that sync and
//! every one before it returned without error; a failed one takes the log offline before
//! anything after it is acknowledged. Rolls, closes, the relaxed path's fdatasync and a round
//! the shard journal took land every sync in flight first (`PartitionLog::sync`), so a sync
//! never outlives its segment's writer and nothing is published past one still running.
//!
//! Only direct I/O without the shard journal runs several (the partition's log config clamps
//! the rest to 1): with the page cache, a failed writeback is reported to one fdatasync of the
//! file, and another one in flight could return success for the same lost pages.

use std::collections::VecDeque;

use futures_lite::future;
use strand_io::IoError;
use strand_shards::task::{spawn_local, Task};

use super::index_persist::IndexEntries;
use super::log_writer::{Writer, INDEX_PERSIST_LOG_BYTES};
use super::PartitionLog;

/// One fdatasync of the active segment in flight, and what it makes durable.
struct SegmentSync {
    task: Task<Result<(), IoError>>,
    /// The writer's written offset when it started: every batch before it is durable once it
    /// returns.
    offset: i64,
    /// The segment's length when it started.
    log_len: u64,
    /// The index entries then: they point at log this fdatasync covers.
    index_entries: IndexEntries,
}

/// The fdatasyncs in flight of one partition's active segment, oldest first.
#[derive(Default)]
pub(super) struct SegmentSyncs {
    in_flight: VecDeque<SegmentSync>,
}

impl SegmentSyncs {
    pub(super) fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }
}

impl PartitionLog {
    /// Starts an fdatasync of everything written to the active segment so far.
    pub(super) fn start_sync(&self, writer: &mut Writer) {
        let log_len = writer.active.log.len();
        let syncer = writer.active.log.syncer();
        let task = spawn_local(async move { syncer.sync(log_len).await });
        let sync = SegmentSync { task, offset: writer.written_offset, log_len, index_entries: self.index_entries() };
        writer.syncs.in_flight.push_back(sync);
        writer.unflushed_messages = 0;
        writer.unflushed_since = None;
    }

    /// Lands the syncs that have returned, oldest first, then waits for the oldest until at
    /// most `keep` are in flight.
    pub(super) async fn land_syncs(&self, writer: &mut Writer, keep: usize) -> Result<(), IoError> {
        loop {
            let must_wait = writer.syncs.in_flight.len() > keep;
            let Some(oldest) = writer.syncs.in_flight.front_mut() else { return Ok(()) };
            let result = if must_wait { Some((&mut oldest.task).await) } else { future::poll_once(&mut oldest.task).await };
            let Some(result) = result else { return Ok(()) };
            let sync = writer.syncs.in_flight.pop_front().expect("the oldest sync");
            result?;
            self.synced(writer, &sync).await?;
        }
    }

    /// With nothing to write: waits for the oldest sync and lands it, or for a batch to write,
    /// whichever comes first.
    pub(super) async fn land_oldest_sync_or_work(&self, writer: &mut Writer, work: event_listener::EventListener) -> Result<(), IoError> {
        let landed = {
            let Some(oldest) = writer.syncs.in_flight.front_mut() else { return Ok(()) };
            future::or(async { Some((&mut oldest.task).await) }, async {
                work.await;
                None
            })
            .await
        };
        match landed {
            Some(result) => {
                let sync = writer.syncs.in_flight.pop_front().expect("the oldest sync");
                result?;
                self.synced(writer, &sync).await
            }
            None => Ok(()),
        }
    }

    /// `sync` returned: its rounds are durable and published. Index entries that point at log
    /// it covers are persisted once `INDEX_PERSIST_LOG_BYTES` of log wait for theirs.
    async fn synced(&self, writer: &mut Writer, sync: &SegmentSync) -> Result<(), IoError> {
        self.catch_up.note_write();
        {
            let mut state = self.state.borrow_mut();
            state.durable_offset = state.durable_offset.max(sync.offset);
        }
        self.publish(sync.offset);
        let unindexed_after = writer.active.log.len() - sync.log_len;
        if writer.unindexed_bytes >= INDEX_PERSIST_LOG_BYTES + unindexed_after {
            self.persist_index_entries_upto(&mut writer.active, sync.index_entries).await?;
            writer.unindexed_bytes = unindexed_after;
        }
        Ok(())
    }
}
