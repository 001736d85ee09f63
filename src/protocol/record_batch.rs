//! Kafka's record batch v2 header: parsing and validation of the bytes stored on disk and sent
//! on the wire.
//!
//! Layout (big-endian), 61 bytes before the records:
//! base_offset i64 | batch_length i32 | partition_leader_epoch i32 | magic i8 | crc u32 |
//! attributes i16 | last_offset_delta i32 | base_timestamp i64 | max_timestamp i64 |
//! producer_id i64 | producer_epoch i16 | base_sequence i32 | records_count i32.
//! batch_length counts the bytes after its own field; the CRC32C covers attributes to the end,
//! so base_offset and partition_leader_epoch may be rewritten without recomputing it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

/// Bytes of the header before the records.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes of base_offset + batch_length: what precedes the part batch_length counts.
pub const LOG_OVERHEAD_BYTES: usize = 12;
const CRC_START: usize = 21;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const MAGIC_V2: i8 = 2;
/// Attribute bits: the timestamp type (set: LogAppendTime) and the control flag.
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const CONTROL_BIT: i16 = 1 << 5;

/// What is wrong with a batch, each mapping to the Kafka error a broker returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record batch is truncated or its length is invalid")]
    Corrupt,
    #[error("record batch magic {0} is not 2")]
    UnsupportedMagic(i8),
    #[error("record batch CRC mismatch")]
    CrcMismatch,
    #[error("record batch has {count} records but last offset delta {last_offset_delta}")]
    InvalidRecordCount { count: i32, last_offset_delta: i32 },
    #[error("record set does not end with a whole batch")]
    Incomplete,
    #[error("clients may not write control batches")]
    ControlBatch,
    #[error("invalid base sequence {base_sequence} in a batch of producer {producer_id}")]
    InvalidSequence { producer_id: i64, base_sequence: i32 },
}

/// The parsed fixed header of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `buf` (at least [`BATCH_HEADER_BYTES`] long).
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Corrupt);
        }
        let mut b = buf;
        let base_offset = b.get_i64();
        let batch_length = b.get_i32();
        let _partition_leader_epoch = b.get_i32();
        let magic = b.get_i8();
        let crc = b.get_u32();
        let attributes = b.get_i16();
        let last_offset_delta = b.get_i32();
        let base_timestamp = b.get_i64();
        let max_timestamp = b.get_i64();
        let producer_id = b.get_i64();
        let producer_epoch = b.get_i16();
        let base_sequence = b.get_i32();
        let records_count = b.get_i32();
        let header = Self {
            base_offset,
            batch_length,
            magic,
            crc,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            records_count,
        };
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        if usize::try_from(batch_length).map_or(true, |n| n < BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) {
            return Err(BatchError::Corrupt);
        }
        Ok(header)
    }

    /// Bytes of the whole batch, header included.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD_BYTES + usize::try_from(self.batch_length).expect("checked at parse")
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// The sequence of the batch's last record (sequences wrap at i32::MAX).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        i32::try_from(last % (i64::from(i32::MAX) + 1)).expect("reduced below i32::MAX")
    }

    /// True for a batch of an idempotent or transactional producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Compression codec bits of the attributes.
    pub fn compression(&self) -> i16 {
        self.attributes & 0x7
    }

    /// True when the batch's timestamps are the broker's (LogAppendTime), not the producer's.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// True for a transaction marker batch, which only the broker writes.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// Checks one whole batch (`batch` is exactly its bytes): CRC32C and record count. Returns the
/// parsed header.
pub fn verify_batch(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.total_bytes() != batch.len() {
        return Err(BatchError::Corrupt);
    }
    if crc32c::crc32c(&batch[CRC_START..]) != header.crc {
        return Err(BatchError::CrcMismatch);
    }
    if header.records_count < 1 || header.records_count - 1 != header.last_offset_delta {
        return Err(BatchError::InvalidRecordCount {
            count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(header)
}

/// Splits a produce request's record set into its batches, verifying each. As Kafka's batch
/// iterator frames them: a batch_length too small for a header is corrupt; a set that ends
/// before its last batch does (or holds none) is incomplete.
pub fn split_batches(records: &[u8]) -> Result<Vec<(usize, BatchHeader)>, BatchError> {
    let mut batches = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let rest = &records[at..];
        let Some(length) = rest.get(8..LOG_OVERHEAD_BYTES) else { return Err(BatchError::Incomplete) };
        let batch_length = i32::from_be_bytes(length.try_into().expect("a 4-byte slice"));
        let body = usize::try_from(batch_length)
            .ok()
            .filter(|n| *n >= BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES)
            .ok_or(BatchError::Corrupt)?;
        let Some(batch) = rest.get(..LOG_OVERHEAD_BYTES + body) else { return Err(BatchError::Incomplete) };
        let header = verify_batch(batch)?;
        batches.push((at, header));
        at += batch.len();
    }
    if batches.is_empty() {
        return Err(BatchError::Incomplete);
    }
    Ok(batches)
}

/// The rules Kafka's LogValidator.validateBatch applies to a batch from a client: no control
/// batches, and an idempotent producer's batch carries a sequence.
pub fn check_client_batch(header: &BatchHeader) -> Result<(), BatchError> {
    if header.is_control() {
        return Err(BatchError::ControlBatch);
    }
    if header.has_producer_id() && header.base_sequence < 0 {
        return Err(BatchError::InvalidSequence { producer_id: header.producer_id, base_sequence: header.base_sequence });
    }
    Ok(())
}

/// Marks the batch at the start of `batch` LogAppendTime with `now_ms` as its max_timestamp,
/// which every record then reports (Kafka's setMaxTimestamp), and recomputes the CRC the
/// attributes and max_timestamp are under.
pub fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = i16::from_be_bytes([batch[ATTRIBUTES_OFFSET], batch[ATTRIBUTES_OFFSET + 1]]);
    (&mut batch[ATTRIBUTES_OFFSET..]).put_i16(attributes | TIMESTAMP_TYPE_BIT);
    (&mut batch[MAX_TIMESTAMP_OFFSET..]).put_i64(now_ms);
    reseal_crc(batch);
}

/// Recomputes the CRC of the batch at the start of `batch` after fields it covers changed.
pub fn reseal_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    (&mut batch[CRC_OFFSET..]).put_u32(crc);
}

