//! The shard journal against real files: strict appends acknowledged through it survive a
//! power loss that keeps only what was fdatasync'ed, by replay, across its wraps.

#![allow(clippy::unwrap_used)] // inside executor closures, which clippy does not see as tests

use std::path::{Path, PathBuf};
use std::rc::Rc;

use strand_io::faults;
use uuid::Uuid;

use super::tests::{append, files, read_all, run, shared, CONFIG};
use super::*;

/// One segment for everything: only the journal's checkpoints fdatasync it.
/// As partition.rs configures a log when the shard journal runs: segments not write-through.
const BIG_SEGMENTS: LogConfig = LogConfig { segment_bytes: 256 << 20, preallocate_bytes: 1 << 20, write_through: false, ..CONFIG };
const JOURNAL_BYTES: u64 = 4 << 20;

fn key(partition: i32) -> JournalKey {
    JournalKey { topic: "t".to_owned(), partition, topic_id: Uuid::from_u128(42) }
}

/// Log resources whose journal has read `data`'s earlier journal files and runs.
async fn journaled(data: &Path) -> LogShared {
    let journal = Rc::new(Journal::new(data, JOURNAL_BYTES));
    journal.load(0, 1, |_, _| true).await.unwrap();
    LogShared { journal, ..shared() }
}

/// One log per dir (partition i of topic "t"), then the journal started, as a shard does.
async fn open_journaled(data: &Path, dirs: &[PathBuf]) -> (LogShared, Vec<Rc<PartitionLog>>) {
    let shared = journaled(data).await;
    let mut logs = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        logs.push(PartitionLog::open(dir, BIG_SEGMENTS, &shared, Some(&key(i32::try_from(i).unwrap()))).await.unwrap());
    }
    shared.journal.retain_replay(|_, _, _| false);
    shared.journal.start(0, 1).await.unwrap();
    (shared, logs)
}

/// Power loss: each partition's segment keeps only what was fdatasync'ed (`synced`).
fn lose_power(dirs: &[PathBuf], synced: &[u64]) {
    for (dir, synced) in dirs.iter().zip(synced) {
        let segment = files(dir, "log").pop().unwrap();
        std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(*synced).unwrap();
    }
}

