//! DeleteRecords: each partition's log start offset moves forward on its owning shard (-1 means
//! the high watermark); the answer is the new low watermark. Errors as Kafka: unknown
//! partitions, offsets past the high watermark (OFFSET_OUT_OF_RANGE), topics whose
//! cleanup.policy lacks delete (POLICY_VIOLATION).

use std::rc::Rc;

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use tracing::{debug, info};

use super::join::ask_owners;
use crate::partition::PartitionError;
use crate::protocol::error_code::partition_error_code;
use crate::shard::{ShardRequest, ShardState};

/// Kafka's low watermark of a partition whose records were not deleted.
const INVALID_LOW_WATERMARK: i64 = -1;

pub async fn handle(shard: &Rc<ShardState>, request: DeleteRecordsRequest, _version: i16) -> DeleteRecordsResponse {
    let partitions = request.topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), p.partition_index, p.offset)));
    let asked = ask_owners(shard, partitions, |topic, partition, offset, reply| ShardRequest::DeleteRecords { topic, partition, offset, reply });
    let mut results = asked.await.into_iter();
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
