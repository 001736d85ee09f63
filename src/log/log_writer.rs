//! The writer task of one partition log: the only code that writes its files.
//!
//! Each round takes every queued batch, writes them to the active segment in one write
//! (rolling the segment when a batch would pass segment.bytes or the segment is older than
//! segment.ms), then applies the flush policy:
//! - strict mode fdatasyncs and only then moves the high watermark (acks and parked fetches
//!   wake); with log.flush.syncs.max above 1 the next round writes while earlier rounds'
//!   fdatasyncs are in flight (`segment_syncs`);
//! - or, when the shard journal runs and takes the round, the journal makes the batches durable
//!   instead (it fdatasyncs the segment itself before reusing its records, `sync_segment`);
//! - relaxed mode moves it after the write and fdatasyncs once flush.messages messages are
//!   written or flush.ms has passed.
//!
//! Index entries are appended to the index files (not synced: recovery checks them) only for
//! log an fdatasync of the segment by the writer covered, so an index entry only ever points at
//! data durable in its segment; and only once `INDEX_PERSIST_LOG_BYTES` of log wait for theirs,
//! or at a roll or close, as they serve recovery alone (readers use the in-memory index), which
//! reads the log from the last entry persisted (`index_persist`).

use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use futures_lite::future;
use strand_config::IoMode;
use strand_io::{fs, IoError};
use strand_shards::task::sleep;
use tracing::{debug, error, info, warn};

use super::partition_log::PendingBatch;
use super::recovery::{create_active, mapped_indexes, ActiveFiles, CLEAN_SHUTDOWN_FILE, PRODUCER_STATE_FILE};
use super::segment_syncs::SegmentSyncs;
use super::{PartitionLog, Segment};

/// How long the writer waits before writing again after the filesystem ran out of space.
const OUT_OF_SPACE_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// How much log the active segment's persisted index entries may trail by: what recovery
/// reads past them after a crash, and what saves two index writes on most rounds.
pub(super) const INDEX_PERSIST_LOG_BYTES: u64 = 1 << 20;

/// What the writer tracks between rounds.
pub(super) struct Writer {
    pub(super) active: ActiveFiles,
    /// Offset after the last batch written.
    pub(super) written_offset: i64,
    /// Messages written since the last fdatasync started, and when the first of them was.
    pub(super) unflushed_messages: u64,
    pub(super) unflushed_since: Option<Instant>,
    /// Log bytes written to the active segment since its index entries were last persisted.
    pub(super) unindexed_bytes: u64,
    /// The active segment's fdatasyncs in flight, oldest first.
    pub(super) syncs: SegmentSyncs,
}

impl PartitionLog {
    pub(super) async fn run_writer(self: Rc<Self>, active: ActiveFiles) {
        // The segment's end: batches queued at open (replayed from the journal) are not in it.
        let (written_offset, recovered_unindexed) = {
            let state = self.state.borrow();
            let active = state.segments.last().expect("a log has an active segment");
            (state.durable_offset, active.offset_index.len() > active.persisted_offset_entries)
        };
        // Entries recovery rebuilt past the files' last one are written at the first sync, so
        // the files never trail by more than INDEX_PERSIST_LOG_BYTES plus one round.
        let unindexed_bytes = if recovered_unindexed { INDEX_PERSIST_LOG_BYTES } else { 0 };
        let mut writer =
            Writer { active, written_offset, unflushed_messages: 0, unflushed_since: None, unindexed_bytes, syncs: SegmentSyncs::default() };
        let result = match Rc::clone(&self).write_until_closed(&mut writer).await {
            Ok(()) => self.close_files(writer).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            error!(dir = %self.dir.display(), error = %e, "partition log failed: going offline");
            self.state.borrow_mut().failure = Some(e.to_string());
            self.tail.clear();
            self.progress.notify(usize::MAX);
        }
    }

