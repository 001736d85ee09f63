//! Compaction (cleanup.policy=compact): keep the newest record of each key in the sealed
//! segments, drop tombstones once they are older than delete.retention.ms. Offsets never
//! change: a cleaned segment keeps its base offset, every retained record keeps its offset,
//! and the segment keeps its next offset even when its last records are gone.
//!
//! Runs in the shard's background task queue. A segment is rewritten only when something in it
//! goes: the cleaned copy is written and fdatasync'ed as `<base>.log.cleaned`, the old indexes
//! are removed, the copy is renamed over the old log (atomic) and the directory fsync'ed, and
//! new indexes are written. A crash at any step leaves either segment whole; recovery rebuilds
//! missing indexes and removes a stray `.cleaned` file.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};
use strand_io::{fs, AppendFile, FileReader, WriteOptions};

use super::batch_scan::{scan_batches, Scan};
use crate::clock::wall_clock_ms;
use super::recovery::mapped_indexes;
use super::segment::{index_path, log_path, time_index_path};
use super::{LogError, PartitionLog, Segment};
use crate::protocol::record_batch::{reseal_crc, BatchHeader, LOG_OVERHEAD_BYTES};

/// What a compaction pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactionStats {
    pub segments_rewritten: usize,
    pub records_before: u64,
    pub records_after: u64,
}

struct SealedSegment {
    base_offset: i64,
    next_offset: i64,
    reader: FileReader,
    size: u64,
}

impl PartitionLog {
    /// One compaction pass over the sealed segments.
    pub async fn compact(&self, delete_retention_ms: i64) -> Result<CompactionStats, LogError> {
        let sealed: Vec<SealedSegment> = {
            let state = self.state.borrow();
            let sealed = &state.segments[..state.segments.len() - 1];
            sealed
                .iter()
                .map(|s| SealedSegment { base_offset: s.base_offset, next_offset: s.next_offset, reader: s.reader.clone(), size: s.size })
                .collect()
        };
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        for segment in &sealed {
            for_each_record(segment, |record| {
                if let Some(key) = &record.key {
                    latest.insert(key.clone(), record.offset);
                }
            })
            .await?;
        }
        let now_ms = wall_clock_ms();
        let keep = |record: &Record| match &record.key {
            None => true,
            Some(key) if latest.get(key) != Some(&record.offset) => false,
            Some(_) => record.value.is_some() || now_ms.saturating_sub(record.timestamp) <= delete_retention_ms,
        };
        let mut stats = CompactionStats::default();
        for segment in &sealed {
            let (batches, before, after) = cleaned_batches(segment, &keep).await?;
            stats.records_before += before;
            stats.records_after += after;
            if before != after {
                self.replace_segment(segment, batches).await?;
                stats.segments_rewritten += 1;
            }
        }
        Ok(stats)
    }

    /// Swaps the sealed segment at `old.base_offset` for one holding `batches`.
    async fn replace_segment(&self, old: &SealedSegment, batches: Vec<Bytes>) -> Result<(), LogError> {
        let base = old.base_offset;
        let dir = &self.dir;
        let cleaned = dir.join(format!("{}.cleaned", log_path(dir, base).file_name().and_then(|n| n.to_str()).unwrap_or_default()));
        let mut file = AppendFile::create(&cleaned, WriteOptions::new(self.config.get().io_mode, 0)).await?;
        file.append(&batches).await?;
        file.close().await?;
        let reader = FileReader::open(&cleaned, self.config.get().io_mode).await?;
        let mut segment = Segment::new(base, reader);
        let mut position = 0;
        for batch in &batches {
            let header = BatchHeader::parse(batch).map_err(|e| LogError::Decode(e.to_string()))?;
            segment.on_batch(&header, position, self.config.get().index_interval_bytes);
            position += batch.len() as u64;
        }
        segment.on_seal();
        segment.next_offset = old.next_offset;
        fs::remove_file(&index_path(dir, base)).await?;
        fs::remove_file(&time_index_path(dir, base)).await?;
        fs::rename(&cleaned, &log_path(dir, base)).await?;
        fs::write_atomic(&index_path(dir, base), Bytes::copy_from_slice(segment.offset_index.encoded_from(0))).await?;
        fs::write_atomic(&time_index_path(dir, base), Bytes::copy_from_slice(segment.time_index.encoded_from(0))).await?;
        let (offset_index, time_index) = mapped_indexes(dir, base).await?;
        segment.adopt_indexes(offset_index, time_index);
        segment.reader = FileReader::open(&log_path(dir, base), self.config.get().io_mode).await?;
        let mut state = self.state.borrow_mut();
        // Retention or DeleteRecords may have removed the segment meanwhile.
        let sealed_count = state.segments.len() - 1;
        if let Some(slot) = state.segments[..sealed_count].iter_mut().find(|s| s.base_offset == base) {
            *slot = segment;
        }
        // Bytes read from the replaced file are never served (they belong to its reader, not
        // the new one); forgetting them frees their memory.
        self.catch_up.invalidate(&log_path(dir, base));
        Ok(())
    }
}

