//! The log of one partition: offsets, segments, and the writer task that makes appends durable.
//!
//! Runs on the shard that owns the partition. Appends are synchronous up to offset assignment:
//! `append_as_leader` gives the batches their offsets and queues them. One writer task per
//! partition drains the queue, writes everything queued in one O_DIRECT write and fdatasyncs it:
//! concurrent appends share one fsync (group commit), and partitions fsync independently, so no
//! partition waits behind another's fsync. Only then does the high watermark move past the
//! batches and their acks go out: an acknowledged batch (acks=1 or all) is durable.
//!
//! Offsets: log_start_offset <= high_watermark <= log_end_offset. log_end_offset is the next
//! offset to assign; high_watermark is the end of what is durable, and all readers see.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use event_listener::Event;
use strand_io::{fs, AppendFile, IoError};
use strand_shards::task::{spawn_local, Task};
use tracing::{debug, error};

use super::batch_scan::{scan_batches, Scan};
use super::recovery::recover;
use super::segment::{index_path, log_path, time_index_path};
use super::{LogError, Segment};
use crate::protocol::record_batch::{assign_offsets, BatchHeader};

/// Settings the log needs from its topic's config.
#[derive(Debug, Clone, Copy)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub index_interval_bytes: u64,
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

struct PendingBatch {
    header: BatchHeader,
    bytes: Bytes,
}

struct LogState {
    segments: Vec<Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    pending: Vec<PendingBatch>,
    failure: Option<String>,
    closing: bool,
}

pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    state: RefCell<LogState>,
    /// Wakes the writer: batches queued, or close asked.
    work: Event,
    /// Wakes waiters: the high watermark moved, or the log failed.
    progress: Event,
    writer_task: RefCell<Option<Task<()>>>,
}

