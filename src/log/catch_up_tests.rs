//! Tests of catch-up reads (fetches below the tail cache) against real files: readahead, the
//! read size while the broker writes and while it does not, and batches longer than a read.

#![allow(clippy::unwrap_used)] // inside executor closures, which clippy does not see as tests

use std::path::Path;

use super::tests::{append, catch_up_limits, read_all, run, shared, shared_reading, shared_with, CONFIG};
use super::*;
use crate::protocol::record_batch::split_batches;

/// A log at `path` on `shared`, one 1 MiB segment holding `batches` batches of 3 records.
async fn filled_log(path: &Path, shared: &LogShared, batches: i64) -> std::rc::Rc<PartitionLog> {
    let config = LogConfig { segment_bytes: 1 << 20, ..CONFIG };
    let log = PartitionLog::open(path, config, shared, None).await.unwrap();
    for i in 0..batches {
        append(&log, 3, i).await.unwrap();
    }
    log
}

#[test]
fn a_sequential_catch_up_reader_is_served_from_readahead() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    run(move || async move {
        let shared = shared();
        let log = filled_log(&path, &shared, 200).await;
        let before = shared.catch_up.disk_reads();
        // 300-byte fetches: about one batch each, all from the same readahead.
        assert_eq!(read_all(&log).await, (0..600).collect::<Vec<i64>>());
        let reads = shared.catch_up.disk_reads() - before;
        assert!(reads <= 2, "{reads} disk reads for 200 sequential fetches");
    });
}

/// A scheduler reading 16 KiB, or 4 KiB while `writes` say the broker wrote within 2 s (far
/// longer than an append takes even on a loaded machine), with no readahead: each read is the
/// fetch's own.
fn write_aware(writes: &std::sync::Arc<BrokerWrites>) -> CatchUpReads {
    CatchUpReads::new(catch_up_limits(16384, 4096, 0), std::sync::Arc::clone(writes))
        .with_write_activity(std::time::Duration::from_secs(2))
}

#[test]
fn catch_up_reads_are_short_while_the_shard_writes_and_long_once_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    run(move || async move {
        let writes = BrokerWrites::new();
        let shared = shared_with(write_aware(&writes));
        let log = filled_log(&path, &shared, 300).await;
        // Just written: one short read.
        let before = shared.catch_up.disk_reads();
        let busy = log.read(0, 1 << 20).await.unwrap().records;
        assert_eq!(shared.catch_up.disk_reads() - before, 1);
        assert!(!busy.is_empty() && busy.len() <= 4096, "{} bytes", busy.len());
        // No write within the window: one long read.
        writes.forget();
        let idle = log.read(0, 1 << 20).await.unwrap().records;
        assert_eq!(shared.catch_up.disk_reads() - before, 2);
        assert!(idle.len() > 3 * 4096 && idle.len() <= 16384, "{} bytes", idle.len());
        assert_eq!(&idle[..busy.len()], &busy[..]);
    });
}

#[test]
fn catch_up_reads_are_short_while_another_shard_of_the_broker_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    run(move || async move {
        let writes = BrokerWrites::new();
        let shared = shared_with(write_aware(&writes));
        let log = filled_log(&path, &shared, 300).await;
        // This shard's log is quiet: one long read.
        writes.forget();
        let idle = log.read(0, 1 << 20).await.unwrap().records;
        assert!(idle.len() > 3 * 4096, "{} bytes", idle.len());
        // Another shard of the same broker writes (its own scheduler): reads here are short.
        write_aware(&writes).note_write();
        let before = shared.catch_up.disk_reads();
        let busy = log.read(0, 1 << 20).await.unwrap().records;
        assert_eq!(shared.catch_up.disk_reads() - before, 1);
        assert!(!busy.is_empty() && busy.len() <= 4096, "{} bytes", busy.len());
        // Another broker's writes (another process, another BrokerWrites) do not count.
        writes.forget();
        write_aware(&BrokerWrites::new()).note_write();
        assert!(log.read(0, 1 << 20).await.unwrap().records.len() > 3 * 4096);
    });
}

