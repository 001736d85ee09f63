//! A consumer that speaks the Kafka protocol itself (`--client protocol`,
//! `--catch-up-client protocol`): Fetch requests as librdkafka sends them with its defaults
//! (one in flight, 50 MiB per request, 1 MiB per partition, the bench's 100 ms max wait), but
//! the answer's records are never handed out one by one. A draining consumer only counts them,
//! from the batch headers; a tailing one reads each record's send time from its value. It puts
//! the same load on the broker as a librdkafka consumer at a fraction of the client CPU, so on
//! a machine where the load generator has one core, the clients beside it keep their core. It
//! takes no client properties (`-X`), and reads with isolation level read_uncommitted, as the
//! bench's topics hold no transactions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use strand::protocol::record_batch::BatchHeader;

use super::consumers::{note_receipts, ConsumeStats};
use super::latency::SharedRecorder;
use super::payload::BenchClock;
use crate::cli::raw_client::RawConnection;

/// librdkafka's defaults: fetch.max.bytes, max.partition.fetch.bytes; and the bench's
/// fetch.wait.max.ms.
const FETCH_MAX_BYTES: i32 = 52_428_800;
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const FETCH_WAIT_MS: i32 = 100;
/// Fetch v12: topics by name, the last version before topic ids.
const FETCH_VERSION: i16 = 12;
/// OFFSET_OUT_OF_RANGE: the log start moved past the position.
const OFFSET_OUT_OF_RANGE: i16 = 1;
/// librdkafka's fetch.error.backoff.ms.
const ERROR_BACKOFF: Duration = Duration::from_millis(500);

/// Partition -> (start offset, end offset exclusive).
pub type Ranges = BTreeMap<i32, (i64, i64)>;

/// What one protocol consumer reads: `ranges` of its partitions, all led by `broker`.
#[derive(Debug, Clone)]
pub struct RawDrain {
    pub index: usize,
    pub broker: String,
    pub topic: String,
    /// Partition -> (log start offset, end offset exclusive): each pass reads that range.
    pub ranges: Ranges,
    pub repeat: bool,
    /// The size of each record's value, counted as its bytes (as a librdkafka consumer counts
    /// its payload).
    pub message_size: usize,
    pub not_before: Instant,
    pub timeout: Duration,
    /// Tailing: each record's end-to-end latency goes here (draining when None).
    pub latency: Option<SharedRecorder>,
}

pub fn spawn(job: RawDrain, clock: BenchClock, stats: Arc<ConsumeStats>, stop: Arc<AtomicBool>) -> anyhow::Result<JoinHandle<()>> {
    let name = format!("bench-drain-{}", job.index);
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        std::thread::sleep(job.not_before.saturating_duration_since(Instant::now()));
        if let Err(e) = drain(&job, clock, &stats, &stop) {
            tracing::warn!(drainer = job.index, error = %e, "protocol drainer stopped");
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
    })?;
    Ok(thread)
}

fn drain(job: &RawDrain, clock: BenchClock, stats: &ConsumeStats, stop: &AtomicBool) -> anyhow::Result<()> {
    let mut connection = RawConnection::connect(&job.broker, job.timeout)?;
    let ranges: BTreeMap<i32, (i64, i64)> = job.ranges.iter().filter(|(_, (start, end))| start < end).map(|(p, r)| (*p, *r)).collect();
    let start_over = || ranges.iter().map(|(p, (start, _))| (*p, *start)).collect::<BTreeMap<i32, i64>>();
    let mut positions = start_over();
    while !stop.load(Ordering::Relaxed) {
        let behind: Vec<(i32, i64)> = positions.iter().filter(|(p, at)| **at < ranges[p].1).map(|(p, at)| (*p, *at)).collect();
        if behind.is_empty() {
            stats.drained.fetch_add(1, Ordering::Relaxed);
            if !job.repeat || ranges.is_empty() {
                return Ok(());
            }
            positions = start_over();
            continue;
        }
        let response: FetchResponse = connection.call(ApiKey::Fetch, FETCH_VERSION, &fetch_request(&job.topic, &behind))?;
        let received = Instant::now();
        let mut failed = false;
        for partition in response.responses.iter().flat_map(|t| &t.partitions) {
            let Some(at) = positions.get_mut(&partition.partition_index) else { continue };
            match partition.error_code {
                0 => {
                    let end = ranges[&partition.partition_index].1;
                    let set = partition.records.as_ref();
                    let (next, records) = match &job.latency {
                        Some(recorder) => tail_records(set, *at, end, clock, recorder, stats, Instant::now)?,
                        None => count_records(set, *at, end),
                    };
                    if records > 0 {
                        note_receipts(stats, clock, received, records, records * job.message_size as u64);
                    }
                    if stuck(set, *at, next) {
                        let bytes = set.map_or(0, Bytes::len);
                        anyhow::bail!("{}-{} offset {at}: the broker answered {bytes} bytes holding no whole batch past it", job.topic, partition.partition_index)
                    }
                    *at = next;
                }
                // The log start passed the position: the backlog is not what the bench measured.
                OFFSET_OUT_OF_RANGE => {
                    anyhow::bail!("{}-{} offset {at} is out of range: the log start moved", job.topic, partition.partition_index)
                }
                _ => failed = true,
            }
        }
        if failed {
            // As librdkafka waits fetch.error.backoff.ms before asking again.
            stats.errors.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(ERROR_BACKOFF);
        }
    }
    Ok(())
}

