//! The committed offsets of the groups one shard coordinates, in memory: the latest durable
//! value of every OffsetCommit key of its __consumer_offsets partitions. Values change only
//! after their records are durable (or while loading them), in log order.

use std::collections::{BTreeMap, HashMap};

/// One committed offset (Kafka's OffsetAndMetadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    pub committed_offset: i64,
    /// -1 when the committer did not give one.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// An explicit expiry (OffsetCommit v2-v4 with a retention time).
    pub expire_timestamp_ms: Option<i64>,
}

type TopicOffsets = BTreeMap<i32, OffsetAndMetadata>;

#[derive(Default)]
pub struct OffsetStore {
    by_group: HashMap<String, BTreeMap<String, TopicOffsets>>,
}

impl OffsetStore {
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&OffsetAndMetadata> {
        self.by_group.get(group)?.get(topic)?.get(&partition)
    }

    pub fn put(&mut self, group: &str, topic: &str, partition: i32, offset: OffsetAndMetadata) {
        self.by_group
            .entry(group.to_owned())
            .or_default()
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, offset);
    }

    pub fn remove(&mut self, group: &str, topic: &str, partition: i32) {
        let Some(topics) = self.by_group.get_mut(group) else { return };
        if let Some(partitions) = topics.get_mut(topic) {
            partitions.remove(&partition);
            if partitions.is_empty() {
                topics.remove(topic);
            }
        }
        if topics.is_empty() {
            self.by_group.remove(group);
        }
    }

    pub fn has_offsets(&self, group: &str) -> bool {
        self.by_group.contains_key(group)
    }

    /// Every committed offset of `group`, by topic then partition.
    pub fn group_offsets(&self, group: &str) -> impl Iterator<Item = (&str, i32, &OffsetAndMetadata)> {
        self.by_group
            .get(group)
            .into_iter()
            .flat_map(|topics| topics.iter())
            .flat_map(|(topic, partitions)| partitions.iter().map(move |(p, o)| (topic.as_str(), *p, o)))
    }

    /// The (group, partition) keys holding an offset of `topic`.
    pub fn keys_of_topic(&self, topic: &str) -> Vec<(String, i32)> {
        self.by_group
            .iter()
            .filter_map(|(group, topics)| Some((group, topics.get(topic)?)))
            .flat_map(|(group, partitions)| partitions.keys().map(move |p| (group.clone(), *p)))
            .collect()
    }

    pub fn remove_group(&mut self, group: &str) {
        self.by_group.remove(group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: i64) -> OffsetAndMetadata {
        OffsetAndMetadata { committed_offset: offset, leader_epoch: -1, metadata: String::new(), commit_timestamp_ms: 0, expire_timestamp_ms: None }
    }

    #[test]
    fn the_latest_commit_wins_and_removal_forgets_empty_groups() {
        let mut store = OffsetStore::default();
        store.put("g", "t", 0, at(1));
        store.put("g", "t", 0, at(5));
        store.put("g", "u", 2, at(7));
        assert_eq!(store.get("g", "t", 0).map(|o| o.committed_offset), Some(5));
        let all: Vec<(&str, i32, i64)> = store.group_offsets("g").map(|(t, p, o)| (t, p, o.committed_offset)).collect();
        assert_eq!(all, [("t", 0, 5), ("u", 2, 7)]);
        assert_eq!(store.keys_of_topic("u"), [("g".to_owned(), 2)]);
        store.remove("g", "t", 0);
        store.remove("g", "u", 2);
        assert!(!store.has_offsets("g"));
        assert_eq!(store.group_offsets("g").count(), 0);
    }
}
