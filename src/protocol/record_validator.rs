//! The records inside a produced batch, checked before anything is written (Kafka's
//! LogValidator): every record's framing, offset deltas, keys for compacted topics and
//! CreateTime timestamps. Runs on the partition's owning shard, on the produce path only; what
//! is on disk was checked here once and is verified by CRC from then on.
//!
//! A record v2 (all varints zig-zag encoded, as Kafka's ByteUtils writes them):
//! length varint | attributes i8 | timestamp_delta varlong | offset_delta varint |
//! key_length varint | key | value_length varint | value | header_count varint |
//! header_count x (key_length varint | key | value_length varint | value).
//! `length` counts the bytes after itself; a length of -1 is a null key or value.
//!
//! An uncompressed batch is walked in place without allocating. A compressed batch is
//! decompressed, at most `decompressed_max_bytes` of it, and then walked the same way.

use bytes::Bytes;

use super::decompress::{decompress, DecompressError};
use super::record_batch::{BatchHeader, BATCH_HEADER_BYTES};

/// Kafka's RecordBatch.NO_TIMESTAMP: a record without a timestamp, never out of range.
const NO_TIMESTAMP: i64 = -1;
const VARINT_BYTES_MAX: usize = 5;
const VARLONG_BYTES_MAX: usize = 10;

/// What the topic asks of each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRules {
    /// The CreateTime window `[min, max]`, or None when the topic uses LogAppendTime.
    pub create_time_window: Option<(i64, i64)>,
    /// A compacted topic keeps the newest record per key, so every record needs one.
    pub require_keys: bool,
    /// The most a compressed batch's records may decompress to (message.decompressed.max.bytes).
    pub decompressed_max_bytes: usize,
}

impl RecordRules {
    /// The CreateTime window around `now_ms`: `before_max_ms` into the past, `after_max_ms` into
    /// the future, saturating at the ends of i64 (the defaults are Long.MAX_VALUE).
    pub fn create_time_window(now_ms: i64, before_max_ms: i64, after_max_ms: i64) -> (i64, i64) {
        (now_ms.saturating_sub(before_max_ms), now_ms.saturating_add(after_max_ms))
    }
}

/// Why a record was refused; each maps to the Kafka error a broker returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record {index} is malformed: {reason}")]
    Malformed { index: i32, reason: &'static str },
    #[error("record {index} has offset delta {offset_delta}, not {index}")]
    OffsetDelta { index: i32, offset_delta: i32 },
    #[error("compacted topic cannot accept a record without a key (record {index})")]
    MissingKey { index: i32 },
    #[error("timestamp {timestamp} of record {index} is out of range; it should be within [{min}, {max}]")]
    Timestamp { index: i32, timestamp: i64, min: i64, max: i64 },
    #[error("a producer may not set the timestamp type LogAppendTime")]
    LogAppendTimeFromProducer,
    #[error("unknown compression codec {0}")]
    UnknownCompression(i16),
    #[error("compressed records could not be read: {0}")]
    Decompress(String),
    #[error("records decompress to more than {limit} bytes (message.decompressed.max.bytes)")]
    DecompressedTooLarge { limit: usize },
}

impl From<DecompressError> for RecordError {
    fn from(e: DecompressError) -> Self {
        match e {
            DecompressError::UnknownCodec(codec) => Self::UnknownCompression(codec),
            DecompressError::TooLarge { limit } => Self::DecompressedTooLarge { limit },
            DecompressError::Corrupt(reason) => Self::Decompress(reason),
        }
    }
}

/// Checks every record of `batch`, one whole batch whose header [`verify_batch`] has accepted.
///
/// [`verify_batch`]: super::record_batch::verify_batch
pub fn validate_records(batch: &Bytes, header: &BatchHeader, rules: &RecordRules) -> Result<(), RecordError> {
    let walk = RecordWalk { header, rules };
    let records = &batch[BATCH_HEADER_BYTES..];
    match header.compression() {
        0 => walk.run(records),
        codec => walk.run(&decompress(codec, records, rules.decompressed_max_bytes)?),
    }
}

/// One pass over the records of a batch.
struct RecordWalk<'a> {
    header: &'a BatchHeader,
    rules: &'a RecordRules,
}

