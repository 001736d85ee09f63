//! Compaction of a partition log against real files: newest record per key, offsets unchanged,
//! tombstones, recovery of a cleaned log.

#![allow(clippy::unwrap_used)] // inside executor closures, which clippy does not see as tests

use super::tests::{append, run, shared, CONFIG};
use super::*;
use crate::protocol::record_batch::{encode_batch, split_batches, BatchProducer};
use kafka_protocol::records::Compression;

/// One batch of (key, value) records; a None value is a tombstone.
fn keyed_batch(records: &[(&str, Option<String>)], timestamp: i64) -> bytes::Bytes {
    let records = records.iter().map(|(key, value)| {
        (Some(bytes::Bytes::copy_from_slice(key.as_bytes())), value.clone().map(bytes::Bytes::from), timestamp)
    });
    encode_batch(records, BatchProducer::NONE, Compression::None).unwrap().freeze()
}

/// Every record of the log: (offset, key, value).
async fn read_records(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut next = log.offsets().log_start_offset;
    while next < log.offsets().high_watermark {
        let mut set = log.read(next, 1 << 20).await.unwrap().records;
        while !set.is_empty() {
            let batch = kafka_protocol::records::RecordBatchDecoder::decode(&mut set).unwrap();
            for r in batch.records.iter().filter(|r| r.offset >= next) {
                let text = |b: &bytes::Bytes| String::from_utf8(b.to_vec()).unwrap();
                out.push((r.offset, text(r.key.as_ref().unwrap()), r.value.as_ref().map(text)));
            }
        }
        next = out.last().map_or(next, |r| r.0 + 1);
    }
    out
}

#[test]
fn compaction_keeps_the_newest_record_per_key_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    run(move || async move {
        let log = PartitionLog::open(&path, CONFIG, &shared(), None).await.unwrap();
        // 60 records over 3 keys, each value naming its own offset; then k0 is deleted.
        for i in 0..60i64 {
            let value = format!("v{i}");
            let records = keyed_batch(&[(&format!("k{}", i % 3), Some(value))], 1_000);
            let batches = split_batches(&records).unwrap();
            let info = log.append_as_leader(records, &batches, 0, None).unwrap();
            log.wait_committed(info.last_offset).await.unwrap();
        }
        let tombstone = keyed_batch(&[("k0", None)], 1_000);
        let batches = split_batches(&tombstone).unwrap();
        let info = log.append_as_leader(tombstone, &batches, 0, None).unwrap();
        assert_eq!(info.base_offset, 60);
        // Roll past the tombstone so it is in a sealed segment.
        for i in 61..80i64 {
            let records = keyed_batch(&[("k9", Some(format!("v{i}")))], 1_000);
            let batches = split_batches(&records).unwrap();
            let info = log.append_as_leader(records, &batches, 0, None).unwrap();
            log.wait_committed(info.last_offset).await.unwrap();
        }
        let before = read_records(&log).await;
        let high_watermark = log.offsets().high_watermark;
        let stats = log.compact(i64::MAX).await.unwrap();
        assert!(stats.segments_rewritten > 0 && stats.records_after < stats.records_before, "{stats:?}");
        let after = read_records(&log).await;
        assert_eq!(log.offsets().high_watermark, high_watermark, "offsets never change");
        // Every record kept is the same record at the same offset, and offsets still grow.
        for record in &after {
            assert!(before.contains(record), "{record:?} was not in the log");
        }
        assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
        // k1 and k2 keep only their newest value among the sealed segments: one each.
        let sealed_end = after.iter().map(|r| r.0).max().unwrap();
        for key in ["k1", "k2"] {
            let kept: Vec<_> = after.iter().filter(|r| r.1 == key).collect();
            assert_eq!(kept.len(), 1, "{key}: {kept:?}");
            assert!(kept[0].0 <= sealed_end);
        }
        // The tombstone is within delete.retention.ms (here forever), so k0 is only its tombstone.
        let k0: Vec<_> = after.iter().filter(|r| r.1 == "k0").collect();
        assert_eq!(k0, vec![&(60, "k0".to_owned(), None)]);
        // With delete.retention.ms = 0 the old tombstone goes too.
        log.compact(0).await.unwrap();
        let last = read_records(&log).await;
        assert!(last.iter().all(|r| r.1 != "k0"), "{last:?}");
        log.close().await;
        // The cleaned log recovers as it is.
        let log = PartitionLog::open(&path, CONFIG, &shared(), None).await.unwrap();
        assert_eq!(read_records(&log).await, last);
        assert_eq!(append(&log, 1, 0).await.unwrap().base_offset, high_watermark);
    });
}
