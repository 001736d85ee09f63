//! DeleteRecords: each partition's log start offset moves forward on its owning shard (-1 means
//! the high watermark); the answer is the new low watermark. Errors as Kafka: unknown
//! partitions, offsets past the high watermark (OFFSET_OUT_OF_RANGE), topics whose
//! cleanup.policy lacks delete (POLICY_VIOLATION).

use std::rc::Rc;

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use tracing::{debug, info};

use super::join::join_all;
use crate::partition::PartitionError;
use crate::protocol::error_code::partition_error_code;
use crate::shard::{ShardRequest, ShardState};

/// Kafka's low watermark of a partition whose records were not deleted.
const INVALID_LOW_WATERMARK: i64 = -1;

pub async fn handle(shard: &Rc<ShardState>, request: DeleteRecordsRequest, _version: i16) -> DeleteRecordsResponse {
    let image = shard.image();
    let mut work = Vec::new();
    for topic in &request.topics {
        let name = topic.name.to_string();
        let known = image.topic(&name).map(|t| t.partitions);
        for p in &topic.partitions {
            let shard = Rc::clone(shard);
            let (name, partition, offset) = (name.clone(), p.partition_index, p.offset);
            work.push(async move {
                if !known.is_some_and(|n| (0..n).contains(&partition)) {
                    return Err(PartitionError::UnknownTopicOrPartition);
                }
                let owner = shard.owner(&name, partition);
                shard.call(owner, |reply| ShardRequest::DeleteRecords { topic: name, partition, offset, reply }).await?
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
                .map(|p| {
                    let result = results.next().expect("one result per partition");
                    partition_result(topic.name.as_str(), p.partition_index, p.offset, result)
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

fn partition_result(topic: &str, index: i32, offset: i64, result: Result<i64, PartitionError>) -> DeleteRecordsPartitionResult {
    let response = DeleteRecordsPartitionResult::default().with_partition_index(index);
    match result {
        Ok(low_watermark) => {
            info!(topic, partition = index, offset, log_start_offset = low_watermark, "records deleted");
            response.with_low_watermark(low_watermark)
        }
        Err(e) => {
            debug!(topic, partition = index, offset, error = %e, "delete records refused");
            response.with_low_watermark(INVALID_LOW_WATERMARK).with_error_code(partition_error_code(&e).code())
        }
    }
}
