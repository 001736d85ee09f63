//! Stage benchmark: the durable append path of one partition log (offset assignment, O_DIRECT
//! write, fdatasync, high watermark), without the network.
//!
//! For each write mode (direct write-through: O_DSYNC, `log.io.write.through`; direct + fsync
//! per batch, with one and with 4 fdatasyncs in flight, `log.flush.syncs.max`; buffered + fsync
//! per batch; buffered without fsync: the page-cache design) two
//! runs over the same device: one appender waiting for each ack in turn, then `CONCURRENT`
//! appenders in flight at once (group commit shares fsyncs). Then strict mode over
//! `CONCURRENT` partitions, one appender each: every partition fdatasyncing its own segment
//! (after a write, or write-through), against the shard journal (`shard.journal.bytes`).
//! Prints throughput and ack latency percentiles; never fails on timing.
//!
//! `cargo bench --bench log_append [-- BATCHES]`; set STRAND_BENCH_DIR to put the log on
//! another device (default: the system temp directory).

#![allow(clippy::print_stdout)] // a benchmark's output is its report

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::records::Compression;
use strand::log::{BrokerWrites, CatchUpLimits, CatchUpReads, Journal, JournalKey, LogConfig, LogShared, PartitionLog, TailCache};
use strand::protocol::record_batch::{encode_batch, split_batches, BatchProducer};
use strand_config::IoMode;

const RECORDS_PER_BATCH: usize = 16;
const VALUE_BYTES: usize = 1024;
const CONCURRENT: usize = 16;
const JOURNAL_BYTES: u64 = 64 << 20;

fn main() -> anyhow::Result<()> {
    let batches: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let base = std::env::var("STRAND_BENCH_DIR").map_or_else(|_| std::env::temp_dir(), Into::into);
    let dir = tempfile::tempdir_in(base)?;
    let path = dir.path().to_owned();
    let batch = encoded_batch();
    println!(
        "log_append: {batches} batches of {RECORDS_PER_BATCH} x {VALUE_BYTES} B values ({} B per batch), dir {}",
        batch.len(),
        path.display()
    );
    strand_shards::run_one(1 << 20, move || async move {
        strand_io::fs::probe_device(&path, "bench").await.expect("probe");
        let strict = LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: u64::MAX,
            index_interval_bytes: 4096,
            io_mode: IoMode::Direct,
            preallocate_bytes: 32 << 20,
            flush_messages: 1,
            flush_ms: u64::MAX,
            write_through: false,
            syncs_max: 1,
        };
        let modes = [
            ("direct, write-through (O_DSYNC)", LogConfig { write_through: true, ..strict }),
            ("direct, fsync per batch", strict),
            ("direct, fsync per batch, 4 fdatasyncs in flight", LogConfig { syncs_max: 4, ..strict }),
            ("buffered, fsync per batch", LogConfig { io_mode: IoMode::Buffered, ..strict }),
            ("buffered, no fsync", LogConfig { io_mode: IoMode::Buffered, flush_messages: u64::MAX, ..strict }),
        ];
        for (mode, config) in modes {
            println!("{mode}");
            for (label, in_flight) in [("serial", 1), ("16 in flight", CONCURRENT)] {
                let dir = path.join(format!("{}-{in_flight}", mode.replace([' ', ','], "")));
                let log = PartitionLog::open(&dir, config, &shared(&dir, 0), None).await.expect("open");
                let started = Instant::now();
                let latencies = run(&[Rc::clone(&log)], &batch, batches, in_flight).await;
                report(label, &latencies, started.elapsed(), batches * batch.len());
                log.close().await;
            }
        }
        println!("direct, fsync per batch, {CONCURRENT} partitions with one appender each");
        for (label, journal_bytes, write_through) in [("fsync each", 0, false), ("write-through each", 0, true), ("journal", JOURNAL_BYTES, false)] {
            let config = LogConfig { write_through, ..strict };
            let dir = path.join(format!("partitions-{}", label.replace(' ', "-")));
            let shared = shared(&dir, journal_bytes);
            shared.journal.load(0, 1, |_, _| true).await.expect("journal");
            let mut logs = Vec::new();
            for partition in 0..CONCURRENT {
                let key = JournalKey { topic: "bench".into(), partition: partition as i32, topic_id: Default::default() };
                logs.push(PartitionLog::open(&dir.join(format!("bench-{partition}")), config, &shared, Some(&key)).await.expect("open"));
            }
            shared.journal.start(0, 1).await.expect("journal");
            let started = Instant::now();
            let latencies = run(&logs, &batch, batches, CONCURRENT).await;
            report(label, &latencies, started.elapsed(), batches * batch.len());
            for log in logs {
                log.close().await;
            }
        }
    });
    Ok(())
}

fn shared(dir: &std::path::Path, journal_bytes: u64) -> LogShared {
    LogShared {
        tail_cache: TailCache::new(64 << 20),
        catch_up: Rc::new(CatchUpReads::new(CatchUpLimits {
            reads_max: 1,
            read_bytes: 1 << 20,
            busy_read_bytes: 1 << 20,
            bytes_per_second: 0,
            readahead_bytes: 4 << 20,
        }, BrokerWrites::new())),
        journal: Rc::new(Journal::new(dir, journal_bytes)),
    }
}

/// `batches` appends by `in_flight` tasks, task i appending to `logs[i % logs.len()]`.
async fn run(logs: &[Rc<PartitionLog>], batch: &Bytes, batches: usize, in_flight: usize) -> Vec<Duration> {
    let per_task = batches / in_flight;
    let tasks: Vec<_> = (0..in_flight)
        .map(|i| {
            let log = Rc::clone(&logs[i % logs.len()]);
            let batch = batch.clone();
            strand_shards::task::spawn_local(async move {
                let described = split_batches(&batch).expect("valid batch");
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let sent = Instant::now();
                    let info = log.append_as_leader(batch.clone(), &described, 0, None).expect("append");
                    log.wait_committed(info.last_offset).await.expect("acknowledged");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::with_capacity(batches);
    for task in tasks {
        all.extend(task.await);
    }
    all
}

fn report(label: &str, latencies: &[Duration], elapsed: Duration, bytes: usize) {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let pct = |p: f64| sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)];
    let secs = elapsed.as_secs_f64();
    println!(
        "  {label:<18} {:>9.0} batches/s {:>8.1} MB/s   ack p50 {:>8.1?} p99 {:>8.1?} p99.9 {:>8.1?} max {:>8.1?}",
        latencies.len() as f64 / secs,
        bytes as f64 / secs / 1e6,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        sorted[sorted.len() - 1],
    );
}

fn encoded_batch() -> Bytes {
    let records = (0..RECORDS_PER_BATCH).map(|_| (None, Some(Bytes::from(vec![b'v'; VALUE_BYTES])), 0));
    encode_batch(records, BatchProducer::NONE, Compression::None).expect("encodes").freeze()
}
