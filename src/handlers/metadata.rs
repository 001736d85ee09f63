//! Metadata: brokers, topics and partition leaders. Requesting an unknown topic creates it when
//! auto.create.topics.enable is on and the client allows it (v4+), as Kafka does.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use strand_shards::ShardId;
use uuid::Uuid;

use super::str_bytes;
use crate::cluster::{invalid_topic_name, is_internal_topic, ControllerRequest, NewTopic, TopicMeta};
use crate::shard::{ShardRequest, ShardState};

/// The id Metadata reports for this single-node cluster.
pub const CLUSTER_ID: &str = "strand-single-node";

/// Kafka's ACL operation codes. strand has no authorizer, so, as Kafka without one, it reports
/// every operation a resource type supports when a client asks (Metadata v8+).
const TOPIC_OPERATIONS: &[u8] = &[3, 4, 5, 6, 7, 8, 10, 11];
pub(super) const CLUSTER_OPERATIONS: &[u8] = &[5, 7, 8, 9, 10, 11, 12];

pub(super) fn bit_field(operations: &[u8]) -> i32 {
    operations.iter().fold(0, |bits, op| bits | 1 << op)
}

pub async fn handle(shard: &Rc<ShardState>, request: MetadataRequest, version: i16) -> MetadataResponse {
    let config = &shard.config;
    let node = BrokerId(config.node_id);
    let broker = MetadataResponseBroker::default()
        .with_node_id(node)
        .with_host(str_bytes(&config.advertised_listeners.host))
        .with_port(i32::from(config.advertised_listeners.port));
    let all_topics = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    let mut topics: Vec<MetadataResponseTopic> = if all_topics {
        shard.image().topics().map(|t| describe(t, node)).collect()
    } else {
        let allow_create = config.auto_create_topics_enable && (version < 4 || request.allow_auto_topic_creation);
        requested_topics(shard, &request, allow_create, node).await
    };
    if version >= 8 && request.include_topic_authorized_operations {
        for topic in topics.iter_mut().filter(|t| t.error_code == 0) {
            topic.topic_authorized_operations = bit_field(TOPIC_OPERATIONS);
        }
    }
    let mut response = MetadataResponse::default();
    if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = bit_field(CLUSTER_OPERATIONS);
    }
    response
        .with_brokers(vec![broker])
        .with_cluster_id(Some(str_bytes(CLUSTER_ID)))
        .with_controller_id(node)
        .with_topics(topics)
}

async fn requested_topics(
    shard: &Rc<ShardState>,
    request: &MetadataRequest,
    allow_create: bool,
    node: BrokerId,
) -> Vec<MetadataResponseTopic> {
    let requested = request.topics.as_deref().unwrap_or_default();
    let image = shard.image();
    let mut missing = Vec::new();
    for topic in requested {
        if let Some(name) = &topic.name {
            if image.topic(name).is_none() && invalid_topic_name(name).is_none() && allow_create {
                missing.push(name.to_string());
            }
        }
    }
    let created = if missing.is_empty() { BTreeMap::new() } else { auto_create(shard, missing).await };
    let image = shard.image();
    requested
        .iter()
        .map(|topic| match &topic.name {
            Some(name) => {
                if let Some(meta) = image.topic(name) {
                    describe(meta, node)
                } else if let Some(code) = created.get(name.as_str()) {
                    unknown(Some(name), Uuid::nil(), *code)
                } else if invalid_topic_name(name).is_some() {
                    unknown(Some(name), Uuid::nil(), ResponseError::InvalidTopicException)
                } else {
                    unknown(Some(name), Uuid::nil(), ResponseError::UnknownTopicOrPartition)
                }
            }
            None => match image.topic_by_id(topic.topic_id) {
                Some(meta) => describe(meta, node),
                None => unknown(None, topic.topic_id, ResponseError::UnknownTopicId),
            },
        })
        .collect()
}

/// Creates `names` with the broker defaults; returns the error of each that failed.
async fn auto_create(shard: &Rc<ShardState>, names: Vec<String>) -> BTreeMap<String, ResponseError> {
    let topics = names
        .iter()
        .map(|name| NewTopic {
            name: name.clone(),
            num_partitions: -1,
            replication_factor: -1,
            has_assignments: false,
            configs: BTreeMap::new(),
        })
        .collect();
    let results = shard
        .call(ShardId(0), |reply| {
            ShardRequest::Controller(ControllerRequest::CreateTopics { topics, validate_only: false, reply })
        })
        .await;
    let mut failed = BTreeMap::new();
    match results {
        Ok(results) => {
            for (name, result) in names.into_iter().zip(results) {
                // Another request may have created it first; that is success for us.
                if let Err(e) = result {
                    if e.code != ResponseError::TopicAlreadyExists {
                        failed.insert(name, e.code);
                    }
                }
            }
        }
        Err(_) => failed.extend(names.into_iter().map(|n| (n, ResponseError::LeaderNotAvailable))),
    }
    failed
}

fn describe(topic: &Arc<TopicMeta>, node: BrokerId) -> MetadataResponseTopic {
    let partitions = (0..topic.partitions)
        .map(|index| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(&topic.name))))
        .with_topic_id(topic.id)
        .with_is_internal(is_internal_topic(&topic.name))
        .with_partitions(partitions)
}

fn unknown(name: Option<&TopicName>, id: Uuid, code: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default().with_name(name.cloned()).with_topic_id(id).with_error_code(code.code())
}
