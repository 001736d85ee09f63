//! Tests of several fdatasyncs in flight per partition (log.flush.syncs.max): batches arrive
//! while earlier rounds are written and synced, each acked on its own; the high watermark never
//! passes what the completed fdatasyncs cover, rolls and a crash lose nothing acknowledged, and
//! a failed fdatasync acknowledges nothing after it. The last tests hold fdatasyncs in the fault
//! seam and let them return in a chosen order, so the overlap does not depend on the disk.

#![allow(clippy::unwrap_used)] // inside executor closures, which clippy does not see as tests

use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use strand_io::faults::{self, FaultOp};
use strand_shards::task::{sleep, spawn_local, Task};

use super::tests::{files, read_all, reopened_offsets, run, shared, CONFIG};
use super::*;
use crate::protocol::record_batch::split_batches;
use crate::protocol::record_batch::tests::encoded_batch;

const SYNCS: LogConfig = LogConfig { syncs_max: 4, ..CONFIG };

/// Appends `batches` batches of `records` records, 100 us apart, without waiting for their
/// acks; stops early when the log refuses one. Before batch `fail_sync_at`, once the first
/// batches are acked, the next fdatasync to start is made to fail. The acks: each append's last
/// offset, or an error.
async fn append_spread(log: &Rc<PartitionLog>, batches: usize, records: usize, fail_sync_at: Option<usize>) -> Vec<Task<Result<i64, LogError>>> {
    let mut acks = Vec::new();
    for i in 0..batches {
        if fail_sync_at == Some(i) {
            let _ = log.wait_committed(15).await;
            faults::inject(FaultOp::Sync, "t-0", 5, 1);
        }
        let Ok(ack) = append_acked(log, records) else { break };
        acks.push(ack);
        sleep(Duration::from_micros(100)).await;
    }
    acks
}

/// Appends a batch of `records` records, unless the log refuses it, and acks it in a task:
/// its last offset, or an error.
fn append_acked(log: &Rc<PartitionLog>, records: usize) -> Result<Task<Result<i64, LogError>>, LogError> {
    let bytes = encoded_batch(records, 0).freeze();
    let described = split_batches(&bytes).unwrap();
    let info = log.append_as_leader(bytes, &described, 0, None)?;
    let log = Rc::clone(log);
    Ok(spawn_local(async move { log.wait_committed(info.last_offset).await.map(|()| info.last_offset) }))
}

/// Checks at every wake-up that the high watermark stays within what completed fdatasyncs of
/// the active segment cover (the fault seam's synced length; batches of `batch_bytes`, two
/// records each). Runs until dropped or the log goes offline.
fn watch_high_watermark(log: &Rc<PartitionLog>, dir: &Path, batch_bytes: u64) -> Task<()> {
    let log = Rc::clone(log);
    let log_file = files(dir, "log").pop().unwrap();
    spawn_local(async move {
        loop {
            let high_watermark = log.offsets().high_watermark;
            let synced = faults::synced_len(&log_file).unwrap_or(0);
            assert!(high_watermark as u64 / 2 * batch_bytes <= synced, "published {high_watermark}, synced {synced} B");
            log.wait_for_data_after(high_watermark).await;
            if log.offsets().high_watermark == high_watermark {
                return; // Woken without progress: the log went offline.
            }
        }
    })
}

#[test]
fn a_failed_fdatasync_among_several_in_flight_acknowledges_nothing_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let config = LogConfig { segment_bytes: 1 << 20, ..SYNCS };
    let p = path.clone();
    let (acked, refused, high_watermark, durable_len) = run(move || async move {
        let log = PartitionLog::open(&p, config, &shared(), None).await.unwrap();
        let watcher = watch_high_watermark(&log, &p, encoded_batch(2, 0).len() as u64);
        let acks = append_spread(&log, 64, 2, Some(24)).await;
        let (mut acked, mut refused) = (Vec::new(), 0);
        for ack in acks {
            match ack.await {
                Ok(offset) => acked.push(offset),
                Err(_) => refused += 1,
            }
        }
        drop(watcher);
        let log_file = files(&p, "log").pop().unwrap();
        assert!(faults::syncs_in_flight_peak(&log_file) >= 2, "several fdatasyncs were in flight at once");
        (acked, refused, log.offsets().high_watermark, faults::synced_len(&log_file).unwrap_or(0))
    });
    assert!(refused > 0, "the failed fdatasync's batches were refused");
    assert_eq!(acked, (0..acked.len() as i64).map(|i| 2 * i + 1).collect::<Vec<i64>>(), "acks stop at the failure");
    assert_eq!(acked.last().map_or(0, |last| last + 1), high_watermark);
    // Power loss: the disk keeps only what completed fdatasyncs that started before the failed
    // one covered.
    let log_file = files(&path, "log").pop().unwrap();
    std::fs::OpenOptions::new().write(true).open(&log_file).unwrap().set_len(durable_len).unwrap();
    let kept = reopened_offsets(path, config);
    assert!(kept.len() as i64 >= high_watermark, "every ack survives: {} kept, {high_watermark} acked", kept.len());
}

