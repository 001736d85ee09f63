//! OffsetCommit: partitions of unknown topics are refused here (UNKNOWN_TOPIC_OR_PARTITION,
//! as Kafka's KafkaApis does); the rest go to the coordinating shard, which answers once the
//! commit is durable.

use std::collections::HashMap;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::coordinator_route::{call_coordinator, mismatched};
use crate::group::{CommitParams, CommitPartition, GroupRequest, GroupResponse};
use crate::shard::ShardState;

pub async fn handle(shard: &Rc<ShardState>, request: OffsetCommitRequest, version: i16) -> OffsetCommitResponse {
    let image = shard.image();
    let mut known = Vec::new();
    for topic in &request.topics {
        let partitions = image.topic(&topic.name).map_or(0, |t| t.partitions);
        let valid: Vec<CommitPartition> = topic
            .partitions
            .iter()
            .filter(|p| (0..partitions).contains(&p.partition_index))
            .map(|p| CommitPartition {
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 { p.committed_leader_epoch } else { -1 },
                metadata: p.committed_metadata.as_ref().map(ToString::to_string),
            })
            .collect();
        if !valid.is_empty() {
            known.push((topic.name.to_string(), valid));
        }
    }
    let mut codes: HashMap<(String, i32), i16> = HashMap::new();
    if !known.is_empty() {
        let group_id = request.group_id.to_string();
        let params = CommitParams {
            group_id: group_id.clone(),
            generation_id: request.generation_id_or_member_epoch,
            member_id: request.member_id.to_string(),
            group_instance_id: request.group_instance_id.as_ref().map(ToString::to_string),
            retention_time_ms: if version <= 4 { request.retention_time_ms } else { -1 },
            topics: known.clone(),
            version,
        };
        let result = match call_coordinator(shard, &group_id, GroupRequest::OffsetCommit(params)).await {
            Ok(GroupResponse::OffsetCommit(result)) => Ok(result),
            Ok(_) => Err(mismatched("OffsetCommit")),
            Err(e) => Err(e),
        };
        match result {
            Ok(result) => {
                for (topic, partitions) in result {
                    codes.extend(partitions.into_iter().map(|(p, code)| ((topic.clone(), p), code)));
                }
            }
            Err(e) => {
                for (topic, partitions) in &known {
                    codes.extend(partitions.iter().map(|p| ((topic.clone(), p.partition), e.code())));
                }
            }
        }
    }
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let code = codes.get(&(topic.name.to_string(), p.partition_index)).copied().unwrap_or(unknown);
                    OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