fn fetch_request(topic: &str, positions: &[(i32, i64)]) -> FetchRequest {
    let partitions = positions
        .iter()
        .map(|(p, at)| FetchPartition::default().with_partition(*p).with_fetch_offset(*at).with_partition_max_bytes(PARTITION_MAX_BYTES))
        .collect();
    FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(FETCH_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(partitions)])
}

/// The whole record batches of a fetched record set, from their headers: each one's bytes,
/// base offset and the offset after it. A cut last batch is left out.
fn whole_batches(set: &Bytes) -> impl Iterator<Item = (std::ops::Range<usize>, i64, i64)> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let header = BatchHeader::parse(set.get(at..)?).ok()?;
        let total = header.total_bytes();
        if at + total > set.len() {
            return None;
        }
        let range = at..at + total;
        at += total;
        // Checked: garbage from a broker must not wrap around.
        let next = header.base_offset.checked_add(i64::from(header.last_offset_delta))?.checked_add(1)?;
        Some((range, header.base_offset, next))
    })
}

/// Whether an answer brought bytes but no whole batch past `from`, so asking again would bring
/// the same. A sound broker answers a fetch with at least its first batch whole, however large;
/// a damaged one must end the drain with an error, not have it fetch the same offset forever.
fn stuck(records: Option<&Bytes>, from: i64, next: i64) -> bool {
    next <= from && records.is_some_and(|set| !set.is_empty())
}

/// Walks the whole batches of a fetched record set: the offset after the last one, and how many
/// records from `from` up to `end` (exclusive) they hold.
fn count_records(records: Option<&Bytes>, from: i64, end: i64) -> (i64, u64) {
    let Some(set) = records else { return (from, 0) };
    let (mut next, mut counted) = (from, 0u64);
    for (_, base, batch_next) in whole_batches(set) {
        if batch_next > next {
            counted += u64::try_from(batch_next.min(end).saturating_sub(next.max(base))).unwrap_or(0);
            next = batch_next;
        }
    }
    (next, counted)
}