    async fn write_until_closed(self: Rc<Self>, writer: &mut Writer) -> Result<(), IoError> {
        loop {
            if let Some(batches) = self.take_pending() {
                match self.write_batches(writer, &batches).await {
                    Ok(()) => self.set_out_of_space(None),
                    Err(e) if e.is_out_of_space() => {
                        // What was written before the failure is flushed and acknowledged as
                        // usual (before waiting acks learn of the full disk); the rest waits at
                        // the head of the queue for space.
                        self.requeue_unwritten(batches, writer.written_offset);
                        self.sync(writer).await?;
                        self.set_out_of_space(Some(&e));
                        self.wait_for_space().await;
                        continue;
                    }
                    Err(e) => {
                        // Rounds whose fdatasync is in flight are acknowledged if it returns:
                        // it covers only writes that completed before this one failed. Appends
                        // are refused meanwhile, however long it takes.
                        self.state.borrow_mut().failing = Some(e.to_string());
                        self.let_syncs_end(writer).await;
                        return Err(e);
                    }
                }
                if self.config.get().strict() {
                    self.make_durable(writer, &batches).await?;
                } else {
                    // Switched from strict: a sync in flight that failed stops the log first.
                    self.land_syncs(writer, usize::MAX).await?;
                    self.publish(writer.written_offset);
                    if writer.unflushed_messages >= self.config.get().flush_messages {
                        self.sync(writer).await?;
                    }
                }
                continue;
            }
            if self.state.borrow().closing {
                return self.sync(writer).await;
            }
            let listener = self.work.listen();
            let idle = {
                let state = self.state.borrow();
                state.pending.is_empty() && !state.closing
            };
            if !idle {
                continue;
            }
            if !writer.syncs.is_empty() {
                self.land_oldest_sync_or_work(writer, listener).await?;
                continue;
            }
            match writer.unflushed_since {
                Some(since) => {
                    let due = since + self.config.get().flush_interval();
                    let timer = async {
                        sleep(due.saturating_duration_since(Instant::now())).await;
                    };
                    future::or(listener, timer).await;
                    if Instant::now() >= due {
                        self.sync(writer).await?;
                    }
                }
                None => listener.await,
            }
        }
    }

    /// Strict mode: makes the round's batches durable before they are published, through the
    /// shard journal when it runs and takes them, otherwise by the segment's own fdatasync (its
    /// write's, for a write-through segment), which the next round does not wait for while
    /// fewer than log.flush.syncs.max are in flight.
    async fn make_durable(self: &Rc<Self>, writer: &mut Writer, batches: &[PendingBatch]) -> Result<(), IoError> {
        let bytes: usize = batches.iter().map(|b| b.bytes.len()).sum();
        match &self.journal_key {
            Some(key) if self.journal.takes(bytes) => {
                let chunks = batches.iter().map(|b| b.bytes.clone()).collect();
                match self.journal.append(self, key, chunks).await {
                    Ok(()) => {
                        // The journal record covers this round only: earlier rounds that went to
                        // their own fdatasync must be durable before the high watermark passes them.
                        self.land_syncs(writer, 0).await?;
                        self.publish(writer.written_offset);
                        Ok(())
                    }
                    // The journal failed (and said so): the segment's own fdatasync covers these.
                    Err(_) => self.sync(writer).await,
                }
            }
            // One at a time, the writer fdatasyncs inline: no task to schedule first. With the
            // page cache, never several: a failed writeback is reported to one fdatasync only.
            _ if writer.active.log.is_write_through() || self.config.get().syncs_max <= 1 || self.config.get().io_mode != IoMode::Direct => {
                self.sync(writer).await
            }
            _ => {
                self.start_sync(writer);
                self.land_syncs(writer, self.config.get().syncs_max - 1).await
            }
        }
    }

    /// Everything queued for the writer, if anything is.
    fn take_pending(&self) -> Option<Vec<PendingBatch>> {
        let mut state = self.state.borrow_mut();
        (!state.pending.is_empty()).then(|| std::mem::take(&mut state.pending))
    }

    /// Puts the batches of `batches` at or after `written_offset` back at the head of the
    /// queue, ahead of anything queued since.
    fn requeue_unwritten(&self, batches: Vec<PendingBatch>, written_offset: i64) {
        let mut state = self.state.borrow_mut();
        let unwritten: Vec<PendingBatch> =
            batches.into_iter().filter(|b| b.header.base_offset >= written_offset).collect();
        state.pending.splice(0..0, unwritten);
    }

