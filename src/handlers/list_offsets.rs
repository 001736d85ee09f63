//! ListOffsets: earliest (-2), latest (-1), or the first offset at or after a timestamp.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::join::ask_owners;
use crate::partition::{ListedOffset, PartitionError};
use crate::protocol::error_code::partition_error_code;
use crate::shard::{ShardRequest, ShardState};

pub async fn handle(shard: &Rc<ShardState>, request: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let partitions = request.topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), p.partition_index, p.timestamp)));
    let asked = ask_owners(shard, partitions, |topic, partition, timestamp, reply| ShardRequest::ListOffset { topic, partition, timestamp, reply });
    let mut results = asked.await.into_iter();
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
