//! DescribeProducers: the idempotent producers each partition knows, from its owning shard.

use std::rc::Rc;

use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::join::ask_owners;
use crate::protocol::error_code::partition_error_code;
use crate::shard::{ShardRequest, ShardState};

pub async fn handle(shard: &Rc<ShardState>, request: DescribeProducersRequest, _version: i16) -> DescribeProducersResponse {
    let partitions = request.topics.iter().flat_map(|t| t.partition_indexes.iter().map(|&p| (t.name.to_string(), p, ())));
    let asked = ask_owners(shard, partitions, |topic, partition, (), reply| ShardRequest::DescribeProducers { topic, partition, reply });
    let mut results = asked.await.into_iter();
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
