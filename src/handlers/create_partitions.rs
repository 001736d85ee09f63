//! CreatePartitions: grows topics through the controller on shard 0, which persists the new
//! partition counts and waits until every shard has opened the partitions placed on it.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use strand_shards::ShardId;

use super::str_bytes;
use crate::cluster::{ControllerRequest, NewPartitions};
use crate::shard::{ShardRequest, ShardState};

pub async fn handle(shard: &Rc<ShardState>, request: CreatePartitionsRequest, _version: i16) -> CreatePartitionsResponse {
    let mut named = BTreeMap::new();
    for topic in &request.topics {
        *named.entry(topic.name.as_str()).or_insert(0) += 1;
    }
    // A topic named twice is refused for both, as Kafka does; the rest go to the controller.
    let unique: Vec<NewPartitions> = request
        .topics
        .iter()
        .filter(|t| named[t.name.as_str()] == 1)
        .map(|t| NewPartitions {
            name: t.name.to_string(),
            count: t.count,
            assignments: t.assignments.as_ref().map(|a| a.iter().map(|p| p.broker_ids.iter().map(|id| id.0).collect()).collect()),
        })
        .collect();
    let validate_only = request.validate_only;
    let results = if unique.is_empty() {
        Vec::new()
    } else {
        shard
            .call(ShardId(0), |reply| {
                ShardRequest::Controller(ControllerRequest::CreatePartitions { topics: unique, validate_only, reply })
            })
            .await
            .unwrap_or_default()
    };
    let mut results = results.into_iter();
    let responses = request
        .topics
        .iter()
        .map(|topic| {
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            let refused = |code: ResponseError, message: &str| {
                result.clone().with_error_code(code.code()).with_error_message(Some(str_bytes(message)))
            };
            if named[topic.name.as_str()] > 1 {
                return refused(ResponseError::InvalidRequest, "Duplicate topic name.");
            }
            match results.next() {
                Some(Ok(_)) => result.clone(),
                Some(Err(e)) => refused(e.code, &e.message),
                None => refused(ResponseError::NotController, "the controller is not available"),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(responses)
}
