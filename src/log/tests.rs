//! Tests of the partition log against real files: appends, rolls, recovery from damaged
//! tails and indexes, retention; and the helpers the other log tests share. Failing disks and
//! power loss are in fault_tests.rs.

#![allow(clippy::unwrap_used)] // inside executor closures, which clippy does not see as tests

use std::path::{Path, PathBuf};

use strand_config::IoMode;
use strand_io::faults;
use strand_io::fs;

use super::*;
use crate::protocol::record_batch::split_batches;
use crate::protocol::record_batch::tests::encoded_batch;

pub(super) const CONFIG: LogConfig = LogConfig {
    segment_bytes: 1024,
    segment_ms: u64::MAX,
    index_interval_bytes: 256,
    io_mode: IoMode::Direct,
    preallocate_bytes: 16 << 10,
    flush_messages: 1,
    flush_ms: u64::MAX,
    write_through: false,
    syncs_max: 1,
};

/// A shard's shared log resources with no tail cache, so reads exercise the disk path.
pub(super) fn shared() -> LogShared {
    shared_reading(1 << 20)
}

/// [`shared`] with catch-up reads of `chunk_bytes`.
pub(super) fn shared_reading(chunk_bytes: usize) -> LogShared {
    shared_with(CatchUpReads::new(catch_up_limits(chunk_bytes, chunk_bytes, 4 << 20), BrokerWrites::new()))
}

/// [`shared`] with `catch_up` as its catch-up read scheduler.
pub(super) fn shared_with(catch_up: CatchUpReads) -> LogShared {
    LogShared {
        tail_cache: TailCache::new(0),
        catch_up: std::rc::Rc::new(catch_up),
        journal: std::rc::Rc::new(Journal::new(&std::env::temp_dir(), 0)),
    }
}

/// One catch-up read at a time, with no rate limit.
pub(super) fn catch_up_limits(read_bytes: usize, busy_read_bytes: usize, readahead_bytes: usize) -> CatchUpLimits {
    CatchUpLimits { reads_max: 1, read_bytes, busy_read_bytes, bytes_per_second: 0, readahead_bytes }
}

pub(super) fn run<T: Send + 'static, Fut: std::future::Future<Output = T> + 'static>(f: impl FnOnce() -> Fut + Send + 'static) -> T {
    strand_shards::run_one(256 << 10, move || async move {
        let probe_dir = std::env::temp_dir();
        let name = format!("log-test-{:?}", std::thread::current().id());
        fs::probe_device(&probe_dir, &name).await.unwrap();
        faults::clear();
        f().await
    })
}

pub(super) async fn append(log: &PartitionLog, count: usize, timestamp: i64) -> Result<AppendInfo, LogError> {
    let records = encoded_batch(count, timestamp).freeze();
    let batches = split_batches(&records).unwrap();
    let info = log.append_as_leader(records, &batches, 0, None)?;
    log.wait_committed(info.last_offset).await?;
    Ok(info)
}

pub(super) async fn read_all(log: &PartitionLog) -> Vec<i64> {
    let mut offsets = Vec::new();
    let mut next = log.offsets().log_start_offset;
    while next < log.offsets().high_watermark {
        let mut set = log.read(next, 300).await.unwrap().records;
        while !set.is_empty() {
            let batch = kafka_protocol::records::RecordBatchDecoder::decode(&mut set).unwrap();
            offsets.extend(batch.records.iter().map(|r| r.offset).filter(|o| *o >= next));
        }
        next = *offsets.last().unwrap() + 1;
    }
    offsets
}

/// Opens the log at `path` (recovering it), reads every offset it serves, and closes it.
pub(super) fn reopened_offsets(path: PathBuf, config: LogConfig) -> Vec<i64> {
    run(move || async move {
        let log = PartitionLog::open(&path, config, &shared(), None).await.unwrap();
        let offsets = read_all(&log).await;
        log.close().await;
        offsets
    })
}

pub(super) fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

fn appends_roll_segments_and_read_back_in_order_after_reopen(io_mode: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let config = LogConfig { io_mode, ..CONFIG };
    let offsets = run(move || async move {
        let log = PartitionLog::open(&path, config, &shared(), None).await.unwrap();
        for i in 0..20 {
            assert_eq!(append(&log, 3, i * 10).await.unwrap().base_offset, i * 3);
        }
        log.close().await;
        assert!(path.join("clean-shutdown").exists());
        let log = PartitionLog::open(&path, config, &shared(), None).await.unwrap();
        assert!(!path.join("clean-shutdown").exists(), "the marker is consumed on open");
        assert_eq!(log.offsets().high_watermark, 60);
        assert_eq!(append(&log, 1, 0).await.unwrap().base_offset, 60);
        let offsets = read_all(&log).await;
        assert_eq!(log.offset_for_timestamp(95).await.unwrap(), Some((30, 100)));
        log.close().await;
        offsets
    });
    assert_eq!(offsets, (0..61).collect::<Vec<i64>>());
    let logs = files(&dir.path().join("t-0"), "log");
    assert!(logs.len() >= 3, "segment.bytes=1024 rolls: {logs:?}");
    assert_eq!(files(&dir.path().join("t-0"), "index").len(), logs.len());
}

