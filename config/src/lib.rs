//! strand-config: the typed broker and topic configuration.
//!
//! Pure data and validation, no runtime: the `strand` binary builds a [`BrokerConfig`] once at
//! start (embedded defaults, then a TOML file, then command-line and environment overrides) and
//! hands it, immutable, to every shard. Topic overrides ([`TopicConfig`]) are validated here too,
//! so CreateTopics and the config file reject the same mistakes with the same words.

mod broker;
mod error;
mod props;
mod topic;

pub use broker::{BrokerConfig, HostPort, DEFAULT_TOML};
pub use error::ConfigError;
pub use props::Props;
pub use topic::{TopicConfig, TOPIC_CONFIG_KEYS};