    /// Records whether the filesystem is out of space. While it is, appends are refused and
    /// waiting acks fail with KAFKA_STORAGE_ERROR (the queued batches stay queued: a retry
    /// of an idempotent producer finds them by sequence); reads go on.
    fn set_out_of_space(&self, error: Option<&IoError>) {
        let mut state = self.state.borrow_mut();
        match (error, state.out_of_space.is_some()) {
            (Some(e), false) => {
                warn!(dir = %self.dir.display(), error = %e, "out of disk space: refusing appends until space is freed");
                state.out_of_space = Some(e.to_string());
                drop(state);
                self.progress.notify(usize::MAX);
            }
            (None, true) => {
                info!(dir = %self.dir.display(), "disk space available again: accepting appends");
                state.out_of_space = None;
            }
            _ => {}
        }
    }

    /// Waits before writing the queued batches again, or until the log closes: a closing log
    /// drops them (none was acknowledged) so the close does not wait for space.
    async fn wait_for_space(&self) {
        let closing = async {
            loop {
                let listener = self.work.listen();
                if self.state.borrow().closing {
                    return;
                }
                listener.await;
            }
        };
        future::or(sleep(OUT_OF_SPACE_RETRY), closing).await;
        let mut state = self.state.borrow_mut();
        if state.closing {
            state.pending.clear();
        }
    }

    /// Writes `batches` (in offset order), rolling the active segment when needed. On failure
    /// `writer.written_offset` tells which of them were written.
    async fn write_batches(&self, writer: &mut Writer, batches: &[PendingBatch]) -> Result<(), IoError> {
        let mut group_start = 0;
        let mut group_bytes = 0u64;
        for (i, batch) in batches.iter().enumerate() {
            let size = batch.bytes.len() as u64;
            let used = writer.active.log.len() + group_bytes;
            if used > 0 && (used + size > self.config.get().segment_bytes || self.active_segment_expired()) {
                self.write_group(writer, &batches[group_start..i]).await?;
                group_start = i;
                group_bytes = 0;
                self.roll(writer, batch.header.base_offset).await?;
            }
            group_bytes += size;
        }
        self.write_group(writer, &batches[group_start..]).await
    }

    fn active_segment_expired(&self) -> bool {
        let state = self.state.borrow();
        let active = state.segments.last().expect("a log has an active segment");
        active.first_append.is_some_and(|t| t.elapsed().as_millis() >= u128::from(self.config.get().segment_ms))
    }

