//! strand-config: the typed broker and topic configuration.
//!
//! Pure data and validation, no runtime: the `strand` binary builds a [`BrokerConfig`] once at
//! start (embedded defaults, then a TOML file, then command-line and environment overrides) and
//! hands it, immutable, to every shard. Topic overrides ([`TopicConfig`]) are validated here too,
//! so CreateTopics and the config file reject the same mistakes with the same words, and so are
//! IncrementalAlterConfigs' operations on them ([`alter_topic_overrides`]). [`ConfigEntry`] is a
//! setting as DescribeConfigs shows it: value, origin, synonyms, type and documentation.

mod alter_config_op;
mod broker;
mod broker_settings;
mod cleanup_policy;
mod config_entry;
mod documentation;
mod error;
mod io_mode;
mod props;
mod timestamp_type;
mod topic;

pub use alter_config_op::{alter_topic_overrides, AlterConfigOp};
pub use broker::{BrokerConfig, HostPort, DEFAULT_TOML};
pub use broker_settings::BrokerSettings;
pub use cleanup_policy::CleanupPolicy;
pub use config_entry::{broker_config_type, topic_config_type, ConfigEntry, ConfigSource, ConfigSynonym, ConfigType};
pub use documentation::documentation;
pub use error::ConfigError;
pub use io_mode::IoMode;
pub use props::Props;
pub use timestamp_type::TimestampType;
pub use topic::{TopicConfig, TOPIC_CONFIG_KEYS};
