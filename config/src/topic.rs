//! Per-topic settings: broker defaults plus the topic's overrides (given at CreateTopics, changed
//! by AlterConfigs and IncrementalAlterConfigs).

use std::collections::BTreeMap;

use crate::{BrokerConfig, CleanupPolicy, ConfigError, TimestampType};

/// The topic-level keys strand enforces, with the broker key each one defaults from (Kafka's
/// pairs).
pub const TOPIC_CONFIG_KEYS: &[(&str, &str)] = &[
    ("cleanup.policy", "log.cleanup.policy"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("max.message.bytes", "message.max.bytes"),
    ("message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms"),
    ("message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms"),
    ("message.timestamp.difference.max.ms", "log.message.timestamp.difference.max.ms"),
    ("message.timestamp.type", "log.message.timestamp.type"),
    ("retention.bytes", "log.retention.bytes"),
    ("retention.ms", "log.retention.ms"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.ms", "log.roll.ms"),
];

/// The effective configuration of one topic. Copy, so a partition can hold it in a `Cell`
/// and swap it when the topic's configs change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicConfig {
    pub cleanup_policy: CleanupPolicy,
    pub delete_retention_ms: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub index_interval_bytes: i32,
    pub max_message_bytes: i32,
    pub message_timestamp_type: TimestampType,
    pub message_timestamp_difference_max_ms: i64,
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_after_max_ms: i64,
    pub retention_bytes: i64,
    pub retention_ms: i64,
    pub segment_bytes: i64,
    pub segment_ms: i64,
}

impl TopicConfig {
    /// Broker defaults overlaid with `overrides` (Kafka topic config names to string values).
    pub fn resolve(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut c = Self {
            cleanup_policy: broker.log_cleanup_policy,
            delete_retention_ms: broker.log_cleaner_delete_retention_ms,
            flush_messages: broker.log_flush_interval_messages,
            flush_ms: broker.log_flush_interval_ms,
            index_interval_bytes: broker.log_index_interval_bytes,
            max_message_bytes: broker.message_max_bytes,
            message_timestamp_type: broker.log_message_timestamp_type,
            message_timestamp_difference_max_ms: broker.log_message_timestamp_difference_max_ms,
            message_timestamp_before_max_ms: broker.log_message_timestamp_before_max_ms,
            message_timestamp_after_max_ms: broker.log_message_timestamp_after_max_ms,
            retention_bytes: broker.log_retention_bytes,
            retention_ms: broker.log_retention_ms,
            segment_bytes: broker.log_segment_bytes,
            segment_ms: broker.log_roll_ms,
        };
        let max_i32 = i64::from(i32::MAX);
        for (key, value) in overrides {
            let v = value.as_str();
            match key.as_str() {
                "cleanup.policy" => c.cleanup_policy = v.parse().map_err(|r| ConfigError::invalid(key, r))?,
                "delete.retention.ms" => c.delete_retention_ms = parse_int(key, v, 0, i64::MAX)?,
                "flush.messages" => c.flush_messages = parse_int(key, v, 1, i64::MAX)?,
                "flush.ms" => c.flush_ms = parse_int(key, v, 0, i64::MAX)?,
                "index.interval.bytes" => c.index_interval_bytes = narrow(parse_int(key, v, 0, max_i32)?),
                "max.message.bytes" => c.max_message_bytes = narrow(parse_int(key, v, 0, max_i32)?),
                "message.timestamp.type" => c.message_timestamp_type = v.parse().map_err(|r| ConfigError::invalid(key, r))?,
                "message.timestamp.difference.max.ms" => c.message_timestamp_difference_max_ms = parse_int(key, v, 0, i64::MAX)?,
                "message.timestamp.before.max.ms" => c.message_timestamp_before_max_ms = parse_int(key, v, 0, i64::MAX)?,
                "message.timestamp.after.max.ms" => c.message_timestamp_after_max_ms = parse_int(key, v, 0, i64::MAX)?,
                "retention.bytes" => c.retention_bytes = parse_int(key, v, -1, i64::MAX)?,
                "retention.ms" => c.retention_ms = parse_int(key, v, -1, i64::MAX)?,
                "segment.bytes" => c.segment_bytes = parse_int(key, v, 14, max_i32)?,
                "segment.ms" => c.segment_ms = parse_int(key, v, 1, i64::MAX)?,
                _ => return Err(ConfigError::UnknownKey(key.clone())),
            }
        }
        Ok(c)
    }

    /// How far in the past of the broker's clock a CreateTime timestamp may be: the before key
    /// where it is set below its default, the deprecated difference key otherwise (Kafka 3.6+'s
    /// LogConfig.getMessageTimestampBeforeMaxMs).
    pub fn timestamp_before_max_ms(&self) -> i64 {
        if self.message_timestamp_before_max_ms == i64::MAX {
            self.message_timestamp_difference_max_ms
        } else {
            self.message_timestamp_before_max_ms
        }
    }

    /// How far in the future of the broker's clock a CreateTime timestamp may be, resolved as
    /// [`TopicConfig::timestamp_before_max_ms`] is.
    pub fn timestamp_after_max_ms(&self) -> i64 {
        if self.message_timestamp_after_max_ms == i64::MAX {
            self.message_timestamp_difference_max_ms
        } else {
            self.message_timestamp_after_max_ms
        }
    }

    /// True when every appended batch must be fdatasync'ed before it is acknowledged.
    pub fn flush_every_batch(&self) -> bool {
        self.flush_messages <= 1
    }
}

fn parse_int(key: &str, value: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|e| ConfigError::invalid(key, format!("'{value}' is not an integer: {e}")))?;
    if !(min..=max).contains(&n) {
        return Err(ConfigError::invalid(key, format!("{n} is outside [{min}, {max}]")));
    }
    Ok(n)
}

