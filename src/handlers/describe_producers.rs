//! DescribeProducers: the idempotent producers each partition knows, from its owning shard.

use std::rc::Rc;

use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::join::join_all;
use crate::partition::PartitionError;
use crate::protocol::error_code::partition_error_code;
use crate::shard::{ShardRequest, ShardState};

pub async fn handle(shard: &Rc<ShardState>, request: DescribeProducersRequest, _version: i16) -> DescribeProducersResponse {
    let image = shard.image();
    let mut work = Vec::new();
    for topic in &request.topics {
        let name = topic.name.to_string();
        let known = image.topic(&name).map(|t| t.partitions);
        for &partition in &topic.partition_indexes {
            let (shard, name) = (Rc::clone(shard), name.clone());
            work.push(async move {
                if !known.is_some_and(|n| (0..n).contains(&partition)) {
                    return Err(PartitionError::UnknownTopicOrPartition);
                }
                let owner = shard.owner(&name, partition);
                shard.call(owner, |reply| ShardRequest::DescribeProducers { topic: name, partition, reply }).await?
            });
        }
    }
    let mut results = join_all(work).await.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&index| {
                    let response = PartitionResponse::default().with_partition_index(index);
                    match results.next().expect("one result per partition") {
                        Ok(producers) => response.with_active_producers(
                            producers
                                .into_iter()
                                .map(|p| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(p.producer_id))
                                        .with_producer_epoch(i32::from(p.epoch))
                                        .with_last_sequence(p.last_sequence)
                                        .with_last_timestamp(p.last_timestamp)
                                        .with_coordinator_epoch(-1)
                                        .with_current_txn_start_offset(-1)
                                })
                                .collect(),
                        ),
                        Err(e) => response.with_error_code(partition_error_code(&e).code()),
                    }
                })
                .collect();
            TopicResponse::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
