//! The log of one partition: offsets, segments, and the API the partition uses.
//!
//! Runs on the shard that owns the partition. Appends are synchronous up to offset assignment:
//! `append_as_leader` gives the batches their offsets and queues them for the partition's
//! writer task (`log_writer`), which writes everything queued in one write and moves the high
//! watermark per the flush policy: in strict mode (flush.messages=1) after the fdatasync, so an
//! acknowledged batch is durable; otherwise after the write, with fdatasyncs every
//! flush.messages messages or flush.ms.
//!
//! Offsets: log_start_offset <= high_watermark <= log_end_offset. log_end_offset is the next
//! offset to assign; high_watermark is the end of what readers see and acks cover;
//! durable_offset is the end of what is fdatasync'ed.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_listener::Event;
use strand_config::IoMode;
use strand_io::{fs, FileSyncer, IoError, WriteOptions};
use strand_shards::task::{spawn_local, Task};
use tracing::{debug, info, warn};


use super::recovery::recover;
use super::catch_up_reads::CatchUpReads;
use super::producer_state::{ProducerState, ProducerSummary, SequenceCheck, SequenceError};
use super::recovery::rebuild_producer_state;
use super::tail_cache::PartitionTail;
use super::LogShared;
use super::journal::{Journal, JournalKey};
use super::{LogError, Segment};
use crate::protocol::record_batch::{assign_offsets, split_batches, stamp_log_append_time, BatchHeader};

/// Settings the log needs from its topic's and the broker's config.
#[derive(Debug, Clone, Copy)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: u64,
    pub index_interval_bytes: u64,
    pub io_mode: IoMode,
    pub preallocate_bytes: u64,
    /// Messages written before an fdatasync; 1 means every batch is synced before its ack.
    pub flush_messages: u64,
    /// Longest a written message waits for an fdatasync when flush_messages > 1.
    pub flush_ms: u64,
    /// log.io.write.through, and no shard journal: see [`LogConfig::segment_write`].
    pub write_through: bool,
    /// log.flush.syncs.max: a strict segment's fdatasyncs in flight at once (at least 1).
    pub syncs_max: usize,
}

impl LogConfig {
    pub fn strict(&self) -> bool {
        self.flush_messages <= 1
    }

    /// How the active segment's file is opened: write-through while strict in direct mode
    /// when `write_through` allows it (a topic made relaxed later keeps its open file's mode
    /// until the next roll, which only makes its appends durable sooner).
    pub fn segment_write(&self) -> WriteOptions {
        WriteOptions::new(self.io_mode, self.preallocate_bytes).write_through(self.write_through && self.strict())
    }

    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_ms)
    }
}

/// Offsets assigned to one append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
}

/// The offsets a reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOffsets {
    pub log_start_offset: i64,
    pub high_watermark: i64,
}

/// A read: whole batches starting with the one holding the requested offset.
#[derive(Debug)]
pub struct LogRead {
    pub records: Bytes,
    pub offsets: LogOffsets,
}

pub(super) struct PendingBatch {
    pub header: BatchHeader,
    pub bytes: Bytes,
}

pub(super) struct LogState {
    pub segments: Vec<Segment>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub durable_offset: i64,
    pub pending: Vec<PendingBatch>,
    pub failure: Option<String>,
    /// Set when the writer failed and lets its fdatasyncs in flight end before the log goes
    /// offline: appends are refused at once, acks wait for those syncs.
    pub failing: Option<String>,
    /// Set while the filesystem is full: appends are refused until the writer gets its queued
    /// batches written.
    pub out_of_space: Option<String>,
    pub closing: bool,
    pub producers: ProducerState,
    /// fdatasyncs the active segment's file; the writer replaces it when it rolls.
    pub active_syncer: FileSyncer,
}

pub struct PartitionLog {
    pub(super) dir: PathBuf,
    /// Swapped by [`PartitionLog::set_config`] when the topic's configs change; every use
    /// reads the current value.
    pub(super) config: Cell<LogConfig>,
    pub(super) state: RefCell<LogState>,
    /// Wakes the writer: batches queued, or close asked.
    pub(super) work: Event,
    /// Wakes waiters: the high watermark moved, or the log failed.
    pub(super) progress: Event,
    writer_task: RefCell<Option<Task<()>>>,
    pub(super) tail: Rc<PartitionTail>,
    pub(super) catch_up: Rc<CatchUpReads>,
    /// Set when a segment is sealed (and at open): compaction has new work.
    pub(super) compaction_due: std::cell::Cell<bool>,
    /// The shard journal, and this partition's key in it (none: the log never journals).
    pub(super) journal: Rc<Journal>,
    pub(super) journal_key: Option<Bytes>,
    /// Set while the journal lists this log for its next checkpoint.
    pub(super) journal_dirty: Cell<bool>,
}