fn narrow(n: i64) -> i32 {
    i32::try_from(n).expect("range-checked by parse_int")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Props;

    fn broker() -> BrokerConfig {
        BrokerConfig::load("", Props::default()).unwrap()
    }

    #[test]
    fn overrides_replace_broker_defaults() {
        let overrides = BTreeMap::from([
            ("segment.bytes".to_owned(), "4096".to_owned()),
            ("cleanup.policy".to_owned(), "compact".to_owned()),
        ]);
        let config = TopicConfig::resolve(&broker(), &overrides).unwrap();
        assert_eq!(config.segment_bytes, 4096);
        assert!(config.cleanup_policy.compact && !config.cleanup_policy.delete);
        assert_eq!(config.max_message_bytes, 1_048_588);
        assert!(config.flush_every_batch(), "strand's default is strict");
    }

    #[test]
    fn the_timestamp_window_takes_before_and_after_over_the_deprecated_difference() {
        let resolve = |pairs: &[(&str, &str)]| {
            let overrides = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            TopicConfig::resolve(&broker(), &overrides).unwrap()
        };
        let default = resolve(&[]);
        assert_eq!((default.timestamp_before_max_ms(), default.timestamp_after_max_ms()), (i64::MAX, i64::MAX));
        assert_eq!(default.message_timestamp_type, TimestampType::CreateTime);
        let difference = resolve(&[("message.timestamp.difference.max.ms", "1000")]);
        assert_eq!((difference.timestamp_before_max_ms(), difference.timestamp_after_max_ms()), (1000, 1000));
        let split = resolve(&[("message.timestamp.difference.max.ms", "1000"), ("message.timestamp.after.max.ms", "5")]);
        assert_eq!((split.timestamp_before_max_ms(), split.timestamp_after_max_ms()), (1000, 5));
        let append = resolve(&[("message.timestamp.type", "LogAppendTime")]);
        assert_eq!(append.message_timestamp_type, TimestampType::LogAppendTime);
        assert!(TopicConfig::resolve(&broker(), &[("message.timestamp.type".to_owned(), "Now".to_owned())].into()).is_err());
        assert!(TopicConfig::resolve(&broker(), &[("message.timestamp.after.max.ms".to_owned(), "-1".to_owned())].into()).is_err());
    }

    #[test]
    fn unknown_and_malformed_overrides_are_refused() {
        let unknown = BTreeMap::from([("retention.msx".to_owned(), "1".to_owned())]);
        assert!(TopicConfig::resolve(&broker(), &unknown).is_err());
        let bad = BTreeMap::from([("segment.bytes".to_owned(), "lots".to_owned())]);
        assert!(TopicConfig::resolve(&broker(), &bad).is_err());
    }

    #[test]
    fn every_topic_key_defaults_from_a_real_broker_key() {
        let props = BrokerConfig::default_props();
        for (topic_key, broker_key) in TOPIC_CONFIG_KEYS {
            assert!(props.get(broker_key).is_some(), "{topic_key} defaults from unknown {broker_key}");
        }
    }
}
