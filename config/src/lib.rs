//! strand-config: the typed broker and topic configuration.
//!
//! Pure data and validation, no runtime: the `strand` binary builds a [`BrokerConfig`] once at
//! start (embedded defaults, then a TOML file, then command-line and environment overrides) and
//! hands it, immutable, to every shard. Topic overrides ([`TopicConfig`]) are validated here too,
//! so CreateTopics and the config file reject the same mistakes with the same words.

mod broker;
mod cleanup_policy;
mod error;
mod io_mode;
mod props;
mod topic;

pub use broker::{BrokerConfig, HostPort, DEFAULT_TOML};
pub use cleanup_policy::CleanupPolicy;
pub use error::ConfigError;
pub use io_mode::IoMode;
pub use props::Props;
pub use topic::{TopicConfig, TOPIC_CONFIG_KEYS};
