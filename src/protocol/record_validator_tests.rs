use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
use kafka_protocol::records::Compression;

use super::*;
use crate::protocol::record_batch::tests::{encode_records, test_records};
use crate::protocol::record_batch::verify_batch;

const NOW: i64 = 1_700_000_000_000;

/// Compresses the second argument into the first with one codec.
type Compress = fn(&mut BytesMut, &[u8]);

fn rules() -> RecordRules {
    RecordRules {
        create_time_window: Some(RecordRules::create_time_window(NOW, 60_000, 60_000)),
        require_keys: false,
        decompressed_max_bytes: 1 << 20,
    }
}

fn check(batch: &Bytes, rules: &RecordRules) -> Result<(), RecordError> {
    let header = verify_batch(batch).expect("the test builds batches with valid headers");
    validate_records(batch, &header, rules)
}

/// A batch of `count` records from the kafka-protocol encoder, timestamps `timestamp`..; every
/// odd record has no key, every record a header.
fn encoded(count: usize, timestamp: i64, compression: Compression) -> Bytes {
    let mut records = test_records(count, timestamp);
    for (i, record) in records.iter_mut().enumerate() {
        record.key = record.key.take().filter(|_| i % 2 == 0);
        record.headers = [("h".into(), Some(Bytes::from_static(b"v")))].into_iter().collect();
    }
    encode_records(&records, compression).freeze()
}

fn put_varint(buf: &mut BytesMut, n: i64) {
    let mut raw = ((n << 1) ^ (n >> 63)) as u64;
    while raw >= 0x80 {
        buf.put_u8((raw as u8) | 0x80);
        raw >>= 7;
    }
    buf.put_u8(raw as u8);
}

/// One record v2 with no headers; `length_adjust` is added to its true length.
fn raw_record(offset_delta: i64, timestamp_delta: i64, key: Option<&[u8]>, length_adjust: i64) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_i8(0);
    put_varint(&mut body, timestamp_delta);
    put_varint(&mut body, offset_delta);
    match key {
        Some(key) => {
            put_varint(&mut body, key.len() as i64);
            body.put_slice(key);
        }
        None => put_varint(&mut body, -1),
    }
    put_varint(&mut body, 1);
    body.put_u8(b'v');
    put_varint(&mut body, 0);
    let mut record = BytesMut::new();
    put_varint(&mut record, body.len() as i64 + length_adjust);
    record.put_slice(&body);
    record
}

/// A batch around `records` (already compressed if `codec` says so), with a valid CRC.
fn raw_batch(records: &[u8], count: i32, base_timestamp: i64, codec: i16) -> Bytes {
    let mut batch = BytesMut::new();
    batch.put_i64(0);
    batch.put_i32((BATCH_HEADER_BYTES - 12 + records.len()) as i32);
    batch.put_i32(0);
    batch.put_i8(2);
    batch.put_u32(0);
    batch.put_i16(codec);
    batch.put_i32(count - 1);
    batch.put_i64(base_timestamp);
    batch.put_i64(base_timestamp);
    batch.put_i64(-1);
    batch.put_i16(-1);
    batch.put_i32(-1);
    batch.put_i32(count);
    batch.put_slice(records);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch.freeze()
}

fn records_of(parts: &[BytesMut]) -> BytesMut {
    parts.iter().fold(BytesMut::new(), |mut all, part| {
        all.put_slice(part);
        all
    })
}

#[test]
fn well_formed_batches_pass_in_every_codec() {
    for compression in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        assert_eq!(check(&encoded(20, NOW, compression), &rules()), Ok(()), "{compression:?}");
    }
}

#[test]
fn a_record_length_past_the_batch_or_short_of_its_fields_is_malformed() {
    for adjust in [1, -1, 1000] {
        let records = records_of(&[raw_record(0, 0, Some(b"k"), 0), raw_record(1, 0, Some(b"k"), adjust)]);
        let err = check(&raw_batch(&records, 2, NOW, 0), &rules()).unwrap_err();
        assert!(matches!(err, RecordError::Malformed { index: 1, .. }), "{adjust}: {err}");
    }
}

#[test]
fn fewer_or_more_records_than_the_count_are_malformed() {
    let two = records_of(&[raw_record(0, 0, None, 0), raw_record(1, 0, None, 0)]);
    assert!(matches!(check(&raw_batch(&two, 3, NOW, 0), &rules()), Err(RecordError::Malformed { index: 2, .. })));
    assert!(matches!(check(&raw_batch(&two, 1, NOW, 0), &rules()), Err(RecordError::Malformed { index: 1, .. })));
}

#[test]
fn offset_deltas_must_count_up_from_zero() {
    let records = records_of(&[raw_record(0, 0, None, 0), raw_record(2, 0, None, 0)]);
    let err = check(&raw_batch(&records, 2, NOW, 0), &rules());
    assert_eq!(err, Err(RecordError::OffsetDelta { index: 1, offset_delta: 2 }));
}

#[test]
fn a_varint_that_never_ends_is_malformed() {
    let records = [0xFFu8; 12];
    assert!(matches!(check(&raw_batch(&records, 1, NOW, 0), &rules()), Err(RecordError::Malformed { index: 0, .. })));
}

