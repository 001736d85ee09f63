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
use strand_io::{fs, FileReader, IoError};
use strand_shards::task::{spawn_local, Task};
use tracing::debug;

use super::batch_scan::{scan_batches, Scan};

use super::recovery::recover;
use super::catch_up_reads::CatchUpReads;
use super::producer_state::{ProducerState, ProducerSummary, SequenceCheck, SequenceError};
use super::recovery::rebuild_producer_state;
use super::tail_cache::{PartitionTail, TailCache};
use super::{LogError, Segment};
use crate::protocol::record_batch::{assign_offsets, verify_batch, BatchError, BatchHeader, BATCH_HEADER_BYTES};

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
}

impl LogConfig {
    pub fn strict(&self) -> bool {
        self.flush_messages <= 1
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
    pub closing: bool,
    pub producers: ProducerState,
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
}

/// What the logs of one shard share: the tail cache budget and the catch-up read scheduler.
#[derive(Clone)]
pub struct LogShared {
    pub tail_cache: Rc<TailCache>,
    pub catch_up: Rc<CatchUpReads>,
}

impl PartitionLog {
    /// Recovers the log in `dir` (creating it if new) and starts its writer.
    pub async fn open(dir: &Path, config: LogConfig, shared: &LogShared) -> Result<Rc<Self>, IoError> {
        fs::create_dir_all(dir).await?;
        let started = Instant::now();
        let recovered = recover(dir, &config).await?;
        let log_end_offset = recovered.segments.last().map_or(0, |s| s.next_offset);
        let producers = rebuild_producer_state(dir, &recovered.segments, log_end_offset).await?;
        debug!(dir = %dir.display(), log_start_offset = recovered.log_start_offset, log_end_offset,
               clean = recovered.clean, elapsed_ms = started.elapsed().as_millis() as u64, "log recovered");
        let log = Rc::new(Self {
            dir: dir.to_owned(),
            config: Cell::new(config),
            state: RefCell::new(LogState {
                segments: recovered.segments,
                log_start_offset: recovered.log_start_offset,
                log_end_offset,
                high_watermark: log_end_offset,
                durable_offset: log_end_offset,
                pending: Vec::new(),
                failure: None,
                closing: false,
                producers,
            }),
            work: Event::new(),
            progress: Event::new(),
            writer_task: RefCell::new(None),
            tail: PartitionTail::new(&shared.tail_cache),
            catch_up: Rc::clone(&shared.catch_up),
            compaction_due: std::cell::Cell::new(true),
        });
        let task = spawn_local(Rc::clone(&log).run_writer(recovered.active));
        *log.writer_task.borrow_mut() = Some(task);
        Ok(log)
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

    /// Gives `records` (already verified batches, described by `batches`) their offsets and
    /// queues them for the writer. After this returns the batches are ordered in the log; they
    /// are acknowledged once [`PartitionLog::wait_committed`] returns for `last_offset`.
    pub fn append_as_leader(
        &self,
        records: Bytes,
        batches: &[(usize, BatchHeader)],
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        let mut state = self.state.borrow_mut();
        if let Some(failure) = &state.failure {
            return Err(LogError::Offline(failure.clone()));
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
            next += i64::from(header.last_offset_delta) + 1;
        }
        let owned = Bytes::from(owned);
        let mut next = base_offset;
        for &(position, header) in batches {
            let bytes = owned.slice(position..position + header.total_bytes());
            let header = BatchHeader { base_offset: next, ..header };
            next = header.next_offset();
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
    pub async fn wait_committed(&self, offset: i64) -> Result<(), LogError> {
        loop {
            let listener = {
                let state = self.state.borrow();
                if let Some(failure) = &state.failure {
                    return Err(LogError::Offline(failure.clone()));
                }
                if state.high_watermark > offset {
                    return Ok(());
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

    /// Reads whole batches from the one holding `offset`, up to `max_bytes` (at least one batch
    /// if any is there, as Kafka does since KIP-74), never past the high watermark. Served
    /// from the tail cache when the offset is there; otherwise one catch-up read of the window
    /// from the nearest index entry.
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<LogRead, LogError> {
        let offsets = self.offsets();
        if offset < offsets.log_start_offset || offset > offsets.high_watermark {
            return Err(LogError::OffsetOutOfRange { offset, offsets });
        }
        if offset == offsets.high_watermark {
            return Ok(LogRead { records: Bytes::new(), offsets });
        }
        if let Some(records) = self.tail.read(offset, max_bytes, offsets.high_watermark) {
            return Ok(LogRead { records, offsets });
        }
        // From the segment holding `offset` on: compaction may have emptied the rest of it.
        let mut segment_index = {
            let state = self.state.borrow();
            state.segments.partition_point(|s| s.base_offset <= offset).max(1) - 1
        };
        let mut resume_at = None;
        loop {
            let Some((reader, index_position, end)) = self.segment_window(segment_index, offset) else {
                return Ok(LogRead { records: Bytes::new(), offsets });
            };
            let start = resume_at.take().unwrap_or(index_position);
            let lookahead = self.config.get().index_interval_bytes + max_bytes.max(BATCH_HEADER_BYTES) as u64;
            let window_len = usize::try_from(end.saturating_sub(start).min(lookahead)).expect("small");
            let window = self.catch_up.read(&reader, start, window_len, end).await?;
            let records = match pick_batches(&window, offset, max_bytes, offsets.high_watermark) {
                Picked::Range(from, to) => window.slice(from..to),
                Picked::Cut { at, len } => self.catch_up.read(&reader, start + at as u64, len, end).await?,
                // Every batch in the window is before `offset`: go on after them, in this
                // segment or the next.
                Picked::Before(walked) if walked > 0 && start + (walked as u64) < end => {
                    resume_at = Some(start + walked as u64);
                    continue;
                }
                Picked::Before(_) => {
                    segment_index += 1;
                    continue;
                }
            };
            return Ok(LogRead { records: verified_prefix(records)?, offsets });
        }
    }

    /// The reader and the byte range to read for `offset` in segment `index`, if it exists.
    fn segment_window(&self, index: usize, offset: i64) -> Option<(FileReader, u64, u64)> {
        let state = self.state.borrow();
        let segment = state.segments.get(index)?;
        Some((segment.reader.clone(), segment.position_for(offset), segment.size))
    }

    /// The first record with a timestamp at or after `timestamp`: (offset, its timestamp).
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        let (candidates, high_watermark) = {
            let state = self.state.borrow();
            let candidates: Vec<_> = state
                .segments
                .iter()
                .filter(|s| s.max_timestamp >= timestamp)
                .map(|s| {
                    let from = s.base_offset + i64::from(s.time_index.lookup(timestamp));
                    (s.reader.clone(), s.position_for(from), s.size)
                })
                .collect();
            (candidates, state.high_watermark)
        };
        for (reader, start, end) in candidates {
            if let Some(hit) = first_at_or_after(&reader, start, end, timestamp, high_watermark).await? {
                return Ok(Some(hit));
            }
        }
        Ok(None)
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

/// What a read window holds for a fetch at `offset`.
enum Picked {
    /// Whole batches in `window[from..to]`.
    Range(usize, usize),
    /// The first batch needed starts at `at` but runs past the window: `len` bytes.
    Cut { at: usize, len: usize },
    /// No batch at or past `offset` in the window; its first `.0` bytes are whole batches.
    Before(usize),
}

/// Picks, from a window of whole and partial batches, the batches from the one holding
/// `offset`, up to `max_bytes` (at least one), below `high_watermark`.
fn pick_batches(window: &[u8], offset: i64, max_bytes: usize, high_watermark: i64) -> Picked {
    let mut at = 0;
    let mut from = None;
    while at < window.len() {
        let Ok(header) = BatchHeader::parse(&window[at..]) else { break };
        let len = header.total_bytes();
        if header.base_offset >= high_watermark {
            break;
        }
        if header.next_offset() <= offset {
            at += len;
            continue;
        }
        let first = *from.get_or_insert(at);
        if at + len > window.len() {
            if first == at {
                return Picked::Cut { at, len };
            }
            break;
        }
        if at + len - first > max_bytes && at > first {
            break;
        }
        at += len;
    }
    match from {
        Some(first) if at > first => Picked::Range(first, at),
        _ => Picked::Before(at),
    }
}

/// Checks the CRC of every batch read from disk, so damaged data is never served: a damaged
/// first batch is an error, a later one ends the read before it.
fn verified_prefix(records: Bytes) -> Result<Bytes, LogError> {
    let mut at = 0;
    while at < records.len() {
        let end = BatchHeader::parse(&records[at..]).map(|h| at + h.total_bytes()).unwrap_or(usize::MAX);
        let checked = if end <= records.len() { verify_batch(&records[at..end]).map(|_| ()) } else { Err(BatchError::Corrupt) };
        if let Err(e) = checked {
            if at > 0 {
                return Ok(records.slice(..at));
            }
            let offset = BatchHeader::parse(&records).map_or(-1, |h| h.base_offset);
            tracing::error!(offset, error = %e, "stored batch is damaged: not serving it");
            return Err(LogError::Corrupt { offset, reason: e.to_string() });
        }
        at = end;
    }
    Ok(records)
}

/// Scans `[start, end)` of a segment for the first record at or after `timestamp`.
async fn first_at_or_after(
    reader: &strand_io::FileReader,
    start: u64,
    end: u64,
    timestamp: i64,
    high_watermark: i64,
) -> Result<Option<(i64, i64)>, LogError> {
    let mut found = None;
    let mut decode_error = None;
    scan_batches(reader, start, end, false, |header, _, batch| {
        if header.base_offset >= high_watermark {
            return Scan::Stop;
        }
        if header.max_timestamp < timestamp {
            return Scan::Continue;
        }
        match first_record_at_or_after(batch, timestamp) {
            Ok(Some(hit)) => {
                found = Some(hit);
                Scan::Stop
            }
            Ok(None) => Scan::Continue,
            Err(e) => {
                decode_error = Some(e);
                Scan::Stop
            }
        }
    })
    .await?;
    match decode_error {
        Some(e) => Err(LogError::Decode(e)),
        None => Ok(found),
    }
}

/// Decodes `batch` and finds its first record with a timestamp at or after `timestamp`.
fn first_record_at_or_after(batch: &Bytes, timestamp: i64) -> Result<Option<(i64, i64)>, String> {
    let mut buf = batch.clone();
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).map_err(|e| e.to_string())?;
    Ok(set.records.iter().find(|r| r.timestamp >= timestamp).map(|r| (r.offset, r.timestamp)))
}

