//! A draining consumer that speaks the Kafka protocol itself (`--catch-up-client protocol`,
//! `bench consume --client protocol`): Fetch requests as librdkafka sends them with its
//! defaults (one in flight, 50 MiB per request, 1 MiB per partition, the bench's 100 ms max
//! wait), but the answer's records are only counted, from the batch headers, never handed out
//! one by one. It puts the same load on the broker as a librdkafka consumer at a fraction of
//! the client CPU, so on a machine where the load generator has one core, the tailing clients
//! beside it keep their core. It takes no client properties (`-X`), and reads with
//! isolation level read_uncommitted, as the bench's topics hold no transactions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::consumers::{note_receipts, ConsumeStats};
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

/// What one protocol drainer reads: `ranges` of its partitions, all led by `broker`.
#[derive(Debug, Clone)]
pub struct RawDrain {
    pub index: usize,
    pub broker: String,
    pub topic: String,
    /// Partition -> (log start offset, end offset exclusive): each pass reads that range.
    pub ranges: BTreeMap<i32, (i64, i64)>,
    pub repeat: bool,
    /// The size of each record's value, counted as its bytes (as a librdkafka consumer counts
    /// its payload).
    pub message_size: usize,
    pub not_before: Instant,
    pub timeout: Duration,
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
                    let (next, records) = count_records(partition.records.as_ref(), *at, ranges[&partition.partition_index].1);
                    if records > 0 {
                        note_receipts(stats, clock, received, records, records * job.message_size as u64);
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

/// Walks the whole record batches of a fetched record set from their headers: the offset after
/// the last one, and how many records from `from` up to `end` (exclusive) they hold.
fn count_records(records: Option<&Bytes>, from: i64, end: i64) -> (i64, u64) {
    let Some(set) = records else { return (from, 0) };
    let (mut at, mut next, mut counted) = (0usize, from, 0u64);
    // base offset (8), batch length (4), ..., last offset delta at 23 (4).
    while let Some(header) = set.get(at..at + 27) {
        let base = i64::from_be_bytes(header[0..8].try_into().expect("8 bytes"));
        let length = i32::from_be_bytes(header[8..12].try_into().expect("4 bytes"));
        let last_delta = i32::from_be_bytes(header[23..27].try_into().expect("4 bytes"));
        let Ok(total) = usize::try_from(length).map(|l| l + 12) else { break };
        if at + total > set.len() {
            break;
        }
        let batch_next = base + i64::from(last_delta) + 1;
        if batch_next > next {
            counted += u64::try_from(batch_next.min(end) - next.max(base)).unwrap_or(0);
            next = batch_next;
        }
        at += total;
    }
    (next, counted)
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
    }
}
