//! The cluster metadata every shard reads: topics, their ids, partition counts and configs.
//!
//! An image is immutable; the controller makes a new one for each change and sends it to every
//! shard, so shards share snapshots (behind `Arc`) and never a mutable structure. On disk it is
//! `<log.dirs>/cluster-metadata.toml`, replaced atomically on each change.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    /// Topic-level config overrides given at creation (Kafka names).
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    topics: BTreeMap<String, Arc<TopicMeta>>,
    by_id: HashMap<Uuid, String>,
    /// Producer ids below this may have been handed out; the controller hands out ids from a
    /// block it has persisted, so an id is never given twice, across restarts too.
    producer_id_block_end: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredImage {
    #[serde(default)]
    producer_id_block_end: i64,
    #[serde(default)]
    topics: Vec<TopicMeta>,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<&Arc<TopicMeta>> {
        self.by_id.get(&id).and_then(|name| self.topics.get(name))
    }

    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicMeta>> {
        self.topics.values()
    }

    /// A new image with `topic` added (or replaced).
    pub fn with_topic(&self, topic: TopicMeta) -> Self {
        let mut next = self.clone();
        next.by_id.insert(topic.id, topic.name.clone());
        next.topics.insert(topic.name.clone(), Arc::new(topic));
        next
    }

    /// A new image without the topic `name`.
    pub fn without_topic(&self, name: &str) -> Self {
        let mut next = self.clone();
        if let Some(topic) = next.topics.remove(name) {
            next.by_id.remove(&topic.id);
        }
        next
    }

    pub fn producer_id_block_end(&self) -> i64 {
        self.producer_id_block_end
    }

    /// A new image whose producer id block ends at `end`.
    pub fn with_producer_id_block_end(&self, end: i64) -> Self {
        let mut next = self.clone();
        next.producer_id_block_end = end;
        next
    }

    pub fn to_toml(&self) -> String {
        let stored = StoredImage {
            producer_id_block_end: self.producer_id_block_end,
            topics: self.topics.values().map(|t| (**t).clone()).collect(),
        };
        toml::to_string(&stored).expect("metadata serializes")
    }

    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        let stored: StoredImage = toml::from_str(text)?;
        let image = stored.topics.into_iter().fold(Self::default(), |image, topic| image.with_topic(topic));
        Ok(image.with_producer_id_block_end(stored.producer_id_block_end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_round_trips_through_its_file_format() {
        let topic = TopicMeta {
            name: "orders".into(),
            id: Uuid::new_v4(),
            partitions: 3,
            configs: BTreeMap::from([("segment.bytes".into(), "1024".into())]),
        };
        let image = MetadataImage::default().with_topic(topic.clone());
        let back = MetadataImage::from_toml(&image.to_toml()).unwrap();
        assert_eq!(back.topic("orders").map(|t| (**t).clone()), Some(topic.clone()));
        assert_eq!(back.topic_by_id(topic.id).map(|t| t.name.as_str()), Some("orders"));
        assert!(back.without_topic("orders").topic_by_id(topic.id).is_none());
    }
}