impl PartitionLog {
    /// Recovers the log in `dir` (creating it if new), appends what the shard journal of the
    /// last run holds past the recovered end for `journal_key` (and fdatasyncs it), and starts
    /// its writer. A log with a key journals its strict-mode appends once the journal runs.
    pub async fn open(dir: &Path, config: LogConfig, shared: &LogShared, journal_key: Option<&JournalKey>) -> Result<Rc<Self>, IoError> {
        fs::create_dir_all(dir).await?;
        let started = Instant::now();
        let recovered = recover(dir, &config).await?;
        let recovered_end = recovered.segments.last().map_or(0, |s| s.next_offset);
        let mut producers = rebuild_producer_state(dir, &recovered.segments, recovered_end).await?;
        let replay = journal_key.map(|key| shared.journal.replay_for(key)).unwrap_or_default();
        let (pending, log_end_offset) = replayed_batches(dir, &replay, recovered_end);
        for batch in &pending {
            producers.record(&batch.header);
        }
        debug!(dir = %dir.display(), log_start_offset = recovered.log_start_offset, log_end_offset,
               clean = recovered.clean, replayed = pending.len(), elapsed_ms = started.elapsed().as_millis() as u64, "log recovered");
        let log = Rc::new(Self {
            dir: dir.to_owned(),
            config: Cell::new(config),
            state: RefCell::new(LogState {
                segments: recovered.segments,
                log_start_offset: recovered.log_start_offset,
                log_end_offset,
                high_watermark: recovered_end,
                durable_offset: recovered_end,
                pending,
                failure: None,
                failing: None,
                out_of_space: None,
                closing: false,
                producers,
                active_syncer: recovered.active.log.syncer(),
            }),
            work: Event::new(),
            progress: Event::new(),
            writer_task: RefCell::new(None),
            tail: PartitionTail::new(&shared.tail_cache),
            catch_up: Rc::clone(&shared.catch_up),
            compaction_due: std::cell::Cell::new(true),
            journal: Rc::clone(&shared.journal),
            journal_key: journal_key.map(JournalKey::encode),
            journal_dirty: Cell::new(false),
        });
        let task = spawn_local(Rc::clone(&log).run_writer(recovered.active));
        *log.writer_task.borrow_mut() = Some(task);
        if !replay.is_empty() {
            // The journal of the last run is deleted once every partition has replayed it:
            // what it holds must be durable in the segment first, whether appended now or
            // found there by recovery (written before a crash, maybe never fdatasync'ed).
            let durable = if log_end_offset > recovered_end {
                log.wait_committed(log_end_offset - 1).await.map_err(|e| e.to_string())
            } else {
                Ok(())
            };
            if let Err(e) = match durable {
                Ok(()) => log.sync_segment().await,
                Err(e) => Err(e),
            } {
                log.close().await;
                return Err(IoError::again("replay journal into", dir, e));
            }
            if log_end_offset > recovered_end {
                info!(dir = %dir.display(), from = recovered_end, to = log_end_offset, "batches replayed from the journal");
            }
        }
        if let Some(key) = journal_key {
            shared.journal.replayed(key);
        }
        Ok(log)
    }

    /// Makes everything written to the log's segments before this call durable: sealed
    /// segments were fdatasync'ed when they rolled, so this fdatasyncs the active one, beside
    /// the writer (which may be waiting for the journal, so it is not asked). The journal
    /// calls this for every partition it holds records of before overwriting them. Index
    /// entries are persisted by the writer's own fdatasyncs (at roll and close); recovery
    /// rebuilds what is missing.
    pub(super) async fn sync_segment(&self) -> Result<(), String> {
        let (syncer, len) = {
            let state = self.state.borrow();
            // After a failed fdatasync another one may report success (the kernel reports a
            // writeback error once): a failed log's segment is never taken as durable.
            if let Some(failure) = &state.failure {
                return Err(failure.clone());
            }
            (state.active_syncer.clone(), state.segments.last().map_or(0, |s| s.size))
        };
        syncer.sync(len).await.map_err(|e| e.to_string())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adopts new settings (AlterConfigs on the topic). Appends from now on roll, index and
    /// flush by them; the writer is woken so a shorter flush interval starts counting now.
    pub fn set_config(&self, config: LogConfig) {
        self.config.set(config);
        self.work.notify(1);
    }

    pub fn offsets(&self) -> LogOffsets {
        let state = self.state.borrow();
        LogOffsets { log_start_offset: state.log_start_offset, high_watermark: state.high_watermark }
    }

    /// True once after each segment seal (and after open): whether compaction has new work.
    pub fn take_compaction_due(&self) -> bool {
        self.compaction_due.replace(false)
    }

    /// Bytes the log holds on disk (all segments).
    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().segments.iter().map(|s| s.size).sum()
    }

