//! The controller: the single writer of cluster metadata. Runs on shard 0.
//!
//! Requests are handled one at a time: validate, make the next image, persist it to
//! `cluster-metadata.toml` (atomic replace), then publish it to every shard and wait until all
//! have applied it, so a CreateTopics answer means the partitions are open and writable. Topic
//! creation and deletion are here; growing topics is in `new_partitions`, changing their
//! configs in `topic_config_change`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use strand_config::TopicConfig;
use strand_io::{fs, IoError};
use strand_shards::Reply;
use tracing::{error, info, warn};
use uuid::Uuid;

use super::{
    invalid_topic_name, is_internal_topic, MetadataImage, NewPartitions, TopicConfigChange, TopicMeta,
    GROUP_METADATA_TOPIC_NAME,
};
use crate::shard::ShardState;

const METADATA_FILE: &str = "cluster-metadata.toml";

/// Segment size of __consumer_offsets, as Kafka's offsets.topic.segment.bytes default: a
/// smaller segment than data topics, since the whole partition is read at load time.
const OFFSETS_TOPIC_SEGMENT_BYTES: &str = "104857600";

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// -1 means the broker's num.partitions.
    pub num_partitions: i32,
    /// -1 means the default (1).
    pub replication_factor: i16,
    /// Manual replica assignments were given (not supported on a single node).
    pub has_assignments: bool,
    pub configs: BTreeMap<String, String>,
}

/// A topic named by name or by id, as DeleteTopics allows.
#[derive(Debug, Clone)]
pub enum TopicRef {
    Name(String),
    Id(Uuid),
}

/// Why one topic of a request failed.
#[derive(Debug, Clone)]
pub struct TopicError {
    pub code: ResponseError,
    pub message: String,
}

pub type TopicResult = Result<Arc<TopicMeta>, TopicError>;

impl TopicError {
    pub(super) fn new(code: ResponseError, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// `results` with every success replaced by this error (the change was not made).
    pub(super) fn fail_all(&self, results: Vec<TopicResult>) -> Vec<TopicResult> {
        results.into_iter().map(|r| r.and(Err(self.clone()))).collect()
    }
}

pub enum ControllerRequest {
    CreateTopics { topics: Vec<NewTopic>, validate_only: bool, reply: Reply<Vec<TopicResult>> },
    DeleteTopics { topics: Vec<TopicRef>, reply: Reply<Vec<TopicResult>> },
    /// A producer id never handed out before (InitProducerId).
    AllocateProducerId { reply: Reply<Result<i64, TopicError>> },
    CreatePartitions { topics: Vec<NewPartitions>, validate_only: bool, reply: Reply<Vec<TopicResult>> },
    AlterTopicConfigs { changes: Vec<TopicConfigChange>, validate_only: bool, reply: Reply<Vec<TopicResult>> },
}

/// Producer ids persisted per metadata write.
const PRODUCER_ID_BLOCK: i64 = 1000;

pub struct Controller {
    /// The next producer id to hand out, inside the persisted block; None until the first
    /// allocation after a start.
    next_producer_id: Option<i64>,
    pub(super) shard: Rc<ShardState>,
    pub(super) image: Arc<MetadataImage>,
    path: PathBuf,
}

impl Controller {
    /// Loads the stored metadata (empty on a new data directory).
    pub async fn load(shard: Rc<ShardState>) -> Result<Self, ControllerError> {
        let path = shard.config.log_dirs.join(METADATA_FILE);
        let image = match fs::read_whole(&path).await? {
            Some(bytes) => {
                let text = std::str::from_utf8(&bytes).map_err(|e| ControllerError::Corrupt(e.to_string()))?;
                MetadataImage::from_toml(text).map_err(|e| ControllerError::Corrupt(e.to_string()))?
            }
            None => MetadataImage::default(),
        };
        Ok(Self { next_producer_id: None, shard, image: Arc::new(image), path })
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image)
    }

