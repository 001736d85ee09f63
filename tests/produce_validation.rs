//! Hostile record batches against the real broker: each is refused with Kafka's error code for
//! its partition before anything is written, and the partition stays whole and writable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use common::requests::{create_topic, fetch, list_offset, produce};
use common::{batch, compressed_batch, records, Broker, Client};
use kafka_protocol::records::Compression;
use strand::protocol::record_batch::{encode_batch, BatchProducer};

const CORRUPT_MESSAGE: i16 = 2;
const INVALID_TIMESTAMP: i16 = 32;
const INVALID_RECORD: i16 = 87;
const HOUR_MS: i64 = 3_600_000;
const PARTITIONS: i32 = 4;

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// `batch` changed by `edit`, its CRC made right again so that only the edit is wrong.
fn edited(batch: &Bytes, edit: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut bytes = BytesMut::from(&batch[..]);
    edit(&mut bytes);
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes.freeze()
}

/// A batch whose header says `codec` and whose records are bytes no codec can read.
fn compressed_garbage(codec: u8, timestamp: i64) -> Bytes {
    let good = batch(&["v"], timestamp);
    edited(&good, |b| {
        b.truncate(61);
        b.put_slice(&b"certainly not compressed data, whatever the codec".repeat(3));
        let length = i32::try_from(b.len() - 12).unwrap();
        b[8..12].copy_from_slice(&length.to_be_bytes());
        b[22] |= codec;
    })
}

/// Every hostile batch with the code Kafka answers for it.
fn hostile_batches(now: i64) -> Vec<(&'static str, Bytes, i16)> {
    let good = batch(&["a", "b", "c"], now);
    let mut cases = vec![
        ("magic 0", edited(&good, |b| b[16] = 0), INVALID_RECORD),
        ("magic 1", edited(&good, |b| b[16] = 1), INVALID_RECORD),
        ("CRC mismatch", {
            let mut b = BytesMut::from(&good[..]);
            let last = b.len() - 1;
            b[last] ^= 0x55;
            b.freeze()
        }, CORRUPT_MESSAGE),
        ("batch_length below a header", edited(&good, |b| b[8..12].copy_from_slice(&20i32.to_be_bytes())), CORRUPT_MESSAGE),
        ("batch_length past the data", good.slice(..good.len() - 3), INVALID_RECORD),
        ("batch_length short of the data", edited(&good, |b| {
            let length = i32::from_be_bytes(b[8..12].try_into().unwrap()) - 2;
            b[8..12].copy_from_slice(&length.to_be_bytes());
        }), CORRUPT_MESSAGE),
        ("records_count against last_offset_delta", edited(&good, |b| b[57..61].copy_from_slice(&5i32.to_be_bytes())), INVALID_RECORD),
        ("records_count above the records", edited(&good, |b| {
            b[23..27].copy_from_slice(&4i32.to_be_bytes());
            b[57..61].copy_from_slice(&5i32.to_be_bytes());
        }), INVALID_RECORD),
        // The first record's length varint (zig-zag: +2 is one byte more).
        ("record length", edited(&good, |b| b[61] += 2), INVALID_RECORD),
        // The first record's offset delta: length, attributes, timestamp delta 0, then it.
        ("offset delta", edited(&good, |b| b[64] = 4), INVALID_RECORD),
        ("control batch", edited(&good, |b| b[22] |= 1 << 5), INVALID_RECORD),
        ("timestamp far in the future", batch(&["late"], now + 24 * HOUR_MS), INVALID_TIMESTAMP),
        ("timestamp far in the past", batch(&["early"], now - 24 * HOUR_MS), INVALID_TIMESTAMP),
        ("timestamp future in a gzip batch", compressed_batch(&["late"], now + 24 * HOUR_MS, Compression::Gzip), INVALID_TIMESTAMP),
    ];
    for codec in 1..=4 {
        cases.push(("garbage in a compressed batch", compressed_garbage(codec, now), INVALID_RECORD));
    }
    cases
}

