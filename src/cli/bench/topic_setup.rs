//! The bench topic: created when missing (CreateTopics), its partitions (Metadata) and their
//! log end offsets (ListOffsets).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

use crate::cli::brokers::BrokerArgs;
use crate::cli::kafka_error::{explain, explain_code};

/// The topic's partition ids, creating it with `partitions` partitions when it does not exist.
pub fn ensure_topic(b: &BrokerArgs, meta: &BaseConsumer, topic: &str, partitions: i32) -> anyhow::Result<Vec<i32>> {
    if let Some(existing) = partition_ids(b, meta, topic)? {
        return Ok(existing);
    }
    let admin = b.admin()?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    let results = block_on(admin.create_topics([&new], &b.admin_options())).map_err(|e| explain("bench: create topic", &e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(explain_code(&format!("bench: create topic {topic}"), code)),
        }
    }
    let deadline = Instant::now() + b.timeout;
    loop {
        if let Some(ids) = partition_ids(b, meta, topic)? {
            if ids.len() == usize::try_from(partitions).unwrap_or(0) {
                return Ok(ids);
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "bench: topic {topic} did not show {partitions} partitions in Metadata");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Partition ids from Metadata; None when the topic does not exist.
fn partition_ids(b: &BrokerArgs, meta: &BaseConsumer, topic: &str) -> anyhow::Result<Option<Vec<i32>>> {
    let metadata = meta.fetch_metadata(Some(topic), b.timeout).map_err(|e| explain("bench: Metadata", &e))?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
    match t.error() {
        None if !t.partitions().is_empty() => {
            let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
            ids.sort_unstable();
            Ok(Some(ids))
        }
        None => Ok(None),
        Some(e) => match RDKafkaErrorCode::from(e) {
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::LeaderNotAvailable => Ok(None),
            code => Err(explain_code(&format!("bench: topic {topic}"), code)),
        },
    }
}

/// Log end offset (high watermark) of every partition.
pub fn high_watermarks(b: &BrokerArgs, meta: &BaseConsumer, topic: &str, partitions: &[i32]) -> anyhow::Result<BTreeMap<i32, i64>> {
    Ok(watermarks(b, meta, topic, partitions)?.into_iter().map(|(p, (_, high))| (p, high)).collect())
}

/// Log start and log end offsets of every partition.
pub fn watermarks(b: &BrokerArgs, meta: &BaseConsumer, topic: &str, partitions: &[i32]) -> anyhow::Result<BTreeMap<i32, (i64, i64)>> {
    partitions
        .iter()
        .map(|&p| {
            let marks = meta
                .fetch_watermarks(topic, p, b.timeout)
                .map_err(|e| explain(&format!("bench: offsets of {topic}-{p}"), &e))?;
            Ok((p, marks))
        })
        .collect()
}

/// The address (host:port) of every partition's leader.
pub fn partition_leaders(b: &BrokerArgs, meta: &BaseConsumer, topic: &str) -> anyhow::Result<BTreeMap<i32, String>> {
    let metadata = meta.fetch_metadata(Some(topic), b.timeout).map_err(|e| explain("bench: Metadata", &e))?;
    let brokers: BTreeMap<i32, String> = metadata.brokers().iter().map(|b| (b.id(), format!("{}:{}", b.host(), b.port()))).collect();
    let t = metadata.topics().iter().find(|t| t.name() == topic).ok_or_else(|| anyhow::anyhow!("bench: no topic {topic} in Metadata"))?;
    t.partitions()
        .iter()
        .map(|p| {
            let leader = brokers.get(&p.leader()).ok_or_else(|| anyhow::anyhow!("bench: {topic}-{} has no known leader", p.id()))?;
            Ok((p.id(), leader.clone()))
        })
        .collect()
}