    /// Creates __consumer_offsets with offsets.topic.num.partitions if it does not exist yet,
    /// and persists the image. Runs at start, before the first image is published, so no client
    /// ever sees a broker without it (and none can auto-create it with the wrong settings).
    pub async fn create_internal_topics(&mut self) -> Result<(), ControllerError> {
        if let Some(existing) = self.image.topic(GROUP_METADATA_TOPIC_NAME) {
            if existing.partitions != self.shard.config.offsets_topic_num_partitions {
                warn!(
                    topic = GROUP_METADATA_TOPIC_NAME,
                    partitions = existing.partitions,
                    configured = self.shard.config.offsets_topic_num_partitions,
                    "offsets.topic.num.partitions differs from the existing topic, which keeps its partitions"
                );
            }
            return Ok(());
        }
        let topic = TopicMeta {
            name: GROUP_METADATA_TOPIC_NAME.to_owned(),
            id: Uuid::new_v4(),
            partitions: self.shard.config.offsets_topic_num_partitions,
            // Compacted, as Kafka's: only the newest commit of each group-partition is kept.
            configs: BTreeMap::from([
                ("cleanup.policy".to_owned(), "compact".to_owned()),
                ("segment.bytes".to_owned(), OFFSETS_TOPIC_SEGMENT_BYTES.to_owned()),
            ]),
        };
        let next = self.image.with_topic(topic);
        fs::write_atomic(&self.path, Bytes::from(next.to_toml())).await?;
        self.image = Arc::new(next);
        info!(topic = GROUP_METADATA_TOPIC_NAME, partitions = self.shard.config.offsets_topic_num_partitions, "internal topic created");
        Ok(())
    }

    /// Handles requests until every sender is gone.
    pub async fn run(mut self, requests: flume::Receiver<ControllerRequest>) {
        while let Ok(request) = requests.recv_async().await {
            match request {
                ControllerRequest::CreateTopics { topics, validate_only, reply } => {
                    reply.send(self.create_topics(topics, validate_only).await);
                }
                ControllerRequest::DeleteTopics { topics, reply } => {
                    reply.send(self.delete_topics(topics).await);
                }
                ControllerRequest::AllocateProducerId { reply } => {
                    reply.send(self.allocate_producer_id().await);
                }
                ControllerRequest::CreatePartitions { topics, validate_only, reply } => {
                    reply.send(self.create_partitions(topics, validate_only).await);
                }
                ControllerRequest::AlterTopicConfigs { changes, validate_only, reply } => {
                    reply.send(self.alter_topic_configs(changes, validate_only).await);
                }
            }
        }
    }

    /// The next producer id, persisting a new block of ids first when the current one is used
    /// up (ids of a block not handed out before a restart are skipped, never reused).
    async fn allocate_producer_id(&mut self) -> Result<i64, TopicError> {
        if self.next_producer_id.is_none_or(|id| id >= self.image.producer_id_block_end()) {
            let start = self.image.producer_id_block_end();
            let next = self.image.with_producer_id_block_end(start + PRODUCER_ID_BLOCK);
            fs::write_atomic(&self.path, Bytes::from(next.to_toml()))
                .await
                .map_err(|e| TopicError::new(ResponseError::CoordinatorNotAvailable, e.to_string()))?;
            self.image = Arc::new(next);
            self.next_producer_id = Some(start);
        }
        let id = self.next_producer_id.expect("set above");
        self.next_producer_id = Some(id + 1);
        Ok(id)
    }

    async fn create_topics(&mut self, topics: Vec<NewTopic>, validate_only: bool) -> Vec<TopicResult> {
        let mut next = (*self.image).clone();
        let mut results = Vec::with_capacity(topics.len());
        for topic in topics {
            let result = self.validate_new_topic(&next, topic);
            if let Ok(meta) = &result {
                next = next.with_topic((**meta).clone());
            }
            results.push(result);
        }
        let created = results.iter().any(Result::is_ok);
        if !validate_only && created {
            if let Some(failure) = self.publish_or_fail(next).await {
                return failure.fail_all(results);
            }
            for meta in results.iter().flatten() {
                info!(topic = %meta.name, partitions = meta.partitions, topic_id = %meta.id, "topic created");
            }
        }
        results
    }