#[test]
fn direct_appends_roll_segments_and_read_back_in_order_after_reopen() {
    appends_roll_segments_and_read_back_in_order_after_reopen(IoMode::Direct);
}

#[test]
fn buffered_appends_roll_segments_and_read_back_in_order_after_reopen() {
    appends_roll_segments_and_read_back_in_order_after_reopen(IoMode::Buffered);
}

/// Writes 5 appends of 2 records (one batch each) with no clean close, damages the last
/// segment, reopens, and returns the recovered offsets.
fn recover_after(damage: impl FnOnce(&Path) + Send + 'static) -> Vec<i64> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let config = LogConfig { segment_bytes: 1 << 20, ..CONFIG };
    let p = path.clone();
    run(move || async move {
        let log = PartitionLog::open(&p, config, &shared(), None).await.unwrap();
        for _ in 0..5 {
            append(&log, 2, 0).await.unwrap();
        }
        log.close().await;
    });
    // Play an unclean stop: no marker, and the file may still have preallocated space.
    std::fs::remove_file(path.join("clean-shutdown")).unwrap();
    damage(&files(&path, "log").pop().unwrap());
    run(move || async move {
        let log = PartitionLog::open(&path, config, &shared(), None).await.unwrap();
        let offsets = read_all(&log).await;
        // The log takes appends right after what survived.
        let next = append(&log, 1, 0).await.unwrap().base_offset;
        assert_eq!(next, offsets.last().map_or(0, |o| o + 1));
        log.close().await;
        offsets
    })
}

#[test]
fn a_torn_tail_is_truncated_on_recovery() {
    let offsets = recover_after(|file| {
        let len = std::fs::metadata(file).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(file).unwrap().set_len(len - 10).unwrap();
    });
    // The last batch (offsets 8 and 9) lost its end.
    assert_eq!(offsets, (0..8).collect::<Vec<i64>>());
}

#[test]
fn a_zeroed_tail_page_is_truncated_on_recovery() {
    let offsets = recover_after(|file| {
        let len = std::fs::metadata(file).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(file).unwrap().set_len(len + 4096).unwrap();
    });
    assert_eq!(offsets, (0..10).collect::<Vec<i64>>());
}

#[test]
fn a_corrupt_byte_in_the_unverified_tail_ends_the_log_before_its_batch() {
    let offsets = recover_after(|file| {
        let mut bytes = std::fs::read(file).unwrap();
        let batch_len = bytes.len() / 5;
        bytes[4 * batch_len + 40] ^= 0xFF;
        std::fs::write(file, bytes).unwrap();
    });
    assert_eq!(offsets, (0..8).collect::<Vec<i64>>());
}

#[test]
fn a_corrupt_byte_in_indexed_data_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let config = LogConfig { segment_bytes: 1 << 20, ..CONFIG };
    let p = path.clone();
    run(move || async move {
        let log = PartitionLog::open(&p, config, &shared(), None).await.unwrap();
        for _ in 0..5 {
            append(&log, 2, 0).await.unwrap();
        }
        log.close().await;
    });
    // Bit rot in the first batch, which recovery trusts (an index entry follows it).
    let file = files(&path, "log").pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[40] ^= 0xFF;
    std::fs::write(&file, bytes).unwrap();
    run(move || async move {
        let log = PartitionLog::open(&path, config, &shared(), None).await.unwrap();
        let read = log.read(0, 1 << 20).await;
        assert!(matches!(read, Err(LogError::Corrupt { .. })), "{read:?}");
        // The batches after it are intact and served.
        let mut set = log.read(2, 1 << 20).await.unwrap().records;
        let batch = kafka_protocol::records::RecordBatchDecoder::decode(&mut set).unwrap();
        assert_eq!(batch.records[0].offset, 2);
    });
}