#[test]
fn a_fetch_far_behind_takes_one_catch_up_read_and_a_larger_batch_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    run(move || async move {
        let shared = shared_reading(4096);
        let log = filled_log(&path, &shared, 100).await;
        let big = append(&log, 400, 100).await.unwrap();
        append(&log, 3, 101).await.unwrap();

        // A fetch for 1 MiB from the start gets whole batches from one 4 KiB read.
        let before = shared.catch_up.disk_reads();
        let first = log.read(0, 1 << 20).await.unwrap().records;
        assert_eq!(shared.catch_up.disk_reads() - before, 1);
        assert!(!first.is_empty() && first.len() <= 4096, "{} bytes", first.len());
        assert_eq!(split_batches(&first).unwrap()[0].1.base_offset, 0);

        // A batch larger than one read is still served whole, on its own, read in reads no
        // longer than the others.
        let (reads, read_bytes) = (shared.catch_up.disk_reads(), shared.catch_up.bytes_read());
        let whole = log.read(big.base_offset, 1 << 20).await.unwrap().records;
        let batches = split_batches(&whole).unwrap();
        assert!(whole.len() > 4096, "{} bytes", whole.len());
        let (reads, read_bytes) = (shared.catch_up.disk_reads() - reads, shared.catch_up.bytes_read() - read_bytes);
        assert!(reads >= 2 && read_bytes <= reads * 4096, "{reads} reads of {read_bytes} bytes");
        assert_eq!((batches.len(), batches[0].1.base_offset, batches[0].1.next_offset()), (1, big.base_offset, big.last_offset + 1));

        // Fetching on from each answer's end reads every offset once, in order.
        let (offsets, _) = fetch_to_end(&log, 0, 1 << 20).await;
        assert_eq!(offsets, (0..big.last_offset + 4).collect::<Vec<i64>>());
    });
}

#[test]
fn a_read_within_a_limit_serves_no_longer_first_batch_and_does_not_read_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    run(move || async move {
        // No readahead: every disk read below is the fetch's own.
        let shared = shared_with(CatchUpReads::new(catch_up_limits(4096, 4096, 0), BrokerWrites::new()));
        let log = filled_log(&path, &shared, 100).await;
        let big = append(&log, 400, 100).await.unwrap();
        append(&log, 3, 101).await.unwrap();
        let whole = log.read(big.base_offset, 1000).await.unwrap().records;
        assert!(whole.len() > 4096, "at least one batch: the long one whole, {} bytes", whole.len());

        // Within 1000 bytes that batch is not served, and not read past the fetch's window.
        let before = shared.catch_up.bytes_read();
        let within = log.read_within(big.base_offset, 1000).await.unwrap();
        assert!(within.records.is_empty());
        assert_eq!(within.offsets.high_watermark, big.last_offset + 4);
        let read = usize::try_from(shared.catch_up.bytes_read() - before).unwrap();
        assert!(read < whole.len(), "{read} bytes read for a batch of {}", whole.len());

        // Batches that fit are served as `read` serves them; 0 bytes reads nothing at all.
        assert_eq!(log.read_within(0, 1000).await.unwrap().records, log.read(0, 1000).await.unwrap().records);
        let before = shared.catch_up.disk_reads();
        let none = log.read_within(0, 0).await.unwrap();
        assert!(none.records.is_empty());
        assert_eq!((shared.catch_up.disk_reads(), none.offsets.high_watermark), (before, big.last_offset + 4));
    });
}

/// Fetches `log` from `offset` to its high watermark, `max_bytes` at a time: the offsets
/// served, and the number of fetches.
async fn fetch_to_end(log: &PartitionLog, mut offset: i64, max_bytes: usize) -> (Vec<i64>, u64) {
    let (mut offsets, mut fetches) = (Vec::new(), 0);
    while offset < log.offsets().high_watermark {
        let records = log.read(offset, max_bytes).await.unwrap().records;
        fetches += 1;
        let batches = split_batches(&records).unwrap();
        offsets.extend(batches.iter().flat_map(|(_, b)| b.base_offset..b.next_offset()));
        offset = batches.last().unwrap().1.next_offset();
    }
    (offsets, fetches)
}

#[test]
fn a_catch_up_consumers_next_fetch_is_read_ahead_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    run(move || async move {
        let shared = shared_reading(4096);
        let log = filled_log(&path, &shared, 300).await;
        let (reads, hits) = (shared.catch_up.disk_reads(), shared.catch_up.readahead_hits());
        // 1 MiB fetches: each gets one read's worth, the first from its own read, every later
        // one from the read made (or still in flight) when the one before was served.
        let (offsets, fetches) = fetch_to_end(&log, 0, 1 << 20).await;
        assert_eq!(offsets, (0..900).collect::<Vec<i64>>());
        assert!(fetches >= 5, "{fetches} fetches");
        assert_eq!(shared.catch_up.readahead_hits() - hits, fetches - 1);
        assert_eq!(shared.catch_up.disk_reads() - reads, fetches);
    });
}

