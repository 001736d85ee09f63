//! Consumer threads: librdkafka consumers assigned a share of the partitions (no group, so
//! they work on any broker). A tailing consumer starts at the log end and measures end-to-end
//! latency from each record's intended send time to its receipt; a draining consumer reads
//! from given offsets up to given ends and measures how fast it catches up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::latency::SharedRecorder;
use super::payload::BenchClock;

/// Counters shared by the consumers of one role.
#[derive(Debug, Default)]
pub struct ConsumeStats {
    pub received: AtomicU64,
    pub bytes: AtomicU64,
    /// Records of this run sent after warmup and received.
    pub measured: AtomicU64,
    /// Bench-clock ns of the first and the newest receipt (0 = none yet).
    pub first_receive_ns: AtomicU64,
    pub last_receive_ns: AtomicU64,
    /// Times a draining consumer reached its ends (a pass over its backlog).
    pub drained: AtomicU64,
    pub errors: AtomicU64,
}

/// What a consumer thread does.
#[derive(Debug, Clone)]
pub enum Role {
    /// Measure end-to-end latency of this run's records.
    Tail { recorder: SharedRecorder },
    /// Read until every partition reaches its end offset (exclusive); with `repeat`, start
    /// over from the log start each time, until stopped.
    Drain { ends: BTreeMap<i32, i64>, repeat: bool },
}

/// One consumer: its number, where it starts in each of its partitions, when, and its role.
#[derive(Debug, Clone)]
pub struct ConsumerJob {
    pub index: usize,
    pub start: Vec<(i32, Offset)>,
    /// Assign (and so start fetching) only at this time.
    pub not_before: Option<Instant>,
    pub role: Role,
}

/// Starts one consumer thread reading `topic`; it stops when `stop` is set (or, draining, when
/// done).
pub fn spawn(
    config: &ClientConfig,
    topic: &str,
    job: ConsumerJob,
    clock: BenchClock,
    stats: Arc<ConsumeStats>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<()>> {
    let ConsumerJob { index, start, not_before, role } = job;
    let consumer: BaseConsumer = config.create().map_err(|e| anyhow::anyhow!("creating consumer {index}: {e}"))?;
    let list = assignment(topic, &start)?;
    let thread = std::thread::Builder::new().name(format!("bench-consumer-{index}")).spawn(move || {
        if let Some(at) = not_before {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
        }
        if consumer.assign(&list).is_err() {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match role {
            Role::Tail { recorder } => tail(&consumer, &recorder, clock, &stats, &stop),
            Role::Drain { ends, repeat } => drain(&consumer, &list, ends, repeat, clock, &stats, &stop),
        }
    })?;
    Ok(thread)
}

fn assignment(topic: &str, start: &[(i32, Offset)]) -> anyhow::Result<TopicPartitionList> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in start {
        list.add_partition_offset(topic, *partition, *offset)
            .map_err(|e| anyhow::anyhow!("assigning {topic}-{partition}: {e}"))?;
    }
    Ok(list)
}

fn note_receipt(stats: &ConsumeStats, clock: BenchClock, now: Instant, bytes: usize) {
    note_receipts(stats, clock, now, 1, bytes as u64);
}

/// `records` received at `now`, holding `bytes` of values.
pub(super) fn note_receipts(stats: &ConsumeStats, clock: BenchClock, now: Instant, records: u64, bytes: u64) {
    let ns = clock.nanos(now).max(1);
    stats.received.fetch_add(records, Ordering::Relaxed);
    stats.bytes.fetch_add(bytes, Ordering::Relaxed);
    let _ = stats.first_receive_ns.compare_exchange(0, ns, Ordering::Relaxed, Ordering::Relaxed);
    stats.last_receive_ns.fetch_max(ns, Ordering::Relaxed);
}

fn tail(consumer: &BaseConsumer, recorder: &SharedRecorder, clock: BenchClock, stats: &ConsumeStats, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let now = Instant::now();
                let payload = message.payload().unwrap_or_default();
                note_receipt(stats, clock, now, payload.len());
                if let Some(intended) = clock.read(payload) {
                    if recorder.lock().is_ok_and(|mut r| r.record(intended, now)) {
                        stats.measured.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Some(Err(_)) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            None => {}
        }
    }
}

fn drain(
    consumer: &BaseConsumer,
    start: &TopicPartitionList,
    mut ends: BTreeMap<i32, i64>,
    repeat: bool,
    clock: BenchClock,
    stats: &ConsumeStats,
    stop: &AtomicBool,
) {
    ends.retain(|_, end| *end > 0);
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    let done = |positions: &BTreeMap<i32, i64>| ends.iter().all(|(p, end)| positions.get(p).is_some_and(|pos| pos >= end));
    while !stop.load(Ordering::Relaxed) {
        if done(&positions) {
            stats.drained.fetch_add(1, Ordering::Relaxed);
            if !repeat || ends.is_empty() || consumer.assign(start).is_err() {
                return;
            }
            positions.clear();
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                note_receipt(stats, clock, Instant::now(), message.payload_len());
                positions.insert(message.partition(), message.offset() + 1);
            }
            Some(Err(_)) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            None => {}
        }
    }
}

/// Partitions dealt round-robin to `consumers` consumers; consumers without any are left out.
pub fn deal(partitions: &[i32], consumers: usize) -> Vec<Vec<i32>> {
    let mut shares = vec![Vec::new(); consumers.max(1)];
    for (i, p) in partitions.iter().enumerate() {
        shares[i % consumers.max(1)].push(*p);
    }
    shares.retain(|s| !s.is_empty());
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_dealt_round_robin_and_idle_consumers_dropped() {
        assert_eq!(deal(&[0, 1, 2, 3, 4], 2), vec![vec![0, 2, 4], vec![1, 3]]);
        assert_eq!(deal(&[0, 1], 4), vec![vec![0], vec![1]]);
    }
}
