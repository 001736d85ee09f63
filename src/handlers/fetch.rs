//! Fetch: reads every asked partition from its owning shard; when fewer than min_bytes are
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

use super::join::{first_of, join_all};
use super::str_bytes;
use crate::log::LogRead;
use crate::partition::PartitionError;
use crate::protocol::error_code::partition_error_code;
use crate::shard::{ShardRequest, ShardState};

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
        wait_for_data(shard, &wanted, deadline - now).await;
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

/// Reads all partitions at once; then keeps the response under `max_bytes`, dropping records
/// of later partitions (the first non-empty one is always kept, as Kafka does).
async fn read_all(shard: &Rc<ShardState>, wanted: &[Wanted], max_bytes: usize) -> Vec<ReadResult> {
    let work = wanted
        .iter()
        .map(|w| {
            let shard = Rc::clone(shard);
            let (topic, partition, offset, partition_max) = (w.topic.clone(), w.partition, w.offset, w.max_bytes);
            let error = w.error;
            async move {
                if let Some(error) = error {
                    return Err(error);
                }
                let topic = topic.expect("resolved topic");
                let owner = shard.owner(&topic, partition);
                let result: Result<LogRead, PartitionError> = shard
                    .call(owner, |reply| ShardRequest::Fetch { topic, partition, offset, max_bytes: partition_max, reply })
                    .await
                    .map_err(PartitionError::from)
                    .and_then(|r| r);
                result.map_err(|e| partition_error_code(&e))
            }
        })
        .collect();
    let mut results = join_all(work).await;
    let mut total = 0usize;
    for result in results.iter_mut().flatten() {
        let len = result.records.len();
        if total > 0 && total + len > max_bytes {
            result.records = Bytes::new();
        }
        total += result.records.len();
    }
    results
}

/// Parks on every owning shard until one has new data, or `max_wait` passes.
async fn wait_for_data(shard: &Rc<ShardState>, wanted: &[Wanted], max_wait: Duration) {
    let mut by_shard: Vec<(ShardId, Vec<DataWait>)> = Vec::new();
    for w in wanted {
        let Some(topic) = &w.topic else { continue };
        let owner = shard.owner(topic, w.partition);
        let entry = match by_shard.iter_mut().find(|(s, _)| *s == owner) {
            Some(entry) => entry,
            None => {
                by_shard.push((owner, Vec::new()));
                by_shard.last_mut().expect("just pushed")
            }
        };
        entry.1.push((topic.clone(), w.partition, w.offset));
    }
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
