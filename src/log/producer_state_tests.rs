//! Idempotent producers against a real partition log: retries answered with their offsets,
//! gaps and fenced epochs refused, state kept across clean and crash restarts.

#![allow(clippy::unwrap_used)] // inside executor closures, which clippy does not see as tests

use super::tests::{run, shared, CONFIG};
use super::*;
use crate::protocol::record_batch::split_batches;

/// A batch of `count` records from producer `producer_id` starting at `base_sequence`.
fn producer_batch(producer_id: i64, epoch: i16, base_sequence: i32, count: usize) -> bytes::Bytes {
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: base_sequence + i as i32,
            timestamp: 1,
            key: None,
            value: Some(bytes::Bytes::from(format!("s{}", base_sequence + i as i32))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).unwrap();
    buf.freeze()
}

async fn produce(log: &PartitionLog, records: bytes::Bytes) -> Result<AppendInfo, LogError> {
    let batches = split_batches(&records).unwrap();
    let info = log.append_as_leader(records, &batches, 0)?;
    log.wait_committed(info.last_offset).await?;
    Ok(info)
}

fn retried_batches_are_answered_with_their_offsets_after_a_restart(clean: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let p = path.clone();
    run(move || async move {
        let log = PartitionLog::open(&p, CONFIG, &shared()).await.unwrap();
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
        let log = PartitionLog::open(&path, CONFIG, &shared()).await.unwrap();
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