    /// Heap bytes held for this log's segments (indexes), for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.state.borrow().segments.iter().map(Segment::heap_bytes).sum()
    }

    /// Gives `records` (already verified batches, described by `batches`) their offsets, and
    /// on a LogAppendTime topic the broker's clock `log_append_time_ms`, and queues them for
    /// the writer. After this returns the batches are ordered in the log; they are acknowledged
    /// once [`PartitionLog::wait_committed`] returns for `last_offset`.
    pub fn append_as_leader(
        &self,
        records: Bytes,
        batches: &[(usize, BatchHeader)],
        leader_epoch: i32,
        log_append_time_ms: Option<i64>,
    ) -> Result<AppendInfo, LogError> {
        let mut state = self.state.borrow_mut();
        if let Some(failure) = state.failure.as_ref().or(state.failing.as_ref()) {
            return Err(LogError::Offline(failure.clone()));
        }
        if let Some(error) = &state.out_of_space {
            return Err(LogError::OutOfSpace(error.clone()));
        }
        if state.closing {
            return Err(LogError::Closing);
        }
        // Idempotent producers: a retried batch is answered with its original offsets; gaps
        // and fenced epochs are refused before anything is assigned.
        let single = batches.len() == 1;
        for (_, header) in batches {
            match state.producers.check(header)? {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate { first_offset, last_offset } if single => {
                    let log_start_offset = state.log_start_offset;
                    return Ok(AppendInfo { base_offset: first_offset, last_offset, log_start_offset });
                }
                SequenceCheck::Duplicate { .. } => {
                    return Err(LogError::Sequence(SequenceError::OutOfOrder {
                        producer_id: header.producer_id,
                        got: header.base_sequence,
                        expected_after: -1,
                    }));
                }
            }
        }
        let mut owned = records.to_vec();
        let base_offset = state.log_end_offset;
        let mut next = base_offset;
        for &(position, header) in batches {
            let end = position + header.total_bytes();
            assign_offsets(&mut owned[position..end], next, leader_epoch);
            if let Some(now_ms) = log_append_time_ms {
                stamp_log_append_time(&mut owned[position..end], now_ms);
            }
            next += i64::from(header.last_offset_delta) + 1;
        }
        let owned = Bytes::from(owned);
        for &(position, header) in batches {
            let bytes = owned.slice(position..position + header.total_bytes());
            // The header as stamped: its offsets, and its timestamps on a LogAppendTime topic.
            let header = BatchHeader::parse(&bytes).unwrap_or(header);
            state.producers.record(&header);
            state.pending.push(PendingBatch { header, bytes });
        }
        state.log_end_offset = next;
        let log_start_offset = state.log_start_offset;
        drop(state);
        self.work.notify(1);
        Ok(AppendInfo { base_offset, last_offset: next - 1, log_start_offset })
    }

    /// The idempotent producers known to this partition.
    pub fn producers(&self) -> Vec<ProducerSummary> {
        self.state.borrow().producers.summaries()
    }

    /// Waits until `offset` is below the high watermark: written and, in strict mode, durable.
    /// What the high watermark passed is acknowledged even if the log failed since (its waiter
    /// ran late): in strict mode it was durable before the failure; in relaxed mode acks never
    /// waited for the fdatasync.
    pub async fn wait_committed(&self, offset: i64) -> Result<(), LogError> {
        loop {
            let listener = {
                let state = self.state.borrow();
                if state.high_watermark > offset {
                    return Ok(());
                }
                if let Some(failure) = &state.failure {
                    return Err(LogError::Offline(failure.clone()));
                }
                if let Some(error) = &state.out_of_space {
                    return Err(LogError::OutOfSpace(error.clone()));
                }
                self.progress.listen()
            };
            listener.await;
        }
    }

    /// Waits until the high watermark passes `offset` or the log fails; the caller bounds the
    /// wait with a timer.
    pub async fn wait_for_data_after(&self, offset: i64) {
        loop {
            let listener = {
                let state = self.state.borrow();
                if state.failure.is_some() || state.high_watermark > offset {
                    return;
                }
                self.progress.listen()
            };
            listener.await;
        }
    }

    /// Stops accepting appends, lets the writer make everything queued durable, closes the
    /// active segment's files and leaves the clean-shutdown marker.
    pub async fn close(&self) {
        self.state.borrow_mut().closing = true;
        self.work.notify(1);
        let task = self.writer_task.borrow_mut().take();
        if let Some(task) = task {
            task.await;
        }
        self.tail.clear();
        self.catch_up.invalidate(&self.dir);
    }
}

/// The batches of `replay` (runs of whole batches from the journal, oldest first) that follow
/// `end`, the recovered log end, and the new end. Batches at or before `end` are in the
/// segment already; a gap after it (a batch starting past the end) stops the replay, as the
/// log cannot hold a hole.
fn replayed_batches(dir: &Path, replay: &[Bytes], end: i64) -> (Vec<PendingBatch>, i64) {
    let mut pending = Vec::new();
    let mut next = end;
    for run in replay {
        let batches = match split_batches(run) {
            Ok(batches) => batches,
            Err(e) => {
                warn!(dir = %dir.display(), error = %e, "journal entry is not whole batches; replay stops");
                break;
            }
        };
        for (position, header) in batches {
            if header.next_offset() <= next {
                continue;
            }
            if header.base_offset != next {
                warn!(dir = %dir.display(), expected = next, found = header.base_offset, "journal replay found a gap; it stops there");
                return (pending, next);
            }
            pending.push(PendingBatch { header, bytes: run.slice(position..position + header.total_bytes()) });
            next = header.next_offset();
        }
    }
    (pending, next)
}
