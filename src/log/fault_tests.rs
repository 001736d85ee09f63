//! Tests of the partition log against failing disks, through the io crate's fault seam: a
//! failed fdatasync (or write-through write), a full disk, index writes refused, and relaxed
//! flushing that acknowledges before the fdatasync that then fails.

#![allow(clippy::unwrap_used)] // inside executor closures, which clippy does not see as tests

use strand_io::faults::{self, FaultOp};

use super::tests::{append, files, read_all, reopened_offsets, run, shared, CONFIG};
use super::*;

#[test]
fn a_failed_fdatasync_acknowledges_nothing_and_power_loss_keeps_every_ack() {
    failed_fdatasync_acknowledges_nothing_and_power_loss_keeps_every_ack(false);
}

/// The same with write-through segments, where the fdatasync is the write's own.
#[test]
fn a_failed_write_through_sync_acknowledges_nothing_and_power_loss_keeps_every_ack() {
    failed_fdatasync_acknowledges_nothing_and_power_loss_keeps_every_ack(true);
}

fn failed_fdatasync_acknowledges_nothing_and_power_loss_keeps_every_ack(write_through: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let config = LogConfig { segment_bytes: 1 << 20, write_through, ..CONFIG };
    let p = path.clone();
    let (acked, durable_len) = run(move || async move {
        let log = PartitionLog::open(&p, config, &shared(), None).await.unwrap();
        let mut acked = Vec::new();
        for _ in 0..4 {
            acked.push(append(&log, 2, 0).await.unwrap().last_offset);
        }
        // The next fdatasync fails: the write happened, the ack must not.
        faults::inject(FaultOp::Sync, "t-0", 5, 1);
        let failed = append(&log, 2, 0).await;
        assert!(matches!(failed, Err(LogError::Offline(_))), "{failed:?}");
        assert_eq!(log.offsets().high_watermark, 8, "readers never see the unsynced batch");
        let refused = append(&log, 1, 0).await;
        assert!(matches!(refused, Err(LogError::Offline(_))), "an offline log takes no appends");
        let log_file = files(&p, "log").pop().unwrap();
        (acked, faults::synced_len(&log_file).unwrap())
    });
    // Power loss: the disk keeps only what was fdatasync'ed.
    let log_file = files(&path, "log").pop().unwrap();
    std::fs::OpenOptions::new().write(true).open(&log_file).unwrap().set_len(durable_len).unwrap();
    assert_eq!(reopened_offsets(path, config), (0..8).collect::<Vec<i64>>());
    assert_eq!(acked.last(), Some(&7));
}

#[test]
fn a_full_disk_refuses_appends_until_space_returns_and_loses_nothing_acknowledged() {
    full_disk_refuses_appends_until_space_returns_and_loses_nothing_acknowledged(false);
}

#[test]
fn a_full_disk_refuses_write_through_appends_until_space_returns_and_loses_nothing_acknowledged() {
    full_disk_refuses_appends_until_space_returns_and_loses_nothing_acknowledged(true);
}

fn full_disk_refuses_appends_until_space_returns_and_loses_nothing_acknowledged(write_through: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let p = path.clone();
    let config = LogConfig { segment_bytes: 1 << 20, write_through, ..CONFIG };
    run(move || async move {
        let log = PartitionLog::open(&p, config, &shared(), None).await.unwrap();
        assert_eq!(append(&log, 2, 0).await.unwrap().last_offset, 1);
        // The next three writes of the segment file find the disk full.
        faults::inject(FaultOp::Write, ".log", 28, 3);
        let failed = append(&log, 2, 0).await;
        assert!(matches!(failed, Err(LogError::OutOfSpace(_))), "{failed:?}");
        assert_eq!(log.offsets().high_watermark, 2, "nothing past the last write is visible");
        assert!(matches!(append(&log, 1, 0).await, Err(LogError::OutOfSpace(_))), "appends are refused while full");
        assert_eq!(log.read(0, 1000).await.unwrap().offsets.high_watermark, 2, "reads go on");
        // The writer retries the queued batch until a write succeeds; then appends resume.
        log.wait_for_data_after(2).await;
        assert_eq!(log.offsets().high_watermark, 4, "the queued batch (2..=3) was written first");
        assert_eq!(append(&log, 1, 0).await.unwrap().last_offset, 4);
        log.close().await;
    });
    assert_eq!(reopened_offsets(path, config), (0..5).collect::<Vec<i64>>());
}

/// A full disk that refuses only the index files' writes (the log's space was reserved ahead):
/// rolls go on, the sealed segments keep their indexes in memory, every record is served, and
/// the next start writes the missing index entries.
#[test]
fn index_writes_refused_by_a_full_disk_lose_nothing_and_are_redone_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let p = path.clone();
    run(move || async move {
        let log = PartitionLog::open(&p, CONFIG, &shared(), None).await.unwrap();
        faults::inject(FaultOp::Write, ".index", 28, 1000);
        for i in 0..30 {
            append(&log, 3, i).await.unwrap();
        }
        assert!(files(&p, "log").len() > 3, "1 KiB segments rolled");
        assert_eq!(read_all(&log).await, (0..90).collect::<Vec<i64>>());
        log.close().await;
    });
    assert_eq!(reopened_offsets(path.clone(), CONFIG), (0..90).collect::<Vec<i64>>());
    let indexes = files(&path, "index");
    assert!(indexes.iter().any(|f| std::fs::metadata(f).unwrap().len() > 0), "entries written at the restart");
}

#[test]
fn relaxed_flush_acknowledges_after_the_write_and_syncs_by_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let config = LogConfig { flush_messages: 6, flush_ms: 60_000, ..CONFIG };
    run(move || async move {
        let log = PartitionLog::open(&path, config, &shared(), None).await.unwrap();
        // Every fdatasync fails, yet appends under flush.messages are acknowledged.
        faults::inject(FaultOp::Sync, "t-0", 5, 100);
        assert_eq!(append(&log, 2, 0).await.unwrap().last_offset, 1);
        assert_eq!(append(&log, 2, 0).await.unwrap().last_offset, 3);
        assert_eq!(log.offsets().high_watermark, 4);
        // The sixth message triggers the fdatasync, which fails: the log goes offline.
        let third = append(&log, 2, 0).await;
        assert!(third.is_ok() || matches!(third, Err(LogError::Offline(_))));
        log.wait_for_data_after(i64::MAX - 1).await;
        assert!(matches!(append(&log, 1, 0).await, Err(LogError::Offline(_))));
    });
}
