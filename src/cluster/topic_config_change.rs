//! AlterConfigs and IncrementalAlterConfigs on topics, in the controller: the new overrides are
//! computed from the controller's own image (so concurrent changes never lose one another),
//! validated with `TopicConfig::resolve` (INVALID_CONFIG with the reason), persisted with the
//! image, and applied by every shard to its open partitions before the answer goes out.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use strand_config::{alter_topic_overrides, AlterConfigOp, TopicConfig};
use tracing::info;

use super::controller::{Controller, TopicError, TopicResult};
use super::{invalid_topic_name, MetadataImage, TopicMeta};

/// How a topic's overrides change.
#[derive(Debug, Clone)]
pub enum ConfigAlteration {
    /// AlterConfigs: these become the topic's overrides; every other override is removed.
    Replace(BTreeMap<String, String>),
    /// IncrementalAlterConfigs: operations on single keys, each key at most once.
    Incremental(Vec<(String, AlterConfigOp)>),
}

/// A change to one topic's configs.
#[derive(Debug, Clone)]
pub struct TopicConfigChange {
    pub topic: String,
    pub alteration: ConfigAlteration,
}

impl Controller {
    pub(super) async fn alter_topic_configs(&mut self, changes: Vec<TopicConfigChange>, validate_only: bool) -> Vec<TopicResult> {
        let mut next = (*self.image).clone();
        let mut changed = Vec::new();
        let mut results = Vec::with_capacity(changes.len());
        for change in changes {
            let result = self.altered(&next, change);
            if let Ok(meta) = &result {
                if next.topic(&meta.name).is_some_and(|before| before.configs != meta.configs) {
                    changed.push(Arc::clone(meta));
                    next = next.with_topic((**meta).clone());
                }
            }
            results.push(result);
        }
        if !validate_only && !changed.is_empty() {
            if let Some(failure) = self.publish_or_fail(next).await {
                return failure.fail_all(results);
            }
            for meta in &changed {
                info!(topic = %meta.name, configs = ?meta.configs, "topic configs altered");
            }
        }
        results
    }

    /// The topic with its overrides changed as `change` asks, or why they cannot be.
    fn altered(&self, image: &MetadataImage, change: TopicConfigChange) -> TopicResult {
        if let Some(reason) = invalid_topic_name(&change.topic) {
            return Err(TopicError::new(ResponseError::InvalidTopicException, reason));
        }
        let Some(meta) = image.topic(&change.topic) else {
            return Err(TopicError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("topic '{}' does not exist", change.topic),
            ));
        };
        let broker = &self.shard.config;
        let configs = match change.alteration {
            ConfigAlteration::Replace(configs) => TopicConfig::resolve(broker, &configs).map(|_| configs),
            ConfigAlteration::Incremental(ops) => alter_topic_overrides(broker, &meta.configs, &ops),
        }
        .map_err(|e| TopicError::new(ResponseError::InvalidConfig, e.to_string()))?;
        Ok(Arc::new(TopicMeta { configs, ..(**meta).clone() }))
    }
}