#[test]
fn reads_ahead_are_bounded_by_the_readahead_memory() {
    let dir = tempfile::tempdir().unwrap();
    run(move || async move {
        // Room for two 4 KiB reads ahead.
        let shared = shared_with(CatchUpReads::new(catch_up_limits(4096, 4096, 8192), BrokerWrites::new()));
        let mut logs = Vec::new();
        for name in ["t-0", "t-1", "t-2"] {
            logs.push(filled_log(&dir.path().join(name), &shared, 100).await);
        }
        // One fetch from each: the first two read ahead, the third finds no room.
        let mut next = Vec::new();
        for log in &logs {
            let records = log.read(0, 1 << 20).await.unwrap().records;
            next.push(split_batches(&records).unwrap().last().unwrap().1.next_offset());
        }
        // Each log's second fetch: two from what was read ahead, the third from its own read.
        let hits = shared.catch_up.readahead_hits();
        for (log, offset) in logs.iter().zip(&next) {
            let records = log.read(*offset, 1 << 20).await.unwrap().records;
            assert_eq!(split_batches(&records).unwrap()[0].1.base_offset, *offset);
        }
        assert_eq!(shared.catch_up.readahead_hits() - hits, 2);
    });
}

/// A file of `len` bytes of `fill` at `path` (replacing any there, as compaction does), and a
/// reader of it.
async fn file_of(path: &Path, fill: u8, len: usize) -> strand_io::FileReader {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, vec![fill; len]).unwrap();
    std::fs::rename(&staged, path).unwrap();
    strand_io::FileReader::open(path, strand_config::IoMode::Buffered).await.unwrap()
}

#[test]
fn bytes_read_from_a_file_since_replaced_at_its_path_are_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("00000000000000000000.log");
    run(move || async move {
        let reads = std::rc::Rc::new(CatchUpReads::new(catch_up_limits(4096, 4096, 1 << 20), BrokerWrites::new()));
        let old = file_of(&path, 1, 16384).await;
        // A short read keeps the rest of its 4 KiB, and a read ahead of the next 4 KiB starts.
        assert_eq!(reads.read(&old, 0, 100, 16384).await.unwrap(), vec![1; 100]);
        let _reading = reads.read_ahead(&old, 4096, 4096, 16384).unwrap();
        // The file is replaced at the same path: reads through the new reader get its bytes.
        let new = file_of(&path, 2, 16384).await;
        assert_eq!(reads.read(&new, 0, 100, 16384).await.unwrap(), vec![2; 100]);
        assert_eq!(reads.read(&new, 4096, 4096, 16384).await.unwrap(), vec![2; 4096]);
        assert_eq!(reads.readahead_hits(), 0);
    });
}

#[test]
fn consumers_at_different_positions_of_one_file_each_have_their_read_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("00000000000000000000.log");
    run(move || async move {
        let reads = std::rc::Rc::new(CatchUpReads::new(catch_up_limits(4096, 4096, 1 << 20), BrokerWrites::new()));
        let file = file_of(&path, 7, 16384).await;
        let _first = reads.read_ahead(&file, 0, 4096, 16384).unwrap();
        let _second = reads.read_ahead(&file, 8192, 4096, 16384).unwrap();
        assert_eq!(reads.read(&file, 0, 4096, 16384).await.unwrap(), vec![7; 4096]);
        assert_eq!(reads.read(&file, 8192, 4096, 16384).await.unwrap(), vec![7; 4096]);
        assert_eq!((reads.readahead_hits(), reads.disk_reads()), (2, 2));
    });
}

#[test]
fn an_unused_read_ahead_gives_way_once_it_is_old_and_an_invalidated_one_stops_reading() {
    let dir = tempfile::tempdir().unwrap();
    let (path_a, path_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    run(move || async move {
        // Room for one 4 KiB read ahead.
        let reads = std::rc::Rc::new(CatchUpReads::new(catch_up_limits(4096, 4096, 4096), BrokerWrites::new()));
        let (a, b) = (file_of(&path_a, 1, 16384).await, file_of(&path_b, 2, 16384).await);
        reads.read_ahead(&a, 0, 4096, 16384).unwrap().await;
        // a's read ahead is new: b's finds no room, and b's fetch reads for itself.
        assert!(reads.read_ahead(&b, 0, 4096, 16384).is_none());
        assert_eq!(reads.read(&b, 0, 4096, 16384).await.unwrap(), vec![2; 4096]);
        assert_eq!((reads.readahead_hits(), reads.disk_reads()), (0, 2));
        // A second later a's read ahead, still unused, makes room for b's.
        strand_shards::task::sleep(std::time::Duration::from_millis(1100)).await;
        let _reading = reads.read_ahead(&b, 4096, 4096, 16384).unwrap();
        assert_eq!(reads.read(&b, 4096, 4096, 16384).await.unwrap(), vec![2; 4096]);
        assert_eq!((reads.readahead_hits(), reads.disk_reads()), (1, 3));
        // A read ahead forgotten before it starts reads nothing.
        let forgotten = reads.read_ahead(&a, 8192, 4096, 16384).unwrap();
        reads.invalidate(&path_a);
        forgotten.await;
        assert_eq!(reads.disk_reads(), 3);
    });
}