impl PartitionLog {
    /// Recovers the log in `dir` (creating it if new) and starts its writer.
    pub async fn open(dir: &Path, config: LogConfig) -> Result<Rc<Self>, IoError> {
        fs::create_dir_all(dir).await?;
        let started = Instant::now();
        let recovered = recover(dir, config.index_interval_bytes).await?;
        let log_start_offset = recovered.segments[0].base_offset;
        let log_end_offset = recovered.segments.last().map_or(0, |s| s.next_offset);
        debug!(dir = %dir.display(), log_start_offset, log_end_offset,
               elapsed_ms = started.elapsed().as_millis() as u64, "log recovered");
        let log = Rc::new(Self {
            dir: dir.to_owned(),
            config,
            state: RefCell::new(LogState {
                segments: recovered.segments,
                log_start_offset,
                log_end_offset,
                high_watermark: log_end_offset,
                pending: Vec::new(),
                failure: None,
                closing: false,
            }),
            work: Event::new(),
            progress: Event::new(),
            writer_task: RefCell::new(None),
        });
        let task = spawn_local(Rc::clone(&log).run_writer(recovered.active));
        *log.writer_task.borrow_mut() = Some(task);
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn offsets(&self) -> LogOffsets {
        let state = self.state.borrow();
        LogOffsets { log_start_offset: state.log_start_offset, high_watermark: state.high_watermark }
    }

    /// Gives `records` (already verified batches, described by `batches`) their offsets and
    /// queues them for the writer. After this returns the batches are ordered in the log; they
    /// are durable once [`PartitionLog::wait_durable`] returns for `last_offset`.
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
            state.pending.push(PendingBatch { header, bytes });
        }
        state.log_end_offset = next;
        let log_start_offset = state.log_start_offset;
        drop(state);
        self.work.notify(1);
        Ok(AppendInfo { base_offset, last_offset: next - 1, log_start_offset })
    }

    /// Waits until `offset` is durable (below the high watermark).
    pub async fn wait_durable(&self, offset: i64) -> Result<(), LogError> {
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
    /// if any is there, as Kafka does since KIP-74).
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<LogRead, LogError> {
        let (reader, start, end, offsets) = {
            let state = self.state.borrow();
            let offsets = LogOffsets {
                log_start_offset: state.log_start_offset,
                high_watermark: state.high_watermark,
            };
            if offset < state.log_start_offset || offset > state.high_watermark {
                return Err(LogError::OffsetOutOfRange { offset, offsets });
            }
            if offset == state.high_watermark {
                return Ok(LogRead { records: Bytes::new(), offsets });
            }
            let i = state.segments.partition_point(|s| s.base_offset <= offset) - 1;
            let segment = &state.segments[i];
            (segment.reader.clone(), segment.position_for(offset), segment.size, offsets)
        };
        let lookahead = self.config.index_interval_bytes + max_bytes as u64;
        let mut first: Option<u64> = None;
        let mut last_end = start;
        scan_batches(&reader, start, end.min(start + lookahead.max(1)), false, |header, position, _| {
            if header.next_offset() <= offset {
                return Scan::Continue;
            }
            let from = *first.get_or_insert(position);
            let batch_end = position + header.total_bytes() as u64;
            if batch_end - from > max_bytes as u64 && position > from {
                return Scan::Stop;
            }
            last_end = batch_end;
            Scan::Continue
        })
        .await?;
        let records = match first {
            Some(from) => reader.read_at(from, usize::try_from(last_end - from).expect("small")).await?,
            None => {
                // The batch holding `offset` starts past the lookahead, or is bigger than it:
                // read it alone.
                self.read_first_batch_from(&reader, start, end, offset).await?
            }
        };
        Ok(LogRead { records, offsets })
    }

    async fn read_first_batch_from(
        &self,
        reader: &strand_io::FileReader,
        start: u64,
        end: u64,
        offset: i64,
    ) -> Result<Bytes, LogError> {
        let mut found = None;
        scan_batches(reader, start, end, false, |header, position, _| {
            if header.next_offset() <= offset {
                return Scan::Continue;
            }
            found = Some((position, header.total_bytes()));
            Scan::Stop
        })
        .await?;
        match found {
            Some((position, len)) => Ok(reader.read_at(position, len).await?),
            None => Ok(Bytes::new()),
        }
    }

    /// The first record with a timestamp at or after `timestamp`: (offset, its timestamp).
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        let (reader, start, end) = {
            let state = self.state.borrow();
            let Some(segment) = state.segments.iter().find(|s| s.max_timestamp >= timestamp) else {
                return Ok(None);
            };
            let from = segment.base_offset + i64::from(segment.time_index.lookup(timestamp));
            (segment.reader.clone(), segment.position_for(from), segment.size)
        };
        let mut found = None;
        let mut decode_error = None;
        scan_batches(&reader, start, end, false, |header, _, batch| {
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

    /// Stops accepting appends, lets the writer make everything queued durable, seals the
    /// active segment's indexes and closes its files.
    pub async fn close(&self) {
        self.state.borrow_mut().closing = true;
        self.work.notify(1);
        let task = self.writer_task.borrow_mut().take();
        if let Some(task) = task {
            task.await;
        }
    }

    async fn run_writer(self: Rc<Self>, active: AppendFile) {
        let mut active = active;
        let result = self.write_until_closed(&mut active).await;
        let result = match result {
            Ok(()) => self.seal(active).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            error!(dir = %self.dir.display(), error = %e, "partition log failed: going offline");
            self.state.borrow_mut().failure = Some(e.to_string());
            self.progress.notify(usize::MAX);
        }
    }

    async fn write_until_closed(&self, active: &mut AppendFile) -> Result<(), IoError> {
        loop {
            match self.take_pending() {
                Some(batches) => self.write_batches(active, batches).await?,
                None if self.state.borrow().closing => return Ok(()),
                None => {
                    let listener = self.work.listen();
                    let idle = {
                        let state = self.state.borrow();
                        state.pending.is_empty() && !state.closing
                    };
                    if idle {
                        listener.await;
                    }
                }
            }
        }
    }

    /// Everything queued for the writer, if anything is.
    fn take_pending(&self) -> Option<Vec<PendingBatch>> {
        let mut state = self.state.borrow_mut();
        (!state.pending.is_empty()).then(|| std::mem::take(&mut state.pending))
    }

    /// Writes `batches` (in offset order) to the active segment, rolling it when it would pass
    /// segment.bytes, fdatasyncs, then publishes them to readers and waiters.
    async fn write_batches(&self, active: &mut AppendFile, batches: Vec<PendingBatch>) -> Result<(), IoError> {
        let mut group: Vec<PendingBatch> = Vec::new();
        let mut group_bytes = 0u64;
        for batch in batches {
            let size = batch.bytes.len() as u64;
            let segment_used = active.len() + group_bytes;
            if segment_used > 0 && segment_used + size > self.config.segment_bytes {
                self.write_group(active, std::mem::take(&mut group)).await?;
                group_bytes = 0;
                self.roll(active, batch.header.base_offset).await?;
            }
            group_bytes += size;
            group.push(batch);
        }
        self.write_group(active, group).await
    }

    async fn write_group(&self, active: &mut AppendFile, group: Vec<PendingBatch>) -> Result<(), IoError> {
        if group.is_empty() {
            return Ok(());
        }
        let start = active.len();
        let chunks: Vec<Bytes> = group.iter().map(|b| b.bytes.clone()).collect();
        active.append(&chunks).await?;
        active.sync().await?;
        let mut state = self.state.borrow_mut();
        let interval = self.config.index_interval_bytes;
        let segment = state.segments.last_mut().expect("a log has an active segment");
        let mut position = start;
        for batch in &group {
            segment.on_batch(&batch.header, position, interval);
            position += batch.bytes.len() as u64;
        }
        assert_eq!(segment.size, active.len(), "readers see exactly what was written");
        state.high_watermark = group.last().expect("not empty").header.next_offset();
        drop(state);
        self.progress.notify(usize::MAX);
        Ok(())
    }

    /// Seals the active segment and starts a new one at `base_offset`.
    async fn roll(&self, active: &mut AppendFile, base_offset: i64) -> Result<(), IoError> {
        let next = AppendFile::create(&log_path(&self.dir, base_offset)).await?;
        fs::sync_dir(&self.dir).await?;
        let sealed = std::mem::replace(active, next);
        self.seal(sealed).await?;
        self.state.borrow_mut().segments.push(Segment::new(base_offset, active.reader()));
        debug!(dir = %self.dir.display(), base_offset, "rolled segment");
        Ok(())
    }

    /// Closes a segment's log file at its exact length and writes its indexes.
    async fn seal(&self, file: AppendFile) -> Result<(), IoError> {
        let (base, index, time_index) = {
            let state = self.state.borrow();
            let segment = state
                .segments
                .iter()
                .rev()
                .find(|s| s.reader.path() == file.path())
                .expect("the sealed file is a segment");
            (segment.base_offset, segment.offset_index.encode(), segment.time_index.encode())
        };
        file.close().await?;
        fs::write_atomic(&index_path(&self.dir, base), index).await?;
        fs::write_atomic(&time_index_path(&self.dir, base), time_index).await
    }
}

/// Decodes `batch` and finds its first record with a timestamp at or after `timestamp`.
fn first_record_at_or_after(batch: &Bytes, timestamp: i64) -> Result<Option<(i64, i64)>, String> {
    let mut buf = batch.clone();
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).map_err(|e| e.to_string())?;
    Ok(set.records.iter().find(|r| r.timestamp >= timestamp).map(|r| (r.offset, r.timestamp)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // inside executor closures, which clippy does not see as tests
mod tests {
    use super::*;
    use crate::protocol::record_batch::split_batches;
    use crate::protocol::record_batch::tests::encoded_batch;
    use std::path::PathBuf;

    const CONFIG: LogConfig = LogConfig { segment_bytes: 1024, index_interval_bytes: 256 };

    fn run<T: Send + 'static, Fut: std::future::Future<Output = T> + 'static>(
        f: impl FnOnce() -> Fut + Send + 'static,
    ) -> T {
        strand_shards::run_one(256 << 10, move || async move {
            let probe_dir = std::env::temp_dir();
            let name = format!("log-test-{:?}", std::thread::current().id());
            fs::probe_device(&probe_dir, &name).await.unwrap();
            f().await
        })
    }

    async fn append(log: &PartitionLog, count: usize, timestamp: i64) -> AppendInfo {
        let records = encoded_batch(count, timestamp).freeze();
        let batches = split_batches(&records).unwrap();
        let info = log.append_as_leader(records, &batches, 0).unwrap();
        log.wait_durable(info.last_offset).await.unwrap();
        info
    }

    async fn read_all(log: &PartitionLog) -> Vec<i64> {
        let mut offsets = Vec::new();
        let mut next = log.offsets().log_start_offset;
        while next < log.offsets().high_watermark {
            let read = log.read(next, 300).await.unwrap();
            let mut set = read.records;
            while !set.is_empty() {
                let batch = kafka_protocol::records::RecordBatchDecoder::decode(&mut set).unwrap();
                offsets.extend(batch.records.iter().map(|r| r.offset));
            }
            next = *offsets.last().unwrap() + 1;
        }
        offsets
    }

    fn segment_files(dir: &Path, extension: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == extension))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn appends_roll_segments_and_read_back_in_order_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let offsets = run(move || async move {
            let log = PartitionLog::open(&path, CONFIG).await.unwrap();
            for i in 0..20 {
                assert_eq!(append(&log, 3, i * 10).await.base_offset, i * 3);
            }
            log.close().await;
            let log = PartitionLog::open(&path, CONFIG).await.unwrap();
            assert_eq!(log.offsets().high_watermark, 60);
            assert_eq!(append(&log, 1, 0).await.base_offset, 60);
            let offsets = read_all(&log).await;
            assert_eq!(log.offset_for_timestamp(95).await.unwrap(), Some((30, 100)));
            log.close().await;
            offsets
        });
        assert_eq!(offsets, (0..61).collect::<Vec<i64>>());
        let logs = segment_files(&dir.path().join("t-0"), "log");
        assert!(logs.len() >= 3, "segment.bytes=1024 rolls: {logs:?}");
        assert_eq!(segment_files(&dir.path().join("t-0"), "index").len(), logs.len());
    }

    /// Damages the last segment with `damage`, reopens, and returns the recovered offsets.
    fn recover_after(damage: impl FnOnce(&Path) + Send + 'static) -> Vec<i64> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let config = LogConfig { segment_bytes: 1 << 20, index_interval_bytes: 256 };
        let p = path.clone();
        run(move || async move {
            let log = PartitionLog::open(&p, config).await.unwrap();
            for _ in 0..5 {
                append(&log, 2, 0).await;
            }
            log.close().await;
        });
        let last = segment_files(&path, "log").pop().unwrap();
        damage(&last);
        run(move || async move {
            let log = PartitionLog::open(&path, config).await.unwrap();
            let offsets = read_all(&log).await;
            // The log takes appends right after what survived.
            let next = append(&log, 1, 0).await.base_offset;
            assert_eq!(next, offsets.last().map_or(0, |o| o + 1));
            log.close().await;
            offsets
        })
    }

    #[test]
    fn a_torn_tail_is_truncated_on_recovery() {
        let offsets = recover_after(|file| {
            let len = std::fs::metadata(file).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
            f.set_len(len - 10).unwrap();
        });
        // The last batch (offsets 8 and 9) lost its end.
        assert_eq!(offsets, (0..8).collect::<Vec<i64>>());
    }

    #[test]
    fn a_zeroed_tail_page_is_truncated_on_recovery() {
        let offsets = recover_after(|file| {
            let len = std::fs::metadata(file).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
            f.set_len(len + 4096).unwrap();
        });
        assert_eq!(offsets, (0..10).collect::<Vec<i64>>());
    }

    #[test]
    fn a_corrupt_byte_mid_log_ends_the_log_before_its_batch() {
        let offsets = recover_after(|file| {
            let mut bytes = std::fs::read(file).unwrap();
            let batch_len = bytes.len() / 5;
            bytes[2 * batch_len + 40] ^= 0xFF;
            std::fs::write(file, bytes).unwrap();
        });
        assert_eq!(offsets, (0..4).collect::<Vec<i64>>());
    }
}
