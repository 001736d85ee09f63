//! CreateTopics: validated and applied by the controller on shard 0.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use strand_shards::ShardId;

use super::str_bytes;
use crate::cluster::{ControllerRequest, NewTopic};
use crate::shard::{ShardRequest, ShardState};

pub async fn handle(shard: &Rc<ShardState>, request: CreateTopicsRequest, _version: i16) -> CreateTopicsResponse {
    let mut duplicates = BTreeMap::new();
    for topic in &request.topics {
        *duplicates.entry(topic.name.to_string()).or_insert(0) += 1;
    }
    let topics: Vec<NewTopic> = request
        .topics
        .iter()
        .map(|t| NewTopic {
            name: t.name.to_string(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            has_assignments: !t.assignments.is_empty(),
            configs: t
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect(),
        })
        .collect();
    // A name given twice in one request is refused for both, as Kafka does.
    let unique: Vec<NewTopic> = topics.iter().filter(|t| duplicates[&t.name] == 1).cloned().collect();
    let validate_only = request.validate_only;
    let results = shard
        .call(ShardId(0), |reply| {
            ShardRequest::Controller(ControllerRequest::CreateTopics { topics: unique, validate_only, reply })
        })
        .await;
    let mut results = match results {
        Ok(results) => results.into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    let responses = topics
        .iter()
        .map(|topic| {
            let mut result = CreatableTopicResult::default().with_name(str_bytes(&topic.name).into());
            if duplicates[&topic.name] > 1 {
                return result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes("topic appears more than once in the request")));
            }
            match results.next() {
                Some(Ok(meta)) => {
                    result.topic_id = meta.id;
                    result.num_partitions = meta.partitions;
                    result.replication_factor = 1;
                    result
                }
                Some(Err(e)) => result.with_error_code(e.code.code()).with_error_message(Some(str_bytes(&e.message))),
                None => result.with_error_code(ResponseError::NotController.code()),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(responses)
}
