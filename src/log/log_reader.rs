//! The read path of a partition log: fetches (tail cache first, then one catch-up read from
//! the nearest index entry, CRCs verified, and a read ahead of the next fetch) and lookups by
//! timestamp. Runs on the shard that owns the partition; never reads past the high watermark.

use bytes::{Bytes, BytesMut};
use strand_io::FileReader;

use super::batch_scan::{scan_batches, Scan};
use super::{LogError, LogRead, PartitionLog};
use crate::protocol::record_batch::{verify_batch, BatchError, BatchHeader, BATCH_HEADER_BYTES};

impl PartitionLog {
    /// Reads whole batches from the one holding `offset`, up to `max_bytes` (at least one batch
    /// if any is there, as Kafka does since KIP-74), never past the high watermark. Served
    /// from the tail cache when the offset is there; otherwise one catch-up read of the window
    /// from the nearest index entry (at most the shard's catch-up read size, so a fetch far
    /// behind may get less than `max_bytes`, as Kafka allows), and more reads of that size
    /// only for a first batch longer than the window.
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<LogRead, LogError> {
        self.read_batches(offset, max_bytes, true).await
    }

    /// As [`PartitionLog::read`], but never more than `max_bytes`: no records when the first
    /// batch is longer, and with `max_bytes` 0 only the offset is checked. Kafka reads a
    /// fetch's partitions after the first one with records this way.
    pub async fn read_within(&self, offset: i64, max_bytes: usize) -> Result<LogRead, LogError> {
        self.read_batches(offset, max_bytes, false).await
    }

    async fn read_batches(&self, offset: i64, max_bytes: usize, min_one: bool) -> Result<LogRead, LogError> {
        // An offline log serves nothing, as Kafka's offline replicas do (KAFKA_STORAGE_ERROR).
        if let Some(failure) = &self.state.borrow().failure {
            return Err(LogError::Offline(failure.clone()));
        }
        let offsets = self.offsets();
        if offset < offsets.log_start_offset || offset > offsets.high_watermark {
            return Err(LogError::OffsetOutOfRange { offset, offsets });
        }
        let nothing = LogRead { records: Bytes::new(), offsets };
        if offset == offsets.high_watermark || !min_one && max_bytes == 0 {
            return Ok(nothing);
        }
        // Only a first batch longer than `max_bytes` makes a read longer.
        let fits = |records: &Bytes| min_one || records.len() <= max_bytes;
        if let Some(records) = self.tail.read(offset, max_bytes, offsets.high_watermark) {
            return Ok(if fits(&records) { LogRead { records, offsets } } else { nothing });
        }
        // From the segment holding `offset` on: compaction may have emptied the rest of it.
        let mut segment_index = self.segment_index_for(offset);
        let mut resume_at = None;
        loop {
            let Some((reader, index_position, end)) = self.segment_window(segment_index, offset) else {
                return Ok(LogRead { records: Bytes::new(), offsets });
            };
            let start = resume_at.take().unwrap_or(index_position);
            // One catch-up read at most: whole batches in it are served, a first batch longer
            // than it is read whole (`Picked::Cut`), a fetch wanting more gets it next time.
            let window_len = usize::try_from(end.saturating_sub(start)).unwrap_or(usize::MAX).min(self.window_bytes(max_bytes));
            let window = self.catch_up.read(&reader, start, window_len, end).await?;
            let records = match pick_batches(&window, offset, max_bytes, offsets.high_watermark) {
                Picked::Range(from, to) => window.slice(from..to),
                Picked::Cut { len, .. } if !min_one && len > max_bytes => return Ok(nothing),
                Picked::Cut { at, len } => self.read_rest_of_batch(&reader, &window, start, at, len, end).await?,
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
            if !fits(&records) {
                return Ok(nothing);
            }
            let (records, last) = verified_prefix(records)?;
            self.read_ahead_after(last, max_bytes);
            return Ok(LogRead { records, offsets });
        }
    }

    /// The bytes one catch-up read brings for a fetch of `max_bytes`: enough to reach the
    /// fetch's offset from the index entry before it and fill the fetch, within the shard's
    /// current read size.
    fn window_bytes(&self, max_bytes: usize) -> usize {
        let reach = usize::try_from(self.config.get().index_interval_bytes).unwrap_or(usize::MAX);
        reach.saturating_add(max_bytes.max(BATCH_HEADER_BYTES)).min(self.catch_up.read_bytes().max(BATCH_HEADER_BYTES))
    }

    /// A fetch of `max_bytes` was served from disk up to the batch `last`: reads ahead where the
    /// consumer's next fetch will start (unless the tail cache serves it), as much as that
    /// fetch's window or `last`, whichever is longer (batches of a partition tend to be alike).
    fn read_ahead_after(&self, last: Option<BatchHeader>, max_bytes: usize) {
        let Some(last) = last else { return };
        let next = last.next_offset();
        if next >= self.offsets().high_watermark || self.tail.holds(next) {
            return;
        }
        let Some((reader, position, end)) = self.segment_window(self.segment_index_for(next), next) else { return };
        let next_len = self.window_bytes(max_bytes).max(last.total_bytes());
        if let Some(task) = self.catch_up.read_ahead(&reader, position, next_len, end) {
            task.detach();
        }
    }

    /// The index of the segment holding `offset` (the first one when it is before them all).
    fn segment_index_for(&self, offset: i64) -> usize {
        self.state.borrow().segments.partition_point(|s| s.base_offset <= offset).max(1) - 1
    }

    /// The batch of `len` bytes that starts at `window[at..]` (the window read at `start`) and
    /// runs past it: the rest is read in pieces of at most the current catch-up read size, so
    /// a batch larger than a read makes no longer read for writes to wait behind, and the
    /// window's bytes are not read again.
    async fn read_rest_of_batch(&self, reader: &FileReader, window: &Bytes, start: u64, at: usize, len: usize, end: u64) -> Result<Bytes, LogError> {
        let mut batch = BytesMut::with_capacity(len);
        batch.extend_from_slice(&window[at..]);
        while batch.len() < len {
            let want = (len - batch.len()).min(self.catch_up.read_bytes());
            let piece = self.catch_up.read(reader, start + (at + batch.len()) as u64, want, end).await?;
            if piece.is_empty() {
                break; // The segment ends inside the batch: the CRC check serves what is whole.
            }
            batch.extend_from_slice(&piece);
        }
        Ok(batch.freeze())
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
/// first batch is an error, a later one ends the read before it. Also the header of the last
/// batch served.
fn verified_prefix(records: Bytes) -> Result<(Bytes, Option<BatchHeader>), LogError> {
    let mut at = 0;
    let mut last = None;
    while at < records.len() {
        let header = BatchHeader::parse(&records[at..]).ok();
        let end = header.map_or(usize::MAX, |h| at + h.total_bytes());
        let checked = if end <= records.len() { verify_batch(&records[at..end]).map(|_| ()) } else { Err(BatchError::Corrupt) };
        if let Err(e) = checked {
            if at > 0 {
                return Ok((records.slice(..at), last));
            }
            let offset = BatchHeader::parse(&records).map_or(-1, |h| h.base_offset);
            tracing::error!(offset, error = %e, "stored batch is damaged: not serving it");
            return Err(LogError::Corrupt { offset, reason: e.to_string() });
        }
        at = end;
        last = header;
    }
    Ok((records, last))
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
        // In a LogAppendTime batch every record has the batch's time, as Kafka reads it.
        if header.is_log_append_time() {
            found = Some((header.base_offset, header.max_timestamp));
            return Scan::Stop;
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

