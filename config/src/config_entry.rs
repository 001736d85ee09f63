//! Settings as DescribeConfigs reports them: value, source, synonyms, type, documentation.
//!
//! Kafka's rules: a topic key set on the topic has source TOPIC_CONFIG; otherwise it takes its
//! value and source from the broker key it defaults from, which is STATIC_BROKER_CONFIG when
//! the config file or a flag set it and DEFAULT_CONFIG when it was left at its default. The
//! synonyms list every level that has a value, most specific first. strand changes no broker
//! setting at runtime, so every broker entry is read-only.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::{documentation, BrokerConfig, BrokerSettings, Props, TopicConfig, TOPIC_CONFIG_KEYS};

/// Where a value comes from (Kafka's DescribeConfigsResponse.ConfigSource, the ones strand has).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic (CreateTopics, AlterConfigs, IncrementalAlterConfigs).
    TopicConfig,
    /// Set in the broker's config file, a flag or an environment variable.
    StaticBrokerConfig,
    /// strand's default.
    DefaultConfig,
}

/// A setting's type (Kafka's ConfigDef.Type, the ones strand has).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Long,
    List,
}

/// One value a setting has at one level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
}

/// One setting of a topic or of the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
    pub read_only: bool,
    pub config_type: ConfigType,
    pub documentation: Option<&'static str>,
    /// The levels that have a value, the one in effect first.
    pub synonyms: Vec<ConfigSynonym>,
}

/// Broker keys whose values fit Kafka's INT (the other integer keys are LONG), as Kafka types
/// the keys it shares with strand.
const INT_KEYS: &[&str] = &[
    "group.initial.rebalance.delay.ms",
    "group.max.session.timeout.ms",
    "group.min.session.timeout.ms",
    "log.flush.syncs.max",
    "log.index.interval.bytes",
    "log.segment.bytes",
    "max.in.flight.requests.per.connection",
    "message.max.bytes",
    "node.id",
    "num.partitions",
    "num.recovery.threads.per.data.dir",
    "offset.metadata.max.bytes",
    "offsets.retention.minutes",
    "offsets.topic.num.partitions",
    "shard.catchup.read.chunk.bytes",
    "shard.catchup.read.chunk.busy.bytes",
    "shard.catchup.reads.max",
    "shard.catchup.readahead.bytes",
    "shard.idle.poll.us",
    "shard.inbox.max",
    "shard.io.memory.bytes",
    "shards",
    "socket.request.max.bytes",
];

/// Broker keys holding comma-separated lists.
const LIST_KEYS: &[&str] = &["log.cleanup.policy"];

/// The type of broker key `key`, from its default value's kind.
pub fn broker_config_type(key: &str) -> Option<ConfigType> {
    static DEFAULTS: OnceLock<Props> = OnceLock::new();
    let config_type = match DEFAULTS.get_or_init(BrokerConfig::default_props).get(key)? {
        toml::Value::Boolean(_) => ConfigType::Boolean,
        toml::Value::Integer(_) if INT_KEYS.contains(&key) => ConfigType::Int,
        toml::Value::Integer(_) => ConfigType::Long,
        _ if LIST_KEYS.contains(&key) => ConfigType::List,
        _ => ConfigType::String,
    };
    Some(config_type)
}

/// The type of topic key `key`: its broker key's.
pub fn topic_config_type(key: &str) -> Option<ConfigType> {
    let (_, broker_key) = TOPIC_CONFIG_KEYS.iter().find(|(topic_key, _)| *topic_key == key)?;
    broker_config_type(broker_key)
}

impl BrokerConfig {
    /// Every broker setting, sorted by key.
    pub fn config_entries(&self) -> Vec<ConfigEntry> {
        self.settings
            .keys()
            .map(|key| {
                let synonyms = broker_synonyms(&self.settings, key);
                ConfigEntry {
                    name: key.to_owned(),
                    value: synonyms[0].value.clone(),
                    source: synonyms[0].source,
                    read_only: true,
                    config_type: broker_config_type(key).unwrap_or(ConfigType::String),
                    documentation: documentation(key),
                    synonyms,
                }
            })
            .collect()
    }
}

impl TopicConfig {
    /// Every topic key of a topic whose overrides are `overrides`, sorted by key.
    pub fn config_entries(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
        TOPIC_CONFIG_KEYS
            .iter()
            .map(|&(key, broker_key)| {
                let set_here = overrides.get(key).map(|value| ConfigSynonym {
                    name: key.to_owned(),
                    value: value.clone(),
                    source: ConfigSource::TopicConfig,
                });
                let synonyms: Vec<ConfigSynonym> =
                    set_here.into_iter().chain(broker_synonyms(&broker.settings, broker_key)).collect();
                ConfigEntry {
                    name: key.to_owned(),
                    value: synonyms[0].value.clone(),
                    source: synonyms[0].source,
                    read_only: false,
                    config_type: broker_config_type(broker_key).unwrap_or(ConfigType::String),
                    documentation: documentation(broker_key),
                    synonyms,
                }
            })
            .collect()
    }
}

