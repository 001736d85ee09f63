//! OffsetDelete: removes a group's committed offsets for topics it does not consume.
//! Partitions of unknown topics are refused here, as Kafka's KafkaApis does.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::coordinator_route::{call_coordinator, mismatched};
use crate::group::{GroupRequest, GroupResponse};
use crate::shard::ShardState;

pub async fn handle(shard: &Rc<ShardState>, request: OffsetDeleteRequest, _version: i16) -> OffsetDeleteResponse {
    let image = shard.image();
    let known: Vec<(String, Vec<i32>)> = request
        .topics
        .iter()
        .filter_map(|t| {
            let count = image.topic(&t.name)?.partitions;
            let partitions: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).filter(|p| (0..count).contains(p)).collect();
            (!partitions.is_empty()).then(|| (t.name.to_string(), partitions))
        })
        .collect();
    let group_id = request.group_id.to_string();
    let response = match call_coordinator(shard, &group_id, GroupRequest::OffsetDelete { group_id: group_id.clone(), topics: known }).await {
        Ok(GroupResponse::OffsetDelete(response)) => response,
        Ok(_) => OffsetDeleteResponse::default().with_error_code(mismatched("OffsetDelete").code()),
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
    };
    if response.error_code != 0 {
        return response;
    }
    merge(&request, response)
}

/// Every asked partition in request order: the coordinator's answer, or
/// UNKNOWN_TOPIC_OR_PARTITION for those not sent to it.
fn merge(request: &OffsetDeleteRequest, answered: OffsetDeleteResponse) -> OffsetDeleteResponse {
    let code_of = |topic: &str, partition: i32| {
        answered
            .topics
            .iter()
            .filter(|t| t.name.as_str() == topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .map_or(ResponseError::UnknownTopicOrPartition.code(), |p| p.error_code)
    };
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| OffsetDeleteResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code_of(&t.name, p.partition_index)))
                .collect();
            OffsetDeleteResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
