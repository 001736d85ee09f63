//! Produce: each partition's records go to the shard that owns it; partitions are appended
//! concurrently, and each answers once durable (acks 1/-1) or at once (acks 0).

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use tracing::debug;

use super::join::join_all;
use crate::cluster::is_internal_topic;
use crate::log::AppendInfo;
use crate::partition::PartitionError;
use crate::protocol::error_code::partition_error_code;
use crate::shard::{ShardRequest, ShardState};

pub async fn handle(shard: &Rc<ShardState>, request: ProduceRequest, _version: i16) -> ProduceResponse {
    let acks = request.acks;
    let image = shard.image();
    let mut work = Vec::new();
    for topic in &request.topic_data {
        let name = topic.name.to_string();
        let known = image.topic(&name).map(|t| t.partitions);
        // Kafka refuses client appends to its internal topics: their records are the
        // coordinators' own state, written only by them.
        let internal = is_internal_topic(&name);
        for partition in &topic.partition_data {
            let shard = Rc::clone(shard);
            let name = name.clone();
            let index = partition.index;
            let records = partition.records.clone().unwrap_or_default();
            work.push(async move {
                if !known.is_some_and(|n| (0..n).contains(&index)) {
                    return Err(Refusal::from(PartitionError::UnknownTopicOrPartition));
                }
                if internal {
                    return Err(Refusal {
                        code: ResponseError::InvalidTopicException,
                        message: format!("cannot append to internal topic {name}"),
                    });
                }
                let owner = shard.owner(&name, index);
                shard
                    .call(owner, |reply| ShardRequest::Produce { topic: name, partition: index, records, acks, reply })
                    .await
                    .map_err(PartitionError::from)
                    .and_then(|r| r)
                    .map_err(Refusal::from)
            });
        }
    }
    let mut results = join_all(work).await.into_iter();
    let responses = request
        .topic_data
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .iter()
                .map(|p| partition_response(&topic.name, p.index, results.next().expect("one result per partition")))
                .collect();
            TopicProduceResponse::default().with_name(topic.name.clone()).with_partition_responses(partitions)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}

/// Why one partition's records were not appended.
struct Refusal {
    code: ResponseError,
    message: String,
}

impl From<PartitionError> for Refusal {
    fn from(error: PartitionError) -> Self {
        Self { code: partition_error_code(&error), message: error.to_string() }
    }
}

fn partition_response(topic: &str, index: i32, result: Result<AppendInfo, Refusal>) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(index).with_log_append_time_ms(-1);
    match result {
        Ok(info) => response.with_base_offset(info.base_offset).with_log_start_offset(info.log_start_offset),
        Err(refusal) => {
            let code = refusal.code;
            debug!(topic, partition = index, error = %refusal.message, "produce refused");
            let message = (code != ResponseError::UnknownTopicOrPartition).then(|| super::str_bytes(&refusal.message));
            response.with_error_code(code.code()).with_base_offset(-1).with_log_start_offset(-1).with_error_message(message)
        }
    }
}
