//! Idempotent producers against a real partition log: retries answered with their offsets,
//! gaps and fenced epochs refused, state kept across clean and crash restarts.

#![allow(clippy::unwrap_used)] // inside executor closures, which clippy does not see as tests

use super::tests::{run, shared, CONFIG};
use super::*;
use crate::protocol::record_batch::{encode_batch, split_batches, BatchProducer};
use kafka_protocol::records::Compression;

/// A batch of `count` records from producer `producer_id` starting at `base_sequence`.
fn producer_batch(producer_id: i64, epoch: i16, base_sequence: i32, count: usize) -> bytes::Bytes {
    let records = (base_sequence..).take(count).map(|seq| (None, Some(bytes::Bytes::from(format!("s{seq}"))), 1));
    let producer = BatchProducer { id: producer_id, epoch, base_sequence };
    encode_batch(records, producer, Compression::None).unwrap().freeze()
}

async fn produce(log: &PartitionLog, records: bytes::Bytes) -> Result<AppendInfo, LogError> {
    let batches = split_batches(&records).unwrap();
    let info = log.append_as_leader(records, &batches, 0, None)?;
    log.wait_committed(info.last_offset).await?;
    Ok(info)
}

fn retried_batches_are_answered_with_their_offsets_after_a_restart(clean: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let p = path.clone();
    run(move || async move {
        let log = PartitionLog::open(&p, CONFIG, &shared(), None).await.unwrap();
        // Enough batches to roll segments (a snapshot at each roll), then a few more.
        for i in 0..30 {
            assert_eq!(produce(&log, producer_batch(42, 0, i * 2, 2)).await.unwrap().base_offset, i64::from(i) * 2);
        }
        log.close().await;
    });
    if !clean {
        // A crash before any snapshot: the state is rebuilt from the log alone.
        std::fs::remove_file(path.join("clean-shutdown")).unwrap();
        std::fs::remove_file(path.join("producer-state")).unwrap();
    }
    run(move || async move {
        let log = PartitionLog::open(&path, CONFIG, &shared(), None).await.unwrap();
        let retried = produce(&log, producer_batch(42, 0, 58, 2)).await.unwrap();
        assert_eq!((retried.base_offset, retried.last_offset), (58, 59), "the last batch, again");
        assert_eq!(log.offsets().high_watermark, 60, "nothing was written twice");
        let gap = produce(&log, producer_batch(42, 0, 70, 1)).await;
        assert!(matches!(gap, Err(LogError::Sequence(SequenceError::OutOfOrder { .. }))), "{gap:?}");
        let fenced = produce(&log, producer_batch(42, -1, 60, 1)).await;
        assert!(matches!(fenced, Err(LogError::Sequence(SequenceError::InvalidProducerEpoch { .. }))), "{fenced:?}");
        assert_eq!(produce(&log, producer_batch(42, 0, 60, 1)).await.unwrap().base_offset, 60);
        let summary = ProducerSummary { producer_id: 42, epoch: 0, last_sequence: 60, last_timestamp: 1 };
        assert_eq!(log.producers(), vec![summary]);
        log.close().await;
    });
}

#[test]
fn retried_batches_are_answered_with_their_offsets_after_a_clean_restart() {
    retried_batches_are_answered_with_their_offsets_after_a_restart(true);
}

#[test]
fn retried_batches_are_answered_with_their_offsets_after_a_crash() {
    retried_batches_are_answered_with_their_offsets_after_a_restart(false);
}