impl RecordWalk<'_> {
    /// Walks `records_count` records that must fill `records` exactly.
    fn run(&self, records: &[u8]) -> Result<(), RecordError> {
        let mut at = 0;
        for index in 0..self.header.records_count {
            let malformed = |reason| RecordError::Malformed { index, reason };
            let length = read_varint(records, &mut at).ok_or(malformed("bad length varint"))?;
            let body_end = usize::try_from(length)
                .ok()
                .and_then(|n| at.checked_add(n))
                .filter(|end| *end <= records.len())
                .ok_or(malformed("length past the end of the batch"))?;
            self.check_record(index, &records[..body_end], &mut at)?;
            if at != body_end {
                return Err(malformed("length differs from the record's fields"));
            }
        }
        if at != records.len() {
            return Err(RecordError::Malformed {
                index: self.header.records_count,
                reason: "bytes left after the last record",
            });
        }
        Ok(())
    }

    /// Checks the record body starting at `at` in `body` (which ends where the record does).
    fn check_record(&self, index: i32, body: &[u8], at: &mut usize) -> Result<(), RecordError> {
        let malformed = |reason| RecordError::Malformed { index, reason };
        skip(body, at, 1).ok_or(malformed("no attributes"))?;
        let timestamp_delta = read_varlong(body, at).ok_or(malformed("bad timestamp delta"))?;
        let offset_delta = read_varint(body, at).ok_or(malformed("bad offset delta"))?;
        if offset_delta != index {
            return Err(RecordError::OffsetDelta { index, offset_delta });
        }
        let key_length = read_varint(body, at).ok_or(malformed("bad key length"))?;
        if key_length < 0 && self.rules.require_keys {
            return Err(RecordError::MissingKey { index });
        }
        skip_nullable(body, at, key_length).ok_or(malformed("bad key"))?;
        let value_length = read_varint(body, at).ok_or(malformed("bad value length"))?;
        skip_nullable(body, at, value_length).ok_or(malformed("bad value"))?;
        let header_count = read_varint(body, at).filter(|n| *n >= 0).ok_or(malformed("bad header count"))?;
        for _ in 0..header_count {
            let key_length = read_varint(body, at).filter(|n| *n >= 0).ok_or(malformed("bad header key length"))?;
            skip_nullable(body, at, key_length).ok_or(malformed("bad header key"))?;
            let value_length = read_varint(body, at).ok_or(malformed("bad header value length"))?;
            skip_nullable(body, at, value_length).ok_or(malformed("bad header value"))?;
        }
        let timestamp = self.header.base_timestamp.checked_add(timestamp_delta).ok_or(malformed("timestamp overflows"))?;
        self.check_timestamp(index, timestamp)
    }

    /// Kafka's LogValidator.validateTimestamp: CreateTime timestamps must lie in the window; a
    /// batch a producer marked LogAppendTime carries its max_timestamp as every record's.
    fn check_timestamp(&self, index: i32, create_time: i64) -> Result<(), RecordError> {
        let log_append_time = self.header.is_log_append_time();
        let timestamp = if log_append_time { self.header.max_timestamp } else { create_time };
        match self.rules.create_time_window {
            Some((min, max)) if timestamp != NO_TIMESTAMP => {
                if timestamp < min || timestamp > max {
                    return Err(RecordError::Timestamp { index, timestamp, min, max });
                }
                Ok(())
            }
            _ if log_append_time => Err(RecordError::LogAppendTimeFromProducer),
            _ => Ok(()),
        }
    }
}

/// Advances past `n` bytes, if there are that many.
fn skip(buf: &[u8], at: &mut usize, n: usize) -> Option<()> {
    let end = at.checked_add(n).filter(|end| *end <= buf.len())?;
    *at = end;
    Some(())
}

/// Advances past a key or value of `length` bytes; -1 is null, anything below is malformed.
fn skip_nullable(buf: &[u8], at: &mut usize, length: i32) -> Option<()> {
    match length {
        -1 => Some(()),
        n => skip(buf, at, usize::try_from(n).ok()?),
    }
}

/// A zig-zag varint of at most 5 bytes that fits an i32, as Kafka's ByteUtils.readVarint reads.
fn read_varint(buf: &[u8], at: &mut usize) -> Option<i32> {
    i32::try_from(read_zigzag(buf, at, VARINT_BYTES_MAX)?).ok()
}

/// A zig-zag varlong of at most 10 bytes.
fn read_varlong(buf: &[u8], at: &mut usize) -> Option<i64> {
    read_zigzag(buf, at, VARLONG_BYTES_MAX)
}

fn read_zigzag(buf: &[u8], at: &mut usize, bytes_max: usize) -> Option<i64> {
    let mut raw: u64 = 0;
    for (i, byte) in buf.get(*at..)?.iter().take(bytes_max).enumerate() {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *at += i + 1;
            let magnitude = i64::try_from(raw >> 1).ok()?;
            return Some(if raw & 1 == 0 { magnitude } else { -magnitude - 1 });
        }
    }
    None
}

#[cfg(test)]
#[path = "record_validator_tests.rs"]
mod tests;
