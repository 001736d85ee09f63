//! Fetch: reads the asked partitions from their owning shards, in order, within the request's
//! max_bytes (one message per owning shard); when fewer than min_bytes are
//! there, parks on the owning shards until data arrives or max_wait_ms passes (a delayed
//! fetch woken by appends, not a poll), then reads again.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use strand_shards::ShardId;

use super::join::{first_of, group_by_owner, join_all};
use super::str_bytes;
use crate::log::LogRead;
use crate::partition::PartitionError;
use crate::protocol::error_code::partition_error_code;
use crate::protocol::record_batch::BatchHeader;
use crate::shard::{PartitionRead, ShardRequest, ShardState};

/// One asked partition, resolved against the metadata image.
struct Wanted {
    topic: Option<String>,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    /// Set when the topic is unknown (by name or id) or the partition out of range.
    error: Option<ResponseError>,
}

pub async fn handle(shard: &Rc<ShardState>, request: FetchRequest, version: i16) -> FetchResponse {
    let wanted = resolve(shard, &request, version);
    let deadline = Instant::now() + Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(usize::MAX);
    loop {
        let results = read_all(shard, &wanted, max_bytes).await;
        let total: usize = results.iter().map(|r| r.as_ref().map_or(0, |r| r.records.len())).sum();
        let failed = results.iter().any(Result::is_err);
        let now = Instant::now();
        if total >= min_bytes || total > 0 && min_bytes == 0 || failed || now >= deadline || shard.is_stopping() {
            return respond(&request, &wanted, results, version);
        }
        wait_for_data(shard, &wanted, &results, deadline - now).await;
    }
}