/// Rewrites base_offset and partition_leader_epoch of the batch at the start of `batch`: the
/// leader assigns offsets. Neither field is covered by the CRC.
pub fn assign_offsets(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    let mut head = &mut batch[..LOG_OVERHEAD_BYTES + 4];
    head.put_i64(base_offset);
    head = &mut head[4..];
    head.put_i32(leader_epoch);
}

/// One record of a batch to encode: key, value, timestamp (ms).
pub type NewRecord = (Option<Bytes>, Option<Bytes>, i64);

/// Who produced a batch: an idempotent producer's id, epoch and first sequence.
#[derive(Debug, Clone, Copy)]
pub struct BatchProducer {
    pub id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

impl BatchProducer {
    /// A producer without idempotence.
    pub const NONE: Self = Self { id: -1, epoch: -1, base_sequence: 0 };
}

/// Encodes `records` as one v2 batch (kafka-protocol's encoder) with offsets from 0; the leader
/// assigns the real ones on append. Compression can fail; an uncompressed batch always encodes.
pub fn encode_batch(
    records: impl IntoIterator<Item = NewRecord>,
    producer: BatchProducer,
    compression: Compression,
) -> anyhow::Result<BytesMut> {
    let records: Vec<Record> = (0_i32..)
        .zip(records)
        .map(|(i, (key, value, timestamp))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer.id,
            producer_epoch: producer.epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            // The encoder keeps records in one batch while offset - sequence is constant.
            sequence: producer.base_sequence.wrapping_add(i),
            timestamp,
            key,
            value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, records.iter(), &RecordEncodeOptions { version: 2, compression })?;
    Ok(buf)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Keys "key-<i>", values "value-<i>", timestamps from `timestamp`.
    pub(crate) fn numbered(count: usize, timestamp: i64) -> impl Iterator<Item = NewRecord> {
        (0..count).map(move |i| {
            let key = Some(Bytes::from(format!("key-{i}")));
            (key, Some(Bytes::from(format!("value-{i}"))), timestamp + i as i64)
        })
    }

    /// A batch of `count` [`numbered`] records.
    pub(crate) fn encoded_batch(count: usize, timestamp: i64) -> BytesMut {
        encode_batch(numbered(count, timestamp), BatchProducer::NONE, Compression::None).unwrap()
    }

    /// The records [`encoded_batch`] holds, to alter before encoding them with [`encode_records`].
    pub(crate) fn test_records(count: usize, timestamp: i64) -> Vec<Record> {
        let batch = encoded_batch(count, timestamp).freeze();
        kafka_protocol::records::RecordBatchDecoder::decode(&mut batch.clone()).unwrap().records
    }

    /// One batch of `records`, compressed with `compression`.
    pub(crate) fn encode_records(records: &[Record], compression: Compression) -> BytesMut {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression };
        RecordBatchEncoder::encode(&mut buf, records.iter(), &options).unwrap();
        buf
    }

    #[test]
    fn a_valid_batch_verifies_and_reports_its_offsets() {
        let batch = encoded_batch(5, 1000);
        let header = verify_batch(&batch).unwrap();
        assert_eq!(header.records_count, 5);
        assert_eq!(header.last_offset_delta, 4);
        assert_eq!(header.max_timestamp, 1004);
        assert_eq!(header.total_bytes(), batch.len());
    }

    #[test]
    fn assigning_offsets_keeps_the_crc_valid() {
        let mut batch = encoded_batch(3, 0);
        assign_offsets(&mut batch, 1234, 7);
        let header = verify_batch(&batch).unwrap();
        assert_eq!(header.base_offset, 1234);
        assert_eq!(header.last_offset(), 1236);
    }

    #[test]
    fn a_flipped_byte_is_a_crc_mismatch_and_a_cut_batch_is_incomplete() {
        let mut batch = encoded_batch(3, 0);
        let last = batch.len() - 1;
        batch[last] ^= 0xFF;
        assert_eq!(verify_batch(&batch), Err(BatchError::CrcMismatch));
        let batch = encoded_batch(3, 0);
        assert_eq!(split_batches(&batch[..batch.len() - 1]), Err(BatchError::Incomplete));
        assert_eq!(split_batches(&[]), Err(BatchError::Incomplete));
    }

    #[test]
    fn several_batches_split_at_their_boundaries() {
        let mut both = encoded_batch(2, 0);
        let second = encoded_batch(4, 0);
        let first_len = both.len();
        both.extend_from_slice(&second);
        let batches = split_batches(&both).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].0, first_len);
        assert_eq!(batches[1].1.records_count, 4);
    }
}