#[test]
fn hostile_batches_get_kafkas_codes_and_only_good_records_reach_the_log() {
    let broker = Broker::start(2);
    let mut client = broker.connect();
    let configs = [("message.timestamp.after.max.ms", "3600000"), ("message.timestamp.before.max.ms", "3600000")];
    let created = create_topic(&mut client, "hostile", PARTITIONS, &configs);
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let now = now_ms();
    let mut expected: Vec<Vec<String>> = vec![Vec::new(); PARTITIONS as usize];
    let mut produce_good = |client: &mut Client, partition: i32, value: String, compression: Compression| {
        let log = &mut expected[partition as usize];
        let (code, base_offset) = produce(client, "hostile", partition, compressed_batch(&[&value], now_ms(), compression));
        assert_eq!((code, base_offset), (0, log.len() as i64), "{value}");
        log.push(value);
    };
    let codecs = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
    for (i, (what, hostile, code)) in hostile_batches(now).into_iter().enumerate() {
        let partition = i32::try_from(i).unwrap() % PARTITIONS;
        produce_good(&mut client, partition, format!("before {what}"), codecs[i % codecs.len()]);
        assert_eq!(produce(&mut client, "hostile", partition, hostile).0, code, "{what}");
        produce_good(&mut client, partition, format!("after {what}"), Compression::None);
    }
    for partition in 0..PARTITIONS {
        let data = fetch(&mut client, "hostile", partition, 0, 0);
        assert_eq!(data.error_code, 0);
        let got = records(data.records.unwrap());
        let want: Vec<(i64, String)> = expected[partition as usize].iter().cloned().enumerate().map(|(o, v)| (o as i64, v)).collect();
        assert_eq!(got, want, "partition {partition}");
        assert_eq!(data.high_watermark, want.len() as i64);
    }
}

#[test]
fn a_log_append_time_topic_stamps_batches_with_the_brokers_clock() {
    let mut broker = Broker::start(1);
    let mut client = broker.connect();
    create_topic(&mut client, "stamped", 1, &[("message.timestamp.type", "LogAppendTime")]);
    let before = now_ms();
    // Timestamps a CreateTime window would refuse are overwritten instead.
    assert_eq!(produce(&mut client, "stamped", 0, batch(&["x", "y"], 1)), (0, 0));
    let after = now_ms();
    let stored = fetch(&mut client, "stamped", 0, 0, 0).records.unwrap();
    assert_eq!(stored[22] & (1 << 3), 1 << 3, "the batch is marked LogAppendTime");
    let max_timestamp = i64::from_be_bytes(stored[35..43].try_into().unwrap());
    assert!((before..=after).contains(&max_timestamp), "{before} <= {max_timestamp} <= {after}");
    assert_eq!(records(stored).len(), 2, "and its CRC still verifies");
    // The log indexes the stamped time, not the producer's 1: a lookup by time finds the batch,
    // before and after a restart (the time index on disk).
    assert_eq!(list_offset(&mut client, "stamped", 0, before), (0, 0, max_timestamp));
    broker.restart();
    let mut client = broker.connect();
    assert_eq!(list_offset(&mut client, "stamped", 0, before), (0, 0, max_timestamp));
    // A producer may not claim LogAppendTime itself: INVALID_TIMESTAMP.
    let claimed = edited(&batch(&["z"], before), |b| b[22] |= 1 << 3);
    assert_eq!(produce(&mut client, "stamped", 0, claimed).0, INVALID_TIMESTAMP);
}

#[test]
fn a_compacted_topic_refuses_keyless_records_in_compressed_batches_too() {
    let broker = Broker::start(1);
    let mut client = broker.connect();
    create_topic(&mut client, "keyed", 1, &[("cleanup.policy", "compact")]);
    let keyless = common::producer_batch(&["v"], -1, -1, -1);
    assert_eq!(produce(&mut client, "keyed", 0, keyless).0, INVALID_RECORD);
    let keyless_zstd = encode_batch([(None, Some(Bytes::from_static(b"v")), now_ms())], BatchProducer::NONE, Compression::Zstd).unwrap().freeze();
    assert_eq!(produce(&mut client, "keyed", 0, keyless_zstd).0, INVALID_RECORD);
    assert_eq!(produce(&mut client, "keyed", 0, compressed_batch(&["v"], now_ms(), Compression::Zstd)), (0, 0));
}

#[test]
fn a_compression_bomb_is_refused_with_message_too_large_and_the_partition_stays_writable() {
    const MESSAGE_TOO_LARGE: i16 = 10;
    let broker = Broker::start_with_config(1, Some("message.decompressed.max.bytes = 1048576\n"));
    let mut client = broker.connect();
    create_topic(&mut client, "bombs", 1, &[]);
    let zeros = Bytes::from(vec![0u8; 8 << 20]);
    for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let bomb = encode_batch([(None, Some(zeros.clone()), now_ms())], BatchProducer::NONE, codec).unwrap().freeze();
        assert!(bomb.len() < 1 << 20, "{codec:?}: the bomb itself is within message.max.bytes");
        assert_eq!(produce(&mut client, "bombs", 0, bomb).0, MESSAGE_TOO_LARGE, "{codec:?}");
    }
    assert_eq!(produce(&mut client, "bombs", 0, compressed_batch(&["fine"], now_ms(), Compression::Zstd)), (0, 0));
    assert_eq!(records(fetch(&mut client, "bombs", 0, 0, 0).records.unwrap()), vec![(0, "fine".to_owned())]);
}
