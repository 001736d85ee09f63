//! Produce: each owning shard gets one message with the request's partitions it owns; all
//! partitions are appended at once, and each answers once durable (acks 1/-1) or at once
//! (acks 0).

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use tracing::debug;

use super::join::{group_by_owner, join_all};
use crate::cluster::is_internal_topic;
use crate::log::AppendInfo;
use crate::partition::PartitionError;
use crate::protocol::error_code::partition_error_code;
use crate::shard::{PartitionAppend, ShardRequest, ShardState};

pub async fn handle(shard: &Rc<ShardState>, request: ProduceRequest, _version: i16) -> ProduceResponse {
    let acks = request.acks;
    let image = shard.image();
    // Every partition of the request in order: refused here, or appended by its owner, which
    // gets one message with all of the request's partitions it owns.
    let mut results: Vec<Option<Result<AppendInfo, Refusal>>> = Vec::new();
    let mut routed = Vec::new();
    for topic in &request.topic_data {
        let name = topic.name.to_string();
        let known = image.topic(&name).map(|t| t.partitions);
        // Kafka refuses client appends to its internal topics: their records are the
        // coordinators' own state, written only by them.
        let internal = is_internal_topic(&name);
        for partition in &topic.partition_data {
            let index = partition.index;
            if !known.is_some_and(|n| (0..n).contains(&index)) {
                results.push(Some(Err(Refusal::from(PartitionError::UnknownTopicOrPartition))));
                continue;
            }
            if internal {
                let message = format!("cannot append to internal topic {name}");
                results.push(Some(Err(Refusal { code: ResponseError::InvalidTopicException, message })));
                continue;
            }
            let owner = shard.owner(&name, index);
            let records = partition.records.clone().unwrap_or_default();
            routed.push((owner, (results.len(), PartitionAppend { topic: name.clone(), partition: index, records })));
            results.push(None);
        }
    }
    let (indexes_by_owner, work): (Vec<Vec<usize>>, Vec<_>) = group_by_owner(routed)
        .into_iter()
        .map(|(owner, group)| {
            let (indexes, appends): (Vec<usize>, Vec<PartitionAppend>) = group.into_iter().unzip();
            let shard = Rc::clone(shard);
            (indexes, async move { shard.call(owner, |reply| ShardRequest::Produce { appends, acks, reply }).await })
        })
        .unzip();
    for (indexes, answer) in indexes_by_owner.iter().zip(join_all(work).await) {
        match answer {
            Ok(answers) => {
                for (&i, answer) in indexes.iter().zip(answers) {
                    results[i] = Some(answer.map_err(Refusal::from));
                }
            }
            Err(e) => {
                let refusal = Refusal::from(PartitionError::from(e));
                indexes.iter().for_each(|&i| results[i] = Some(Err(refusal.clone())));
            }
        }
    }
    let mut results = results.into_iter().map(|r| r.expect("every partition is answered"));
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
#[derive(Clone)]
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