    fn validate_new_topic(&self, image: &MetadataImage, topic: NewTopic) -> TopicResult {
        if let Some(reason) = invalid_topic_name(&topic.name) {
            return Err(TopicError::new(ResponseError::InvalidTopicException, reason));
        }
        if image.topic(&topic.name).is_some() {
            return Err(TopicError::new(ResponseError::TopicAlreadyExists, format!("topic '{}' already exists", topic.name)));
        }
        let partitions = if topic.num_partitions == -1 { self.shard.config.num_partitions } else { topic.num_partitions };
        if partitions < 1 {
            return Err(TopicError::new(ResponseError::InvalidPartitions, "number of partitions must be at least 1"));
        }
        if topic.has_assignments {
            return Err(TopicError::new(ResponseError::InvalidRequest, "manual replica assignment is not supported"));
        }
        if !matches!(topic.replication_factor, -1 | 1) {
            return Err(TopicError::new(
                ResponseError::InvalidReplicationFactor,
                format!("replication factor {} is larger than the 1 available broker", topic.replication_factor),
            ));
        }
        if let Err(e) = TopicConfig::resolve(&self.shard.config, &topic.configs) {
            return Err(TopicError::new(ResponseError::InvalidConfig, e.to_string()));
        }
        Ok(Arc::new(TopicMeta { name: topic.name, id: Uuid::new_v4(), partitions, configs: topic.configs }))
    }

    async fn delete_topics(&mut self, topics: Vec<TopicRef>) -> Vec<TopicResult> {
        let mut next = (*self.image).clone();
        let mut results = Vec::with_capacity(topics.len());
        for topic in topics {
            let found = match &topic {
                TopicRef::Name(name) => next.topic(name).cloned(),
                TopicRef::Id(id) => next.topic_by_id(*id).cloned(),
            };
            let result = match (found, topic) {
                // Kafka lets a principal with DELETE on the topic remove it, and losing it loses
                // every committed offset; strand has no principals, so no one holds that right.
                (Some(meta), _) if is_internal_topic(&meta.name) => Err(TopicError::new(
                    ResponseError::TopicAuthorizationFailed,
                    format!("internal topic '{}' cannot be deleted", meta.name),
                )),
                (Some(meta), _) => {
                    next = next.without_topic(&meta.name);
                    Ok(meta)
                }
                (None, TopicRef::Name(name)) => Err(TopicError::new(
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic '{name}' does not exist"),
                )),
                (None, TopicRef::Id(id)) => {
                    Err(TopicError::new(ResponseError::UnknownTopicId, format!("topic id {id} does not exist")))
                }
            };
            results.push(result);
        }
        if results.iter().any(Result::is_ok) {
            if let Some(failure) = self.publish_or_fail(next).await {
                return failure.fail_all(results);
            }
            for meta in results.iter().flatten() {
                info!(topic = %meta.name, topic_id = %meta.id, "topic deleted");
            }
        }
        results
    }

    /// Publishes `next`; if that fails, the error every topic of the request answers.
    pub(super) async fn publish_or_fail(&mut self, next: MetadataImage) -> Option<TopicError> {
        let e = self.publish(next).await.err()?;
        error!(error = %e, "persisting cluster metadata failed");
        Some(TopicError::new(ResponseError::KafkaStorageError, e.to_string()))
    }

    /// Persists `next`, then has every shard apply it.
    pub async fn publish(&mut self, next: MetadataImage) -> Result<(), ControllerError> {
        fs::write_atomic(&self.path, Bytes::from(next.to_toml())).await?;
        self.image = Arc::new(next);
        self.shard.broadcast_metadata(Arc::clone(&self.image)).await.map_err(ControllerError::Shards)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("cluster metadata file is corrupt: {0}")]
    Corrupt(String),
    #[error("publishing metadata: {0}")]
    Shards(#[source] strand_shards::ShardsError),
}