#[test]
fn appends_with_several_syncs_in_flight_roll_and_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let p = path.clone();
    let (acked, durable) = run(move || async move {
        let log = PartitionLog::open(&p, SYNCS, &shared(), None).await.unwrap();
        let acks = append_spread(&log, 200, 3, None).await;
        let mut acked = Vec::new();
        for ack in acks {
            acked.push(ack.await.unwrap());
        }
        assert_eq!(acked, (0..200).map(|i| 3 * i + 2).collect::<Vec<i64>>());
        assert_eq!(read_all(&log).await, (0..600).collect::<Vec<i64>>());
        let logs = files(&p, "log");
        assert!(logs.iter().any(|f| faults::syncs_in_flight_peak(f) >= 2), "several fdatasyncs were in flight at once");
        // A crash, then a power loss: every file keeps only what its fdatasyncs covered.
        (acked, logs.iter().map(|f| (f.clone(), faults::synced_len(f).unwrap_or(0))).collect::<Vec<_>>())
    });
    assert_eq!(acked.len(), 200);
    assert!(durable.len() > 10, "segment.bytes=1024 rolled");
    for (file, len) in durable {
        std::fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(len).unwrap();
    }
    assert_eq!(reopened_offsets(path, SYNCS), (0..600).collect::<Vec<i64>>());
}

/// Appends one batch of two records, and acks it in a task: its last offset, or an error.
fn append_two(log: &Rc<PartitionLog>) -> Task<Result<i64, LogError>> {
    append_acked(log, 2).unwrap()
}

/// Waits, without waiting on the disk, until `done` holds; panics after 10 s.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        sleep(Duration::from_millis(1)).await;
    }
    panic!("waited 10 s for {what}");
}

/// Waits until the fault seam holds `count` fdatasyncs that have not returned: the writer
/// wrote a round and started its sync, or a released sync's task saw it return.
async fn until_held(count: usize) {
    until(&format!("{count} fdatasyncs held"), || faults::held_syncs() == count).await;
}

/// A log with several syncs in flight whose fdatasyncs the fault seam holds.
async fn open_holding(path: &Path) -> Rc<PartitionLog> {
    let log = PartitionLog::open(path, SYNCS, &shared(), None).await.unwrap();
    faults::hold_syncs("t-0");
    log
}

/// Appends one batch per round, each round's fdatasync held, until `rounds` are held.
async fn held_rounds(log: &Rc<PartitionLog>, rounds: usize) -> Vec<Task<Result<i64, LogError>>> {
    let mut acks = Vec::new();
    for round in 1..=rounds {
        acks.push(append_two(log));
        until_held(round).await;
    }
    acks
}

#[test]
fn a_round_is_published_only_once_every_earlier_fdatasync_returned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    run(move || async move {
        let log = open_holding(&path).await;
        let mut acks = held_rounds(&log, 2).await;
        faults::release_sync(1, None); // the second round's sync returns first
        until_held(1).await;
        assert_eq!(log.offsets().high_watermark, 0, "the first round's sync is still in flight");
        faults::release_sync(0, None);
        assert_eq!(acks.remove(0).await.unwrap(), 1);
        assert_eq!(acks.remove(0).await.unwrap(), 3);
        assert_eq!(log.offsets().high_watermark, 4);
        faults::clear();
    });
}

#[test]
fn an_fdatasync_failing_on_completion_takes_back_the_later_ones_that_returned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let p = path.clone();
    let durable_len = run(move || async move {
        let log = open_holding(&p).await;
        let mut acks = held_rounds(&log, 3).await;
        faults::release_sync(2, None); // the third round's sync returns
        faults::release_sync(0, None); // then the first's
        assert_eq!(acks.remove(0).await.unwrap(), 1);
        faults::release_sync(0, Some(5)); // and the second's fails
        assert!(matches!(acks.remove(0).await, Err(LogError::Offline(_))));
        assert!(matches!(acks.remove(0).await, Err(LogError::Offline(_))), "the third round's sync started after the failed one");
        assert_eq!(log.offsets().high_watermark, 2);
        assert!(matches!(append_acked(&log, 1), Err(LogError::Offline(_))), "the log is offline");
        let log_file = files(&p, "log").pop().unwrap();
        let durable_len = faults::synced_len(&log_file).unwrap();
        faults::clear();
        durable_len
    });
    assert_eq!(durable_len, encoded_batch(2, 0).len() as u64, "only the first round counts as durable");
    let log_file = files(&path, "log").pop().unwrap();
    std::fs::OpenOptions::new().write(true).open(&log_file).unwrap().set_len(durable_len).unwrap();
    assert_eq!(reopened_offsets(path, SYNCS), vec![0, 1], "the acked round survives a power loss");
}

#[test]
fn a_failed_write_refuses_appends_at_once_while_an_earlier_fdatasync_is_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    run(move || async move {
        let log = open_holding(&path).await;
        let first = held_rounds(&log, 1).await.pop().unwrap();
        faults::inject(FaultOp::Write, ".log", 5, 1);
        let second = append_two(&log);
        until("the second round's write to fail", || log.state.borrow().failing.is_some()).await;
        assert_eq!(faults::held_syncs(), 1, "the first round's sync is still in flight");
        assert!(matches!(append_acked(&log, 1), Err(LogError::Offline(_))), "appends are refused once a write failed");
        assert!(log.read(0, 1 << 20).await.is_ok(), "the log is not offline yet: reads go on");
        faults::release_sync(0, None);
        assert_eq!(first.await.unwrap(), 1, "the round the sync covered is acknowledged");
        assert!(matches!(second.await, Err(LogError::Offline(_))));
        faults::clear();
    });
}