/// Appends `batches` batches of `records` to each log, the logs at once (so journal rounds
/// carry several partitions); answers the offset after the last each acked.
async fn fill(logs: &[Rc<PartitionLog>], batches: usize, records: usize) -> Vec<i64> {
    let appenders: Vec<_> = logs
        .iter()
        .map(|log| {
            let log = Rc::clone(log);
            strand_shards::task::spawn_local(async move {
                let mut acked = 0;
                for _ in 0..batches {
                    acked = append(&log, records, 0).await.unwrap().last_offset + 1;
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for appender in appenders {
        acked.push(appender.await);
    }
    acked
}

/// Bytes of each log's segment fdatasync'ed, and written.
fn synced_and_written(dirs: &[PathBuf]) -> (Vec<u64>, Vec<u64>) {
    dirs.iter()
        .map(|dir| {
            let segment = files(dir, "log").pop().unwrap();
            (faults::synced_len(&segment).unwrap_or(0), std::fs::metadata(&segment).unwrap().len())
        })
        .unzip()
}

fn recovered(data: PathBuf, dirs: Vec<PathBuf>) -> Vec<Vec<i64>> {
    run(move || async move {
        let shared = journaled(&data).await;
        let mut offsets = Vec::new();
        for (i, dir) in dirs.iter().enumerate() {
            let log = PartitionLog::open(dir, BIG_SEGMENTS, &shared, Some(&key(i32::try_from(i).unwrap()))).await.unwrap();
            offsets.push(read_all(&log).await);
        }
        offsets
    })
}

#[test]
fn appends_acknowledged_through_the_journal_survive_power_loss_by_replay() {
    let data = tempfile::tempdir().unwrap();
    let root = data.path().to_owned();
    let dirs = vec![root.join("t-0"), root.join("t-1"), root.join("t-2")];
    let (d, r) = (dirs.clone(), root.clone());
    let (acked, synced, rounds) = run(move || async move {
        let (shared, logs) = open_journaled(&r, &d).await;
        let acked = fill(&logs, 20, 50).await;
        (acked, synced_and_written(&d).0, shared.journal.stats().0)
    });
    assert!(rounds > 0, "the appends went through the journal");
    assert_eq!(synced, vec![0, 0, 0], "no segment was fdatasync'ed: every ack came from the journal");
    lose_power(&dirs, &synced);
    let offsets = recovered(root, dirs);
    for (offsets, acked) in offsets.iter().zip(&acked) {
        assert_eq!(offsets, &(0..*acked).collect::<Vec<i64>>());
    }
}

#[test]
fn the_journal_wraps_only_after_its_records_are_durable_in_their_segments() {
    let data = tempfile::tempdir().unwrap();
    let root = data.path().to_owned();
    let dirs = vec![root.join("t-0"), root.join("t-1")];
    let (d, r) = (dirs.clone(), root.clone());
    let (acked, synced, checkpoints) = run(move || async move {
        let (shared, logs) = open_journaled(&r, &d).await;
        // About 12 MiB through a 4 MiB journal: three wraps.
        let acked = fill(&logs, 100, 2000).await;
        let (synced, _) = synced_and_written(&d);
        (acked, synced, shared.journal.stats().1)
    });
    assert!(checkpoints >= 8, "the journal left a quarter at least 8 times ({checkpoints})");
    assert!(synced.iter().all(|s| *s > 0), "checkpoints fdatasync'ed the segments: {synced:?}");
    lose_power(&dirs, &synced);
    let offsets = recovered(root, dirs);
    for (offsets, acked) in offsets.iter().zip(&acked) {
        assert_eq!(offsets.len(), usize::try_from(*acked).unwrap());
        assert_eq!(offsets, &(0..*acked).collect::<Vec<i64>>());
    }
}

#[test]
fn a_start_after_a_process_crash_fdatasyncs_what_the_journal_covered_before_dropping_it() {
    let data = tempfile::tempdir().unwrap();
    let root = data.path().to_owned();
    let dirs = vec![root.join("t-0")];
    let (d, r) = (dirs.clone(), root.clone());
    run(move || async move {
        let (_shared, logs) = open_journaled(&r, &d).await;
        fill(&logs, 5, 10).await;
        assert_eq!(synced_and_written(&d).0, vec![0], "acked through the journal, segment not synced");
    });
    // The process died: its writes are all in the segment, none of it fdatasync'ed. The next
    // start must make them durable before the journal that covers them can go.
    let (synced, written) = run(move || async move {
        let shared = journaled(&root).await;
        let log = PartitionLog::open(&dirs[0], BIG_SEGMENTS, &shared, Some(&key(0))).await.unwrap();
        assert_eq!(read_all(&log).await.len(), 50);
        assert!(shared.journal.untaken_replay().is_empty(), "the partition took its entries");
        synced_and_written(&dirs)
    });
    assert_eq!(synced, written, "the segment was fdatasync'ed whole at open");
}

#[test]
fn a_recreated_topic_does_not_take_the_old_ones_entries() {
    let data = tempfile::tempdir().unwrap();
    let root = data.path().to_owned();
    let dir = root.join("t-0");
    let (d, r) = (dir.clone(), root.clone());
    run(move || async move {
        let (_shared, logs) = open_journaled(&r, std::slice::from_ref(&d)).await;
        fill(&logs, 5, 10).await;
    });
    // The topic was deleted and created again under the same name before the restart.
    std::fs::remove_dir_all(&dir).unwrap();
    let offsets = run(move || async move {
        let shared = journaled(&root).await;
        let other = JournalKey { topic_id: Uuid::from_u128(43), ..key(0) };
        let log = PartitionLog::open(&dir, BIG_SEGMENTS, &shared, Some(&other)).await.unwrap();
        read_all(&log).await
    });
    assert!(offsets.is_empty(), "the new topic starts empty: {offsets:?}");
}
