//! DeleteTopics, by name (all versions) or topic id (v6+).

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use strand_shards::ShardId;

use super::str_bytes;
use crate::cluster::{ControllerRequest, TopicRef};
use crate::shard::{ShardRequest, ShardState};

pub async fn handle(shard: &Rc<ShardState>, request: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    let refs: Vec<TopicRef> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| match &t.name {
                Some(name) => TopicRef::Name(name.to_string()),
                None => TopicRef::Id(t.topic_id),
            })
            .collect()
    } else {
        request.topic_names.iter().map(|n| TopicRef::Name(n.to_string())).collect()
    };
    let asked = refs.clone();
    let results = shard
        .call(ShardId(0), |reply| ShardRequest::Controller(ControllerRequest::DeleteTopics { topics: refs, reply }))
        .await
        .unwrap_or_default();
    let mut results = results.into_iter();
    let responses = asked
        .iter()
        .map(|asked| {
            let mut response = match asked {
                TopicRef::Name(name) => DeletableTopicResult::default().with_name(Some(TopicName(str_bytes(name)))),
                TopicRef::Id(id) => DeletableTopicResult::default().with_topic_id(*id),
            };
            match results.next() {
                Some(Ok(meta)) => {
                    response.name = Some(TopicName(str_bytes(&meta.name)));
                    response.topic_id = meta.id;
                }
                Some(Err(e)) => {
                    response.error_code = e.code.code();
                    response.error_message = Some(str_bytes(&e.message));
                }
                None => response.error_code = ResponseError::NotController.code(),
            }
            response
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