/// Calls `visit` for every record of the segment.
async fn for_each_record(segment: &SealedSegment, mut visit: impl FnMut(&Record)) -> Result<(), LogError> {
    let mut error = None;
    scan_batches(&segment.reader, 0, segment.size, false, |_, _, batch| {
        let mut buf = batch.clone();
        match RecordBatchDecoder::decode(&mut buf) {
            Ok(set) => {
                set.records.iter().for_each(&mut visit);
                Scan::Continue
            }
            Err(e) => {
                error = Some(e.to_string());
                Scan::Stop
            }
        }
    })
    .await?;
    error.map_or(Ok(()), |e| Err(LogError::Decode(e)))
}

/// The segment's batches with only the records `keep` accepts; batches left whole are kept
/// byte for byte. Returns the batches and the record counts before and after.
async fn cleaned_batches(segment: &SealedSegment, keep: &impl Fn(&Record) -> bool) -> Result<(Vec<Bytes>, u64, u64), LogError> {
    let mut out = Vec::new();
    let (mut before, mut after) = (0u64, 0u64);
    let mut error = None;
    scan_batches(&segment.reader, 0, segment.size, false, |_, _, batch| {
        let mut buf = batch.clone();
        let set = match RecordBatchDecoder::decode(&mut buf) {
            Ok(set) => set,
            Err(e) => {
                error = Some(e.to_string());
                return Scan::Stop;
            }
        };
        let retained: Vec<Record> = set.records.iter().filter(|r| keep(r)).cloned().collect();
        before += set.records.len() as u64;
        after += retained.len() as u64;
        if retained.len() == set.records.len() {
            out.push(batch.clone());
        } else if !retained.is_empty() {
            match encode_retained(retained, set.compression) {
                Ok(bytes) => out.push(bytes),
                Err(e) => {
                    error = Some(e);
                    return Scan::Stop;
                }
            }
        }
        Scan::Continue
    })
    .await?;
    match error {
        Some(e) => Err(LogError::Decode(e)),
        None => Ok((out, before, after)),
    }
}

/// Encodes the retained records of one batch as one batch with their original offsets.
///
/// kafka-protocol's encoder starts a new batch whenever `offset - sequence` changes, so records
/// of a producer without an id (sequence -1) are given consecutive sequences to stay in one
/// batch, and the batch's base sequence is then put back to -1 (with its CRC recomputed).
fn encode_retained(mut records: Vec<Record>, compression: kafka_protocol::records::Compression) -> Result<Bytes, String> {
    let without_producer = records[0].producer_id < 0;
    if without_producer {
        let first = records[0].offset;
        for record in &mut records {
            record.sequence = i32::try_from(record.offset - first).map_err(|e| e.to_string())?;
        }
    }
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).map_err(|e| e.to_string())?;
    if without_producer {
        const BASE_SEQUENCE: usize = 53;
        buf[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&(-1i32).to_be_bytes());
        reseal_crc(&mut buf);
    }
    debug_assert!(buf.len() > LOG_OVERHEAD_BYTES);
    Ok(buf.freeze())
}

