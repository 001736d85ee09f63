//! Bringing a shard's partitions in line with a metadata image: open what is newly placed here
//! (new topics, and new partitions of grown ones; the group coordinator loads the
//! __consumer_offsets ones), hand changed topic configs to the open partitions, close and delete
//! what the image no longer has (and the committed offsets of deleted topics).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use strand_config::TopicConfig;
use strand_io::fs;
use strand_shards::task::for_each_bounded;
use tracing::{error, info};
use uuid::Uuid;

use super::ShardState;
use crate::cluster::{MetadataImage, GROUP_METADATA_TOPIC_NAME};
use crate::partition::Partition;

/// How often a shard opening many partitions logs its progress.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

impl ShardState {
    pub(super) async fn apply_metadata(self: &Rc<Self>, image: Arc<MetadataImage>) {
        let previous = std::mem::replace(&mut *self.image_slot().borrow_mut(), Arc::clone(&image));
        let deleted: Vec<String> = previous
            .topics()
            .filter(|t| image.topic(&t.name).is_none_or(|now| now.id != t.id))
            .map(|t| t.name.clone())
            .collect();
        self.groups.on_topics_deleted(&deleted);
        let stale: Vec<Rc<Partition>> = {
            let mut partitions = self.partitions.borrow_mut();
            let gone: Vec<(String, i32)> = partitions
                .iter()
                .filter(|(_, p)| image.topic(&p.topic).is_none_or(|t| t.id != p.topic_id || p.index >= t.partitions))
                .map(|(key, _)| key.clone())
                .collect();
            gone.iter().filter_map(|key| partitions.remove(key)).collect()
        };
        self.apply_changed_configs(&previous, &image);
        for partition in stale {
            partition.log.close().await;
            if let Err(e) = fs::remove_dir_all(partition.log.dir()).await {
                error!(topic = %partition.topic, partition = partition.index, error = %e, "removing deleted partition");
            }
            info!(shard = %self.id, topic = %partition.topic, partition = partition.index, "partition deleted");
        }
        // Partitions placed here that are not open yet: at start, every one is recovered,
        // `num.recovery.threads.per.data.dir` at once (their reads overlap on the disk).
        let mut to_open = Vec::new();
        for topic in image.topics() {
            let placed: Vec<i32> =
                (0..topic.partitions).filter(|&i| self.owner(&topic.name, i) == self.id && self.partition(&topic.name, i).is_none()).collect();
            if placed.is_empty() {
                continue;
            }
            match TopicConfig::resolve(&self.config, &topic.configs) {
                Ok(config) => to_open.extend(placed.into_iter().map(|index| (topic.name.clone(), topic.id, index, config))),
                Err(e) => error!(topic = %topic.name, error = %e, "stored topic config is invalid; topic not opened"),
            }
        }
        let total = to_open.len();
        let started = Instant::now();
        let progress = Rc::new((Cell::new(0usize), Cell::new(started)));
        let (shard, counted) = (Rc::clone(self), Rc::clone(&progress));
        for_each_bounded(to_open, self.config.num_recovery_threads_per_data_dir, move |(topic, topic_id, index, config)| {
            let (shard, progress) = (Rc::clone(&shard), Rc::clone(&counted));
            async move {
                shard.open_partition(&topic, topic_id, index, config).await;
                let (opened, last_report) = &*progress;
                opened.set(opened.get() + 1);
                if last_report.get().elapsed() >= PROGRESS_INTERVAL {
                    info!(shard = %shard.id, recovered = opened.get(), total, "recovering partitions");
                    last_report.set(Instant::now());
                }
            }
        })
        .await;
        if total > 1 {
            info!(shard = %self.id, recovered = progress.0.get(), total,
                  elapsed_ms = started.elapsed().as_millis() as u64, "partitions recovered");
        }
    }

    /// Opens (recovers) one partition placed here, unless a concurrent image opened it first.
    async fn open_partition(self: &Rc<Self>, topic: &str, topic_id: Uuid, index: i32, config: TopicConfig) {
        if self.partition(topic, index).is_some() {
            return;
        }
        let dir = self.config.log_dirs.join(format!("{topic}-{index}"));
        match Partition::open(&dir, topic, index, topic_id, config, &self.config, &self.log_shared).await {
            Ok(partition) => {
                let partition = Rc::new(partition);
                self.partitions.borrow_mut().insert((topic.to_owned(), index), Rc::clone(&partition));
                if topic == GROUP_METADATA_TOPIC_NAME {
                    self.groups.load_partition(self, partition);
                }
            }
            Err(e) => error!(topic, partition = index, error = %e, "opening partition failed"),
        }
    }

    /// Gives the open partitions of every topic whose overrides changed its new config.
    fn apply_changed_configs(&self, previous: &MetadataImage, image: &MetadataImage) {
        for topic in image.topics() {
            let Some(before) = previous.topic(&topic.name) else { continue };
            if before.id != topic.id || before.configs == topic.configs {
                continue;
            }
            let config = match TopicConfig::resolve(&self.config, &topic.configs) {
                Ok(config) => config,
                Err(e) => {
                    error!(topic = %topic.name, error = %e, "changed topic config is invalid; partitions keep the old one");
                    continue;
                }
            };
            let local: Vec<Rc<Partition>> =
                self.partitions.borrow().values().filter(|p| p.topic == topic.name).cloned().collect();
            for partition in &local {
                partition.set_config(config, &self.config);
            }
            if !local.is_empty() {
                info!(shard = %self.id, topic = %topic.name, partitions = local.len(), "topic config changed");
            }
        }
    }

    /// Closes every partition, `num.recovery.threads.per.data.dir` at once: queued appends
    /// become durable, files are sealed and closed.
    pub async fn close_partitions(&self) {
        let partitions: Vec<Rc<Partition>> = self.partitions.borrow_mut().drain().map(|(_, p)| p).collect();
        for_each_bounded(partitions, self.config.num_recovery_threads_per_data_dir, |partition| async move {
            partition.log.close().await;
        })
        .await;
    }
}
