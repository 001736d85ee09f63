//! The strict writer's fdatasyncs in flight (log.flush.syncs.max), on the partition's shard.
//!
//! A round's fdatasync starts as soon as its write lands, and the next round writes beside it
//! instead of waiting: on one partition that takes all of a producer's load (a sticky
//! partitioner sends each partition everything for a while), a round then costs the longer of
//! its write and an fdatasync, not their sum.
//!
//! The durability contract: an fdatasync covers every append that completed before it started,
//! so when it returns, the rounds up to its start (its `offset`) are durable. Each sync's task
//! publishes its offset as soon as it and every sync before it returned without error (so an
//! ack does not wait for the next round's write); a failed one publishes nothing, nor does any
//! after it, and the writer, which lands the syncs in the order they started, takes the log
//! offline. Rolls, closes, the relaxed path's fdatasync and a round the shard journal took land
//! every sync in flight first (`PartitionLog::sync`), so a sync never outlives its segment's
//! writer, and in strict mode nothing is published past one still running.
//!
//! Only direct I/O without the shard journal runs several (the partition's log config clamps
//! the rest to 1): with the page cache, a failed writeback is reported to one fdatasync of the
//! file, and another one in flight could return success for the same lost pages.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

use event_listener::{Event, EventListener};
use futures_lite::future;
use strand_io::IoError;
use strand_shards::task::{spawn_local, Task};

use super::index_persist::IndexEntries;
use super::log_writer::{Writer, INDEX_PERSIST_LOG_BYTES};
use super::PartitionLog;

/// One fdatasync of the active segment in flight. Its task publishes what it made durable.
struct SegmentSync {
    task: Task<Result<(), IoError>>,
    /// The segment's length when it started.
    log_len: u64,
    /// The index entries then: they point at log this fdatasync covers.
    index_entries: IndexEntries,
}

/// How a sync in flight ended, for the one started after it: whether it and every sync before
/// it made their rounds durable.
#[derive(Default)]
struct SyncOutcome {
    durable: Cell<Option<bool>>,
    ended: Event,
}

impl SyncOutcome {
    fn end(&self, durable: bool) {
        self.durable.set(Some(durable));
        self.ended.notify(usize::MAX);
    }

    async fn wait(&self) -> bool {
        loop {
            if let Some(durable) = self.durable.get() {
                return durable;
            }
            let listener = self.ended.listen();
            if let Some(durable) = self.durable.get() {
                return durable;
            }
            listener.await;
        }
    }
}

/// The fdatasyncs in flight of one partition's active segment, oldest first.
#[derive(Default)]
pub(super) struct SegmentSyncs {
    in_flight: VecDeque<SegmentSync>,
    /// The outcome of the last sync started.
    last: Option<Rc<SyncOutcome>>,
}

impl SegmentSyncs {
    pub(super) fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }
}

impl PartitionLog {
    /// Starts an fdatasync of everything written to the active segment so far. Its task
    /// publishes the written offset once the fdatasync and every earlier one have returned.
    pub(super) fn start_sync(self: &Rc<Self>, writer: &mut Writer) {
        let log_len = writer.active.log.len();
        let offset = writer.written_offset;
        let syncer = writer.active.log.syncer();
        let earlier = writer.syncs.last.take();
        let outcome = Rc::new(SyncOutcome::default());
        writer.syncs.last = Some(Rc::clone(&outcome));
        let log = Rc::clone(self);
        let task = spawn_local(async move {
            let synced = syncer.sync(log_len).await;
            let earlier_durable = match earlier {
                Some(earlier) => earlier.wait().await,
                None => true,
            };
            let durable = synced.is_ok() && earlier_durable;
            if durable {
                log.made_durable(offset);
            }
            outcome.end(durable);
            synced
        });
        writer.syncs.in_flight.push_back(SegmentSync { task, log_len, index_entries: self.index_entries() });
        writer.unflushed_messages = 0;
        writer.unflushed_since = None;
    }

    /// Lands the syncs that have returned, oldest first, then waits for the oldest until at
    /// most `keep` are in flight. The first that failed is the error.
    pub(super) async fn land_syncs(&self, writer: &mut Writer, keep: usize) -> Result<(), IoError> {
        loop {
            let must_wait = writer.syncs.in_flight.len() > keep;
            let Some(oldest) = writer.syncs.in_flight.front_mut() else { return Ok(()) };
            let result = if must_wait { Some((&mut oldest.task).await) } else { future::poll_once(&mut oldest.task).await };
            let Some(result) = result else { return Ok(()) };
            let sync = writer.syncs.in_flight.pop_front().expect("the oldest sync");
            result?;
            self.landed(writer, &sync).await?;
        }
    }

    /// With nothing to write: waits for the oldest sync and lands it, or for a batch to write,
    /// whichever comes first.
    pub(super) async fn land_oldest_sync_or_work(&self, writer: &mut Writer, work: EventListener) -> Result<(), IoError> {
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
                self.landed(writer, &sync).await
            }
            None => Ok(()),
        }
    }

    /// The writer is failing (appends are refused meanwhile): lets the syncs in flight end,
    /// each publishing its rounds if it and every earlier one returned, without persisting
    /// index entries after them (one may have failed).
    pub(super) async fn let_syncs_end(&self, writer: &mut Writer) {
        while let Some(sync) = writer.syncs.in_flight.pop_front() {
            let _ = sync.task.await;
        }
    }

    /// `sync` returned, and its task published its rounds. Index entries that point at log it
    /// covers are persisted once `INDEX_PERSIST_LOG_BYTES` of log wait for theirs.
    async fn landed(&self, writer: &mut Writer, sync: &SegmentSync) -> Result<(), IoError> {
        let unindexed_after = writer.active.log.len().checked_sub(sync.log_len).expect("a sync never outlives its segment");
        if writer.unindexed_bytes >= INDEX_PERSIST_LOG_BYTES + unindexed_after {
            self.persist_index_entries_upto(&mut writer.active, sync.index_entries).await?;
            writer.unindexed_bytes = unindexed_after;
        }
        Ok(())
    }
}
