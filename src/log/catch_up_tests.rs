//! Tests of catch-up reads (fetches below the tail cache) against real files: readahead, the
//! read size while the shard writes and while it does not, and batches longer than a read.

#![allow(clippy::unwrap_used)] // inside executor closures, which clippy does not see as tests

use std::path::Path;

use super::tests::{append, read_all, run, shared, shared_reading, CONFIG};
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

#[test]
fn catch_up_reads_are_short_while_the_shard_writes_and_long_once_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    run(move || async move {
        // Writing counts for 2 s, far longer than an append takes even on a loaded machine.
        let activity = std::time::Duration::from_secs(2);
        let catch_up = CatchUpReads::new(1, 16384, 4096, 0).with_write_activity(activity);
        let shared = LogShared { catch_up: std::rc::Rc::new(catch_up), ..shared() };
        let log = filled_log(&path, &shared, 300).await;
        // Just written: one short read.
        let before = shared.catch_up.disk_reads();
        let busy = log.read(0, 1 << 20).await.unwrap().records;
        assert_eq!(shared.catch_up.disk_reads() - before, 1);
        assert!(!busy.is_empty() && busy.len() <= 4096, "{} bytes", busy.len());
        // No write for longer than that: one long read.
        strand_shards::task::sleep(activity + std::time::Duration::from_millis(20)).await;
        let idle = log.read(0, 1 << 20).await.unwrap().records;
        assert_eq!(shared.catch_up.disk_reads() - before, 2);
        assert!(idle.len() > 3 * 4096 && idle.len() <= 16384, "{} bytes", idle.len());
        assert_eq!(&idle[..busy.len()], &busy[..]);
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
        let mut offsets = Vec::new();
        let mut next = 0;
        while next < log.offsets().high_watermark {
            let records = log.read(next, 1 << 20).await.unwrap().records;
            let batches = split_batches(&records).unwrap();
            offsets.extend(batches.iter().flat_map(|(_, b)| b.base_offset..b.next_offset()));
            next = batches.last().unwrap().1.next_offset();
        }
        assert_eq!(offsets, (0..big.last_offset + 4).collect::<Vec<i64>>());
    });
}