/// The levels of broker key `key`: the file or flags (if they set it), then the default.
fn broker_synonyms(settings: &BrokerSettings, key: &str) -> Vec<ConfigSynonym> {
    let level = |value: Option<String>, source| ConfigSynonym { name: key.to_owned(), value: value.unwrap_or_default(), source };
    let mut synonyms = Vec::with_capacity(2);
    if settings.is_explicit(key) {
        synonyms.push(level(settings.value_text(key), ConfigSource::StaticBrokerConfig));
    }
    synonyms.push(level(settings.default_text(key), ConfigSource::DefaultConfig));
    synonyms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(file: &str) -> BrokerConfig {
        BrokerConfig::load(file, Props::default()).unwrap()
    }

    fn entry<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
        entries.iter().find(|e| e.name == name).unwrap()
    }

    #[test]
    fn a_topic_key_comes_from_the_topic_then_the_file_then_the_default() {
        let broker = broker("log.retention.ms = 1000\n");
        let overrides = BTreeMap::from([("segment.bytes".to_owned(), "4096".to_owned())]);
        let entries = TopicConfig::config_entries(&broker, &overrides);
        assert_eq!(entries.len(), TOPIC_CONFIG_KEYS.len());

        let segment = entry(&entries, "segment.bytes");
        assert_eq!((segment.value.as_str(), segment.source), ("4096", ConfigSource::TopicConfig));
        assert_eq!(segment.synonyms[1].name, "log.segment.bytes");
        assert_eq!(segment.synonyms[1].source, ConfigSource::DefaultConfig);
        assert_eq!(segment.config_type, ConfigType::Int);
        assert!(!segment.read_only);

        let retention = entry(&entries, "retention.ms");
        assert_eq!((retention.value.as_str(), retention.source), ("1000", ConfigSource::StaticBrokerConfig));
        let levels: Vec<_> = retention.synonyms.iter().map(|s| (s.name.as_str(), s.value.as_str(), s.source)).collect();
        assert_eq!(
            levels,
            [
                ("log.retention.ms", "1000", ConfigSource::StaticBrokerConfig),
                ("log.retention.ms", "604800000", ConfigSource::DefaultConfig)
            ]
        );

        let policy = entry(&entries, "cleanup.policy");
        assert_eq!((policy.value.as_str(), policy.source), ("delete", ConfigSource::DefaultConfig));
        assert_eq!(policy.config_type, ConfigType::List);
        assert!(policy.documentation.is_some_and(|d| d.contains("compact")));
    }

    #[test]
    fn broker_entries_are_every_key_read_only_with_their_origin() {
        let broker = broker("num.partitions = 3\n");
        let entries = broker.config_entries();
        assert_eq!(entries.len(), BrokerConfig::default_props().keys().count());
        assert!(entries.iter().all(|e| e.read_only));
        let partitions = entry(&entries, "num.partitions");
        assert_eq!((partitions.value.as_str(), partitions.source), ("3", ConfigSource::StaticBrokerConfig));
        assert_eq!(partitions.synonyms.len(), 2);
        let max = entry(&entries, "message.max.bytes");
        assert_eq!((max.value.as_str(), max.source, max.config_type), ("1048588", ConfigSource::DefaultConfig, ConfigType::Int));
        assert_eq!(entry(&entries, "log.retention.ms").config_type, ConfigType::Long);
        assert_eq!(entry(&entries, "auto.create.topics.enable").config_type, ConfigType::Boolean);
        assert_eq!(entry(&entries, "log.dirs").config_type, ConfigType::String);
    }

    #[test]
    fn every_typed_key_is_a_real_integer_key() {
        let props = BrokerConfig::default_props();
        for key in INT_KEYS {
            assert!(matches!(props.get(key), Some(toml::Value::Integer(_))), "{key}");
        }
        for key in LIST_KEYS {
            assert!(matches!(props.get(key), Some(toml::Value::String(_))), "{key}");
        }
        assert_eq!(topic_config_type("cleanup.policy"), Some(ConfigType::List));
        assert_eq!(topic_config_type("max.message.bytes"), Some(ConfigType::Int));
        assert_eq!(topic_config_type("retention.bytes"), Some(ConfigType::Long));
        assert_eq!(topic_config_type("no.such.key"), None);
    }
}