fn resolve(shard: &ShardState, request: &FetchRequest, version: i16) -> Vec<Wanted> {
    let image = shard.image();
    let mut wanted = Vec::new();
    for topic in &request.topics {
        let meta = if version >= 13 { image.topic_by_id(topic.topic_id) } else { image.topic(&topic.topic) };
        let unknown = if version >= 13 { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
        for p in &topic.partitions {
            let error = match meta {
                None => Some(unknown),
                Some(meta) if !(0..meta.partitions).contains(&p.partition) => Some(ResponseError::UnknownTopicOrPartition),
                Some(_) => None,
            };
            wanted.push(Wanted {
                topic: meta.map(|m| m.name.clone()),
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                error,
            });
        }
    }
    wanted
}

type ReadResult = Result<LogRead, ResponseError>;

/// (topic, partition, offset): wake when the partition has data past the offset.
type DataWait = (String, i32, i64);

/// Reads the fetch's partitions within its `max_bytes`, as Kafka fills a fetch in request
/// order. Each owning shard gets one request with its partitions and reads them in order
/// within `max_bytes`, at once when their limits fit in it together
/// ([`ShardState::fetch_partitions`]); then the answers are cut to
/// the fetch's budget in request order: after the first partition with records, each keeps
/// the whole batches that fit in its own limit and what is left. So a fetch over many
/// partitions reads and holds about `max_bytes` per shard involved rather than the sum of its
/// partitions' limits, and crosses to each shard once.
async fn read_all(shard: &Rc<ShardState>, wanted: &[Wanted], max_bytes: usize) -> Vec<ReadResult> {
    let by_shard = by_owner(shard, wanted);
    let work = by_shard
        .iter()
        .map(|(owner, indexes)| {
            let (shard, owner) = (Rc::clone(shard), *owner);
            let reads: Vec<PartitionRead> = indexes
                .iter()
                .map(|&i| {
                    let w = &wanted[i];
                    let topic = w.topic.clone().expect("only resolved partitions are read");
                    PartitionRead { topic, partition: w.partition, offset: w.offset, max_bytes: w.max_bytes }
                })
                .collect();
            async move { shard.call(owner, |reply| ShardRequest::Fetch { reads, max_bytes, reply }).await }
        })
        .collect();
    let mut results: Vec<ReadResult> = wanted.iter().map(|w| Err(w.error.unwrap_or(ResponseError::UnknownServerError))).collect();
    for ((_, indexes), answer) in by_shard.iter().zip(join_all(work).await) {
        match answer {
            Ok(reads) => {
                for (&i, read) in indexes.iter().zip(reads) {
                    results[i] = read.map_err(|e| partition_error_code(&e));
                }
            }
            Err(e) => {
                let code = partition_error_code(&PartitionError::from(e));
                indexes.iter().for_each(|&i| results[i] = Err(code));
            }
        }
    }
    let mut total = 0usize;
    for (w, result) in wanted.iter().zip(results.iter_mut()) {
        if let Ok(read) = result {
            let limit = w.max_bytes.min(max_bytes.saturating_sub(total));
            // Only an answer longer than what it may hold needs its batches walked.
            if total > 0 && read.records.len() > limit {
                read.records = whole_batches_within(&read.records, limit);
            }
            total += read.records.len();
        }
    }
    results
}

/// The partitions to read (those resolved without an error), by owning shard: each shard
/// once, with the indexes into `wanted` of its partitions in request order.
fn by_owner(shard: &ShardState, wanted: &[Wanted]) -> Vec<(ShardId, Vec<usize>)> {
    group_by_owner(wanted.iter().enumerate().filter_map(|(i, w)| {
        let topic = w.topic.as_ref().filter(|_| w.error.is_none())?;
        Some((shard.owner(topic, w.partition), i))
    }))
}

/// The longest run of whole batches at the start of `records` that is at most `limit` bytes.
fn whole_batches_within(records: &Bytes, limit: usize) -> Bytes {
    let mut end = 0;
    while let Ok(header) = BatchHeader::parse(&records[end..]) {
        let next = end + header.total_bytes();
        if next > limit || next > records.len() {
            break;
        }
        end = next;
    }
    records.slice(..end)
}

/// Parks on every owning shard until one of the partitions grows past what `results` (the last
/// read) saw, or `max_wait` passes. Waiting past the fetch offset instead would end at once for
/// a partition that had records but fewer than min_bytes, and the fetch would spin.
async fn wait_for_data(shard: &Rc<ShardState>, wanted: &[Wanted], results: &[ReadResult], max_wait: Duration) {
    let seen = |i: usize| results[i].as_ref().map_or(wanted[i].offset, |read| read.offsets.high_watermark.max(wanted[i].offset));
    let by_shard: Vec<(ShardId, Vec<DataWait>)> = by_owner(shard, wanted)
        .into_iter()
        .map(|(owner, indexes)| {
            let waits = indexes.iter().filter_map(|&i| Some((wanted[i].topic.clone()?, wanted[i].partition, seen(i)))).collect();
            (owner, waits)
        })
        .collect();
    let waits: Vec<Pin<Box<dyn Future<Output = ()>>>> = by_shard
        .into_iter()
        .map(|(owner, waits)| {
            let shard = Rc::clone(shard);
            Box::pin(async move {
                let _ = shard.call(owner, |reply| ShardRequest::WaitForData { waits, max_wait, reply }).await;
            }) as Pin<Box<dyn Future<Output = ()>>>
        })
        .collect();
    if waits.is_empty() {
        strand_shards::task::sleep(max_wait).await;
    } else {
        first_of(waits).await;
    }
}

fn respond(request: &FetchRequest, wanted: &[Wanted], results: Vec<ReadResult>, version: i16) -> FetchResponse {
    let mut results = results.into_iter();
    let mut wanted = wanted.iter();
    let responses = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|_| {
                    let w = wanted.next().expect("one wanted per partition");
                    partition_data(w, results.next().expect("one result per partition"))
                })
                .collect();
            let response = FetchableTopicResponse::default().with_partitions(partitions);
            if version >= 13 {
                response.with_topic_id(topic.topic_id)
            } else {
                response.with_topic(TopicName(str_bytes(&topic.topic)))
            }
        })
        .collect();
    FetchResponse::default().with_responses(responses)
}

fn partition_data(wanted: &Wanted, result: ReadResult) -> PartitionData {
    let data = PartitionData::default().with_partition_index(wanted.partition);
    match result {
        Ok(read) => data
            .with_high_watermark(read.offsets.high_watermark)
            .with_last_stable_offset(read.offsets.high_watermark)
            .with_log_start_offset(read.offsets.log_start_offset)
            .with_records(Some(read.records)),
        Err(code) => data
            .with_error_code(code.code())
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_records(Some(Bytes::new())),
    }
}
