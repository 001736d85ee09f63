//! ListOffsets: earliest (-2), latest (-1), or the first offset at or after a timestamp.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::join::join_all;
use crate::partition::{ListedOffset, PartitionError};
use crate::protocol::error_code::partition_error_code;
use crate::shard::{ShardRequest, ShardState};

pub async fn handle(shard: &Rc<ShardState>, request: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let image = shard.image();
    let mut work = Vec::new();
    for topic in &request.topics {
        let name = topic.name.to_string();
        let known = image.topic(&name).map(|t| t.partitions);
        for p in &topic.partitions {
            let shard = Rc::clone(shard);
            let (name, partition, timestamp) = (name.clone(), p.partition_index, p.timestamp);
            work.push(async move {
                if !known.is_some_and(|n| (0..n).contains(&partition)) {
                    return Err(PartitionError::UnknownTopicOrPartition);
                }
                let owner = shard.owner(&name, partition);
                shard.call(owner, |reply| ShardRequest::ListOffset { topic: name, partition, timestamp, reply }).await?
            });
        }
    }
    let mut results = join_all(work).await.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| partition_response(version, p.partition_index, results.next().expect("one result per partition")))
                .collect();
            ListOffsetsTopicResponse::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn partition_response(version: i16, index: i32, result: Result<ListedOffset, PartitionError>) -> ListOffsetsPartitionResponse {
    let response = ListOffsetsPartitionResponse::default().with_partition_index(index);
    match result {
        Ok(listed) => {
            // leader_epoch exists from v4 on; before that it must stay at its default.
            let response = response.with_offset(listed.offset).with_timestamp(listed.timestamp);
            if version >= 4 { response.with_leader_epoch(0) } else { response }
        }
        Err(e) => {
            let code: ResponseError = partition_error_code(&e);
            response.with_error_code(code.code()).with_offset(-1).with_timestamp(-1)
        }
    }
}