/// As [`count_records`], and each record of this run from `from` on has its latency recorded,
/// from its intended send time to `now()` once its batch is decoded (when a librdkafka consumer
/// could hand it out).
fn tail_records(
    records: Option<&Bytes>,
    from: i64,
    end: i64,
    clock: BenchClock,
    recorder: &SharedRecorder,
    stats: &ConsumeStats,
    now: impl Fn() -> Instant,
) -> anyhow::Result<(i64, u64)> {
    let Some(set) = records else { return Ok((from, 0)) };
    let (mut next, mut counted, mut measured) = (from, 0u64, 0u64);
    let mut recorder = recorder.lock().map_err(|_| anyhow::anyhow!("the latency recorder was poisoned"))?;
    for (range, _, batch_next) in whole_batches(set) {
        if batch_next <= next {
            continue;
        }
        let batch = RecordBatchDecoder::decode(&mut set.slice(range)).map_err(|e| anyhow::anyhow!("a fetched batch: {e}"))?;
        let received = now();
        for record in batch.records.iter().filter(|r| r.offset >= next && r.offset < end) {
            counted += 1;
            if let Some(intended) = record.value.as_deref().and_then(|v| clock.read(v)) {
                measured += u64::from(recorder.record(intended, received));
            }
        }
        next = batch_next;
    }
    stats.measured.fetch_add(measured, Ordering::Relaxed);
    Ok((next, counted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strand::protocol::record_batch::{encode_batch, BatchProducer};
    use kafka_protocol::records::Compression;

    fn batch_at(base_offset: i64, count: usize) -> Vec<u8> {
        let records = (0..count).map(|_| (None, Some(Bytes::from_static(b"v")), 0));
        let mut batch = encode_batch(records, BatchProducer::NONE, Compression::None).expect("encodes").to_vec();
        batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
        batch
    }

    #[test]
    fn a_tailing_consumer_times_this_runs_records_from_the_position_on() {
        let clock = BenchClock::new();
        let measure_start = clock.epoch + Duration::from_millis(10);
        // Offsets 20..24: sent at 5 ms (warmup), 20, 30 and 40 ms, and one of another run.
        let mut values: Vec<Bytes> = [5, 20, 30, 40]
            .iter()
            .map(|ms| {
                let mut v = super::super::payload::filler(64, 1);
                clock.stamp(&mut v, clock.epoch + Duration::from_millis(*ms));
                Bytes::from(v)
            })
            .collect();
        values.push(Bytes::from(super::super::payload::filler(64, 2)));
        let records = values.into_iter().map(|v| (None, Some(v), 0));
        let mut batch = encode_batch(records, BatchProducer::NONE, Compression::None).expect("encodes").to_vec();
        batch[0..8].copy_from_slice(&20_i64.to_be_bytes());
        let set = Bytes::from(batch);
        let recorder = super::super::latency::LatencyRecorder::shared(measure_start);
        let stats = ConsumeStats::default();
        let received = clock.epoch + Duration::from_millis(50);
        // From offset 21: four records, of which this run's three are timed (all after warmup).
        let (next, counted) = tail_records(Some(&set), 21, i64::MAX, clock, &recorder, &stats, || received).expect("decodes");
        assert_eq!((next, counted), (25, 4));
        assert_eq!(stats.measured.load(Ordering::Relaxed), 3);
        let total = recorder.lock().expect("not poisoned").total.clone();
        assert_eq!(total.len(), 3);
        // 50 - 20 and 50 - 40 ms, in microseconds (the histogram's precision).
        assert!(total.equivalent(total.max(), 30_000) && total.equivalent(total.min(), 10_000), "{} {}", total.min(), total.max());
        // From offset 20 up to 22 (exclusive): the warmup record is counted, not timed.
        let (next, counted) = tail_records(Some(&set), 20, 22, clock, &recorder, &stats, || received).expect("decodes");
        assert_eq!((next, counted), (25, 2));
        assert_eq!(stats.measured.load(Ordering::Relaxed), 4);
        // A damaged batch is an error, not a silent count.
        let mut damaged = set.to_vec();
        damaged[70] ^= 1;
        assert!(tail_records(Some(&Bytes::from(damaged)), 20, i64::MAX, clock, &recorder, &stats, || received).is_err());
    }

    #[test]
    fn counts_records_from_the_position_in_whole_batches_only() {
        let mut set = batch_at(10, 5);
        set.extend(batch_at(15, 3));
        let whole = Bytes::from(set.clone());
        // From 12: the first batch's records 12..15 and the second's three.
        assert_eq!(count_records(Some(&whole), 12, 100), (18, 6));
        // Records from `end` on are not counted.
        assert_eq!(count_records(Some(&whole), 12, 16), (18, 4));
        // A cut last batch counts for nothing.
        let cut = Bytes::from(set[..set.len() - 1].to_vec());
        assert_eq!(count_records(Some(&cut), 12, 100), (15, 3));
        assert_eq!(count_records(None, 7, 100), (7, 0));
        // From 15 the cut batch brings nothing: asking again would get the same answer.
        let (next, _) = count_records(Some(&cut), 15, 100);
        assert!(stuck(Some(&cut), 15, next));
        assert!(!stuck(Some(&whole), 15, count_records(Some(&whole), 15, 100).0));
        // No bytes at all is a fetch that waited for records, not a stuck one.
        assert!(!stuck(None, 15, 15) && !stuck(Some(&Bytes::new()), 15, 15));
    }
}