#[test]
fn a_compacted_topic_refuses_a_record_without_a_key() {
    let compacted = RecordRules { require_keys: true, ..rules() };
    assert_eq!(check(&encoded(3, NOW, Compression::None), &compacted), Err(RecordError::MissingKey { index: 1 }));
    assert_eq!(check(&encoded(3, NOW, Compression::Lz4), &compacted), Err(RecordError::MissingKey { index: 1 }));
}

#[test]
fn create_time_timestamps_outside_the_window_are_refused() {
    let window = rules().create_time_window.unwrap();
    let future = check(&encoded(2, NOW + 60_001, Compression::None), &rules());
    assert_eq!(future, Err(RecordError::Timestamp { index: 0, timestamp: NOW + 60_001, min: window.0, max: window.1 }));
    let past = check(&encoded(2, NOW - 60_001, Compression::Gzip), &rules());
    assert!(matches!(past, Err(RecordError::Timestamp { index: 0, .. })), "{past:?}");
    // The second record's delta carries it out of the window.
    assert!(matches!(check(&encoded(2, NOW + 60_000, Compression::None), &rules()), Err(RecordError::Timestamp { index: 1, .. })));
    // No timestamp (-1) is never out of range, and a LogAppendTime topic checks none.
    assert_eq!(check(&raw_batch(&raw_record(0, 0, None, 0), 1, -1, 0), &rules()), Ok(()));
    let log_append = RecordRules { create_time_window: None, ..rules() };
    assert_eq!(check(&encoded(2, 0, Compression::None), &log_append), Ok(()));
}

#[test]
fn the_default_window_admits_any_timestamp() {
    let open = RecordRules { create_time_window: Some(RecordRules::create_time_window(NOW, i64::MAX, i64::MAX)), ..rules() };
    assert_eq!(open.create_time_window, Some((NOW - i64::MAX, i64::MAX)));
    assert_eq!(check(&encoded(2, 0, Compression::None), &open), Ok(()));
    assert_eq!(check(&encoded(2, i64::MAX / 2, Compression::None), &open), Ok(()));
}

#[test]
fn a_producer_may_not_mark_its_batch_log_append_time_on_a_log_append_time_topic() {
    let mut batch = BytesMut::from(&raw_batch(&raw_record(0, 0, None, 0), 1, NOW, 0)[..]);
    crate::protocol::record_batch::stamp_log_append_time(&mut batch, NOW);
    let log_append = RecordRules { create_time_window: None, ..rules() };
    assert_eq!(check(&batch.freeze(), &log_append), Err(RecordError::LogAppendTimeFromProducer));
}

#[test]
fn garbage_inside_a_compressed_batch_is_refused_in_every_codec() {
    let garbage = b"this is not compressed at all, not in any codec".repeat(4);
    for codec in 1..=4 {
        let err = check(&raw_batch(&garbage, 3, NOW, codec), &rules()).unwrap_err();
        assert!(matches!(err, RecordError::Decompress(_) | RecordError::Malformed { .. }), "codec {codec}: {err}");
    }
    assert_eq!(check(&raw_batch(&garbage, 3, NOW, 5), &rules()), Err(RecordError::UnknownCompression(5)));
}

#[test]
fn malformed_records_inside_a_well_compressed_batch_are_refused() {
    let records = records_of(&[raw_record(0, 0, None, 0), raw_record(1, 0, None, 7)]);
    let compressors: [(i16, Compress); 4] = [
        (1, |out, plain| Gzip::compress(out, |b: &mut BytesMut| { b.put_slice(plain); Ok(()) }).unwrap()),
        (2, |out, plain| Snappy::compress(out, |b: &mut BytesMut| { b.put_slice(plain); Ok(()) }).unwrap()),
        (3, |out, plain| Lz4::compress(out, |b: &mut BytesMut| { b.put_slice(plain); Ok(()) }).unwrap()),
        (4, |out, plain| Zstd::compress(out, |b: &mut BytesMut| { b.put_slice(plain); Ok(()) }).unwrap()),
    ];
    for (codec, compress) in compressors {
        let mut compressed = BytesMut::new();
        compress(&mut compressed, &records);
        let err = check(&raw_batch(&compressed, 2, NOW, codec), &rules()).unwrap_err();
        assert!(matches!(err, RecordError::Malformed { index: 1, .. }), "codec {codec}: {err}");
    }
}

#[test]
fn zigzag_varints_decode_as_kafka_writes_them() {
    for n in [0i64, 1, -1, 63, -64, 64, 300, i64::from(i32::MAX), i64::from(i32::MIN), i64::MAX, i64::MIN] {
        let mut buf = BytesMut::new();
        put_varint(&mut buf, n);
        let mut at = 0;
        assert_eq!(read_varlong(&buf, &mut at), Some(n));
        assert_eq!(at, buf.len());
        let mut at = 0;
        assert_eq!(read_varint(&buf, &mut at), i32::try_from(n).ok().filter(|_| buf.len() <= 5));
    }
}
