//! Per-topic settings: broker defaults plus the overrides given at CreateTopics.

use std::collections::BTreeMap;

use crate::{BrokerConfig, ConfigError};

/// The topic-level keys strand enforces, with the broker key each one defaults from.
pub const TOPIC_CONFIG_KEYS: &[(&str, &str)] =
    &[("segment.bytes", "log.segment.bytes"), ("max.message.bytes", "message.max.bytes")];

/// The effective configuration of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    pub segment_bytes: i64,
    pub max_message_bytes: i32,
    pub index_interval_bytes: i32,
}

impl TopicConfig {
    /// Broker defaults overlaid with `overrides` (Kafka topic config names to string values).
    pub fn resolve(
        broker: &BrokerConfig,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self {
            segment_bytes: broker.log_segment_bytes,
            max_message_bytes: broker.message_max_bytes,
            index_interval_bytes: broker.log_index_interval_bytes,
        };
        for (key, value) in overrides {
            match key.as_str() {
                "segment.bytes" => config.segment_bytes = parse_int(key, value, 14, i32::MAX)?.into(),
                "max.message.bytes" => config.max_message_bytes = parse_int(key, value, 0, i32::MAX)?,
                _ => return Err(ConfigError::UnknownKey(key.clone())),
            }
        }
        Ok(config)
    }
}

fn parse_int(key: &str, value: &str, min: i32, max: i32) -> Result<i32, ConfigError> {
    let n: i32 = value
        .trim()
        .parse()
        .map_err(|e| ConfigError::invalid(key, format!("'{value}' is not an integer: {e}")))?;
    if !(min..=max).contains(&n) {
        return Err(ConfigError::invalid(key, format!("{n} is outside [{min}, {max}]")));
    }
    Ok(n)
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
        let overrides = BTreeMap::from([("segment.bytes".to_owned(), "4096".to_owned())]);
        let config = TopicConfig::resolve(&broker(), &overrides).unwrap();
        assert_eq!(config.segment_bytes, 4096);
        assert_eq!(config.max_message_bytes, 1_048_588);
    }

    #[test]
    fn unknown_and_malformed_overrides_are_refused() {
        let unknown = BTreeMap::from([("retention.msx".to_owned(), "1".to_owned())]);
        assert!(TopicConfig::resolve(&broker(), &unknown).is_err());
        let bad = BTreeMap::from([("segment.bytes".to_owned(), "lots".to_owned())]);
        assert!(TopicConfig::resolve(&broker(), &bad).is_err());
    }
}