#[test]
fn a_missing_index_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let p = path.clone();
    run(move || async move {
        let log = PartitionLog::open(&p, CONFIG, &shared(), None).await.unwrap();
        for i in 0..30 {
            append(&log, 3, i).await.unwrap();
        }
        log.close().await;
    });
    let indexes = files(&path, "index");
    let lengths: Vec<u64> = indexes.iter().map(|f| std::fs::metadata(f).unwrap().len()).collect();
    assert!(lengths.iter().any(|l| *l > 0), "segments of 1 KiB with entries every 256 B are indexed");
    for index in &indexes {
        std::fs::remove_file(index).unwrap();
    }
    let offsets = reopened_offsets(path.clone(), CONFIG);
    assert_eq!(offsets, (0..90).collect::<Vec<i64>>());
    let rebuilt: Vec<u64> = indexes.iter().map(|f| std::fs::metadata(f).unwrap().len()).collect();
    assert_eq!(rebuilt, lengths, "rebuilt indexes match the originals");
}

/// The active segment's index entries reach its index file only once
/// `INDEX_PERSIST_LOG_BYTES` of log wait for them, not after every fdatasync; a crash before
/// that loses nothing: recovery reads the log past the last entry persisted and indexes it.
#[test]
fn active_index_entries_are_persisted_in_steps_and_a_crash_between_them_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let config = LogConfig { segment_bytes: 64 << 20, ..CONFIG };
    let index_len = |dir: &Path| std::fs::metadata(files(dir, "index").pop().unwrap()).unwrap().len();
    let log_len = |dir: &Path| std::fs::metadata(files(dir, "log").pop().unwrap()).unwrap().len();
    let p = path.clone();
    let end = run(move || async move {
        let log = PartitionLog::open(&p, config, &shared(), None).await.unwrap();
        // Batches of 10,000 small records, about 300 KiB: each gets index entries in memory.
        append(&log, 10_000, 0).await.unwrap();
        assert_eq!(index_len(&p), 0, "one batch: its entries wait in memory");
        // A page past the step: the file's size is rounded up to whole pages.
        while log_len(&p) < log_writer::INDEX_PERSIST_LOG_BYTES + 4096 {
            append(&log, 10_000, 0).await.unwrap();
        }
        // That round wrote the entries after its ack; the next round starts after them.
        append(&log, 10_000, 0).await.unwrap();
        let persisted = index_len(&p);
        assert!(persisted > 0, "past the step the entries are written");
        let last = append(&log, 10_000, 0).await.unwrap().last_offset;
        assert_eq!(index_len(&p), persisted, "the entries after the step wait for the next one");
        // A crash: the executor stops with the log open, no clean-shutdown marker.
        last + 1
    });
    assert!(!path.join("clean-shutdown").exists());
    let (offsets, next) = run(move || async move {
        let log = PartitionLog::open(&path, config, &shared(), None).await.unwrap();
        let offsets = read_all(&log).await;
        let next = append(&log, 1, 0).await.unwrap().base_offset;
        log.close().await;
        (offsets, next)
    });
    assert_eq!(offsets, (0..end).collect::<Vec<i64>>(), "every acknowledged record is read back");
    assert_eq!(next, end, "appends continue right after them");
}

#[test]
fn retention_by_size_deletes_the_oldest_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let (start, offsets, segments) = run(move || async move {
        let log = PartitionLog::open(&path, CONFIG, &shared(), None).await.unwrap();
        for i in 0..40 {
            append(&log, 3, i).await.unwrap();
        }
        let before = files(&path, "log").len();
        let deleted = log.apply_retention(RetentionLimits { retention_ms: -1, retention_bytes: 2048 }).await.unwrap();
        assert!(deleted > 0 && deleted < before, "{deleted} of {before}");
        assert_eq!(files(&path, "log").len(), before - deleted);
        assert!(log.size_bytes() <= 2048 + 1024, "the log is back near retention.bytes");
        let start = log.offsets().log_start_offset;
        let offsets = read_all(&log).await;
        let below = log.read(start - 1, 1000).await;
        assert!(matches!(below, Err(LogError::OffsetOutOfRange { .. })));
        log.close().await;
        (start, offsets, files(&path, "log").len())
    });
    assert!(start > 0);
    assert_eq!(offsets, (start..120).collect::<Vec<i64>>());
    assert!(segments >= 2);
}

#[test]
fn delete_records_moves_the_log_start_and_it_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let p = path.clone();
    run(move || async move {
        let log = PartitionLog::open(&p, CONFIG, &shared(), None).await.unwrap();
        for i in 0..40 {
            append(&log, 3, i).await.unwrap();
        }
        assert_eq!(log.delete_records_before(50).await.unwrap(), 50);
        assert!(matches!(log.read(49, 100).await, Err(LogError::OffsetOutOfRange { .. })));
        assert!(log.delete_records_before(1000).await.is_err(), "past the high watermark");
        log.close().await;
    });
    let offsets = run(move || async move {
        let log = PartitionLog::open(&path, CONFIG, &shared(), None).await.unwrap();
        assert_eq!(log.offsets().log_start_offset, 50);
        read_all(&log).await
    });
    assert_eq!(offsets, (50..120).collect::<Vec<i64>>());
}