    /// Writes one group to the active segment and records it in the segment (not yet visible:
    /// the high watermark moves in `publish`).
    async fn write_group(&self, writer: &mut Writer, group: &[PendingBatch]) -> Result<(), IoError> {
        let Some(last) = group.last() else { return Ok(()) };
        let next_offset = last.header.next_offset();
        let start = writer.active.log.len();
        let chunks: Vec<Bytes> = group.iter().map(|b| b.bytes.clone()).collect();
        self.catch_up.note_write();
        writer.active.log.append(&chunks).await?;
        // Again once it lands: a write stalled past the busy window must not let reads go long.
        self.catch_up.note_write();
        let mut state = self.state.borrow_mut();
        let interval = self.config.get().index_interval_bytes;
        let segment = state.segments.last_mut().expect("a log has an active segment");
        let mut position = start;
        for batch in group {
            self.tail.push(batch.header.base_offset, batch.header.next_offset(), batch.bytes.clone());
            segment.on_batch(&batch.header, position, interval);
            position += batch.bytes.len() as u64;
            writer.unflushed_messages += u64::from(batch.header.records_count.unsigned_abs());
        }
        assert_eq!(segment.size, writer.active.log.len(), "the segment records exactly what was written");
        writer.written_offset = next_offset;
        writer.unindexed_bytes += position - start;
        writer.unflushed_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Lands the fdatasyncs in flight, then fdatasyncs the active segment and publishes, then
    /// persists its new index entries if `INDEX_PERSIST_LOG_BYTES` of log wait for them (acks
    /// and fetches do not wait for those writes: an entry only speeds up recovery).
    pub(super) async fn sync(&self, writer: &mut Writer) -> Result<(), IoError> {
        self.land_syncs(writer, 0).await?;
        if writer.unflushed_since.is_none() {
            return Ok(());
        }
        writer.active.log.sync().await?;
        writer.unflushed_messages = 0;
        writer.unflushed_since = None;
        self.made_durable(writer.written_offset);
        if writer.unindexed_bytes >= INDEX_PERSIST_LOG_BYTES {
            self.persist_index_entries(&mut writer.active).await?;
            writer.unindexed_bytes = 0;
        }
        Ok(())
    }

    /// An fdatasync of the active segment returned: everything before `offset` is durable,
    /// and published.
    pub(super) fn made_durable(&self, offset: i64) {
        self.catch_up.note_write();
        {
            let mut state = self.state.borrow_mut();
            state.durable_offset = state.durable_offset.max(offset);
        }
        self.publish(offset);
    }

    /// Moves the high watermark to `offset` and wakes acks and parked fetches.
    fn publish(&self, offset: i64) {
        let mut state = self.state.borrow_mut();
        if offset > state.high_watermark {
            state.high_watermark = offset;
            drop(state);
            self.progress.notify(usize::MAX);
        }
    }

    /// The result of writing a file the log can do without (index entries, a producer
    /// snapshot: recovery re-derives both): a full disk only costs a warning, and the
    /// default value of `T` (for index entries: not written).
    pub(super) fn optional_write<T: Default>(&self, result: Result<T, IoError>, what: &str) -> Result<T, IoError> {
        match result {
            Err(e) if e.is_out_of_space() => {
                warn!(dir = %self.dir.display(), error = %e, "{what}: out of disk space");
                Ok(T::default())
            }
            other => other,
        }
    }

    /// Seals the active segment and starts a new one at `base_offset`.
    async fn roll(&self, writer: &mut Writer, base_offset: i64) -> Result<(), IoError> {
        // The sealed segment's data is made durable first: its index entries may then be
        // persisted and trusted by recovery.
        self.sync(writer).await?;
        let next = create_active(&self.dir, base_offset, &self.config.get()).await?;
        let sealed = std::mem::replace(&mut writer.active, next);
        writer.unindexed_bytes = 0;
        self.seal(sealed).await?;
        {
            let mut state = self.state.borrow_mut();
            state.segments.push(Segment::new(base_offset, writer.active.log.reader()));
            state.active_syncer = writer.active.log.syncer();
        }
        self.compaction_due.set(true);
        self.snapshot_producers(base_offset).await?;
        debug!(dir = %self.dir.display(), base_offset, "rolled segment");
        Ok(())
    }

    /// Closes the last segment's files at their exact lengths with complete indexes, then maps
    /// the indexes so the segment holds no index memory.
    async fn seal(&self, mut files: ActiveFiles) -> Result<(), IoError> {
        self.state.borrow_mut().segments.last_mut().expect("active segment").on_seal();
        let complete = self.persist_index_entries(&mut files).await?;
        files.log.close().await?;
        files.offset_index.close().await?;
        files.time_index.close().await?;
        if !complete {
            // A full disk kept entries out of the files: the segment keeps its indexes in
            // memory, and the next start writes the files again (recovery's seal_loaded).
            return Ok(());
        }
        let base = self.state.borrow().segments.last().expect("active segment").base_offset;
        let (offset_index, time_index) = mapped_indexes(&self.dir, base).await?;
        self.state.borrow_mut().segments.last_mut().expect("active segment").adopt_indexes(offset_index, time_index);
        Ok(())
    }

    /// Clean close: everything written is durable, the active segment's files are complete,
    /// and the marker lets the next start skip verification.
    async fn close_files(&self, mut writer: Writer) -> Result<(), IoError> {
        self.sync(&mut writer).await?;
        self.persist_index_entries(&mut writer.active).await?;
        writer.active.log.close().await?;
        writer.active.offset_index.close().await?;
        writer.active.time_index.close().await?;
        self.snapshot_producers(writer.written_offset).await?;
        // On a full disk there is no marker: the next start verifies the log, which is whole.
        let marker = fs::write_atomic(&self.dir.join(CLEAN_SHUTDOWN_FILE), Bytes::from_static(b"clean\n")).await;
        self.optional_write(marker, "clean shutdown marker")
    }

    /// Writes the producer state as of `boundary`, an offset everything before which is durable.
    async fn snapshot_producers(&self, boundary: i64) -> Result<(), IoError> {
        let snapshot = self.state.borrow().producers.snapshot_before(boundary);
        // On a full disk the previous snapshot stays; recovery replays the log from its boundary.
        let written = fs::write_atomic(&self.dir.join(PRODUCER_STATE_FILE), snapshot).await;
        self.optional_write(written, "producer state snapshot not written")
    }
}
