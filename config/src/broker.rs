//! The broker's own settings, read once at start.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::{BrokerSettings, CleanupPolicy, ConfigError, IoMode, Props, TimestampType};

/// The embedded defaults: every key strand knows, with its default value and a comment.
pub const DEFAULT_TOML: &str = include_str!("../default.toml");

/// A host name (or address) and a port, as advertised to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    fn parse(key: &str, text: &str) -> Result<Self, ConfigError> {
        let text = strip_listener_scheme(text);
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| ConfigError::invalid(key, format!("'{text}' is not HOST:PORT")))?;
        let port = port
            .parse()
            .map_err(|e| ConfigError::invalid(key, format!("bad port in '{text}': {e}")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(ConfigError::invalid(key, format!("'{text}' has no host")));
        }
        Ok(Self { host: host.to_owned(), port })
    }
}

/// Kafka writes listeners as `PLAINTEXT://host:port`; strand has one plaintext listener.
fn strip_listener_scheme(text: &str) -> &str {
    text.strip_prefix("PLAINTEXT://").unwrap_or(text)
}

/// The typed broker configuration. Field names are the Kafka keys with `_` for `.`.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub listeners: SocketAddr,
    pub advertised_listeners: HostPort,
    pub log_dirs: PathBuf,
    /// 0 means one per available core; resolved by the runtime.
    pub shards: usize,
    pub shard_io_memory_bytes: usize,
    pub shard_inbox_max: usize,
    /// Microseconds an idle shard polls for work before it sleeps in the kernel.
    pub shard_idle_poll_us: u64,
    pub shard_tail_cache_bytes: usize,
    pub shard_catchup_reads_max: usize,
    pub shard_catchup_read_chunk_bytes: usize,
    /// The catch-up read size while the broker is writing (any shard); a value above
    /// `shard_catchup_read_chunk_bytes` acts as that.
    pub shard_catchup_read_chunk_busy_bytes: usize,
    pub shard_catchup_read_bytes_per_second: u64,
    /// 0: no catch-up read is made or kept ahead of the fetch that wants it.
    pub shard_catchup_readahead_bytes: usize,
    /// 0: no journal, each strict-mode partition fdatasyncs its own segment.
    pub shard_journal_bytes: u64,
    /// 0: the shards do not log their file operations' latency.
    pub shard_io_latency_log_ms: u64,
    pub auto_create_topics_enable: bool,
    pub num_partitions: i32,
    pub message_max_bytes: i32,
    pub message_decompressed_max_bytes: usize,
    pub log_message_timestamp_type: TimestampType,
    pub log_message_timestamp_difference_max_ms: i64,
    pub log_message_timestamp_before_max_ms: i64,
    pub log_message_timestamp_after_max_ms: i64,
    pub socket_request_max_bytes: i32,
    pub max_in_flight_requests_per_connection: usize,
    pub connection_response_buffer_max_bytes: usize,
    pub connections_max_idle_ms: u64,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub log_segment_bytes: i64,
    pub log_roll_ms: i64,
    pub log_segment_preallocate_bytes: u64,
    pub num_recovery_threads_per_data_dir: usize,
    pub log_io_mode: IoMode,
    pub log_io_write_through: bool,
    pub log_flush_syncs_max: usize,
    pub log_flush_interval_messages: i64,
    pub log_flush_interval_ms: i64,
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    pub log_retention_check_interval_ms: u64,
    pub log_cleanup_policy: CleanupPolicy,
    pub log_cleaner_delete_retention_ms: i64,
    pub log_cleaner_backoff_ms: u64,
    pub log_index_interval_bytes: i32,
    pub offsets_topic_num_partitions: i32,
    pub group_initial_rebalance_delay_ms: i32,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub offset_metadata_max_bytes: i32,
    pub offsets_retention_minutes: i32,
    pub offsets_retention_check_interval_ms: i64,
    /// Every setting as given, with its origin, for DescribeConfigs.
    pub settings: BrokerSettings,
}

impl BrokerConfig {
    /// The defaults, then `file` (TOML text, may be empty), then `overrides` (command line and
    /// environment, already as dotted keys).
    pub fn load(file: &str, overrides: Props) -> Result<Self, ConfigError> {
        let defaults = Self::default_props();
        let file = Props::from_toml(file)?;
        let explicit: BTreeSet<String> = file.keys().chain(overrides.keys()).map(str::to_owned).collect();
        let mut props = defaults.clone();
        props.overlay(file)?;
        props.overlay(overrides)?;
        let settings = BrokerSettings::new(props.clone(), defaults, explicit);
        Self::from_props(props, settings)
    }

    /// Reads a TOML file from disk and loads it as [`BrokerConfig::load`] does.
    pub fn load_file(path: &std::path::Path, overrides: Props) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::load(&text, overrides)
    }

    pub fn default_props() -> Props {
        Props::from_toml(DEFAULT_TOML).expect("the embedded default config is valid TOML")
    }

    fn from_props(mut p: Props, settings: BrokerSettings) -> Result<Self, ConfigError> {
        let listen_text = p.take_string("listeners")?;
        let listen = HostPort::parse("listeners", &listen_text)?;
        let listeners: SocketAddr = strip_listener_scheme(&listen_text)
            .parse()
            .map_err(|e| ConfigError::invalid("listeners", format!("'{listen_text}': {e}")))?;
        let advertised = p.take_string("advertised.listeners")?;
        let advertised_listeners = if advertised.is_empty() {
            listen
        } else {
            HostPort::parse("advertised.listeners", &advertised)?
        };
        let max_i32 = i64::from(i32::MAX);
        let config = Self {
            node_id: to_i32(p.take_int("node.id", 0, max_i32)?),
            listeners,
            advertised_listeners,
            log_dirs: PathBuf::from(p.take_string("log.dirs")?),
            shards: to_usize(p.take_int("shards", 0, 1024)?),
            shard_io_memory_bytes: to_usize(p.take_int("shard.io.memory.bytes", 0, 1 << 30)?),
            shard_inbox_max: to_usize(p.take_int("shard.inbox.max", 1, 1 << 20)?),
            shard_idle_poll_us: to_u64(p.take_int("shard.idle.poll.us", 0, 1_000_000)?),
            shard_tail_cache_bytes: to_usize(p.take_int("shard.tail.cache.bytes", 0, 1 << 40)?),
            shard_catchup_reads_max: to_usize(p.take_int("shard.catchup.reads.max", 1, 1024)?),
            shard_catchup_read_chunk_bytes: to_usize(p.take_int("shard.catchup.read.chunk.bytes", 4096, 64 << 20)?),
            shard_catchup_read_chunk_busy_bytes: to_usize(p.take_int("shard.catchup.read.chunk.busy.bytes", 4096, 64 << 20)?),
            shard_catchup_read_bytes_per_second: to_u64(p.take_int("shard.catchup.read.bytes.per.second", 0, i64::MAX)?),
            shard_catchup_readahead_bytes: to_usize(p.take_int("shard.catchup.readahead.bytes", 0, 1 << 30)?),
            shard_journal_bytes: to_u64(p.take_int("shard.journal.bytes", 0, 1 << 30)?),
            shard_io_latency_log_ms: to_u64(p.take_int("shard.io.latency.log.ms", 0, 86_400_000)?),
            auto_create_topics_enable: p.take_bool("auto.create.topics.enable")?,
            num_partitions: to_i32(p.take_int("num.partitions", 1, 1 << 16)?),
            message_max_bytes: to_i32(p.take_int("message.max.bytes", 0, max_i32)?),
            message_decompressed_max_bytes: to_usize(p.take_int("message.decompressed.max.bytes", 1, 1 << 40)?),
            log_message_timestamp_type: p.take_parsed("log.message.timestamp.type")?,
            log_message_timestamp_difference_max_ms: p.take_int("log.message.timestamp.difference.max.ms", 0, i64::MAX)?,
            log_message_timestamp_before_max_ms: p.take_int("log.message.timestamp.before.max.ms", 0, i64::MAX)?,
            log_message_timestamp_after_max_ms: p.take_int("log.message.timestamp.after.max.ms", 0, i64::MAX)?,
            socket_request_max_bytes: to_i32(p.take_int("socket.request.max.bytes", 1024, max_i32)?),
            max_in_flight_requests_per_connection: to_usize(p.take_int(
                "max.in.flight.requests.per.connection",
                1,
                1 << 16,
            )?),
            connection_response_buffer_max_bytes: to_usize(p.take_int(
                "connection.response.buffer.max.bytes",
                1,
                max_i32,
            )?),
            connections_max_idle_ms: to_u64(p.take_int("connections.max.idle.ms", 1, i64::MAX)?),
            max_connections: to_usize(p.take_int("max.connections", 0, max_i32)?),
            max_connections_per_ip: to_usize(p.take_int("max.connections.per.ip", 0, max_i32)?),
            log_segment_bytes: p.take_int("log.segment.bytes", 14, max_i32)?,
            log_roll_ms: p.take_int("log.roll.ms", 1, i64::MAX)?,
            log_segment_preallocate_bytes: to_u64(p.take_int("log.segment.preallocate.bytes", 0, 1 << 34)?),
            num_recovery_threads_per_data_dir: to_usize(p.take_int("num.recovery.threads.per.data.dir", 1, 1024)?),
            log_io_mode: p.take_parsed("log.io.mode")?,
            log_io_write_through: p.take_bool("log.io.write.through")?,
            log_flush_syncs_max: to_usize(p.take_int("log.flush.syncs.max", 1, 1024)?),
            log_flush_interval_messages: p.take_int("log.flush.interval.messages", 1, i64::MAX)?,
            log_flush_interval_ms: p.take_int("log.flush.interval.ms", 0, i64::MAX)?,
            log_retention_ms: p.take_int("log.retention.ms", -1, i64::MAX)?,
            log_retention_bytes: p.take_int("log.retention.bytes", -1, i64::MAX)?,
            log_retention_check_interval_ms: to_u64(p.take_int("log.retention.check.interval.ms", 1, i64::MAX)?),
            log_cleanup_policy: p.take_parsed("log.cleanup.policy")?,
            log_cleaner_delete_retention_ms: p.take_int("log.cleaner.delete.retention.ms", 0, i64::MAX)?,
            log_cleaner_backoff_ms: to_u64(p.take_int("log.cleaner.backoff.ms", 1, i64::MAX)?),
            log_index_interval_bytes: to_i32(p.take_int("log.index.interval.bytes", 0, max_i32)?),
            offsets_topic_num_partitions: to_i32(p.take_int("offsets.topic.num.partitions", 1, 1 << 16)?),
            group_initial_rebalance_delay_ms: to_i32(p.take_int("group.initial.rebalance.delay.ms", 0, max_i32)?),
            group_min_session_timeout_ms: to_i32(p.take_int("group.min.session.timeout.ms", 1, max_i32)?),
            group_max_session_timeout_ms: to_i32(p.take_int("group.max.session.timeout.ms", 1, max_i32)?),
            offset_metadata_max_bytes: to_i32(p.take_int("offset.metadata.max.bytes", 0, max_i32)?),
            offsets_retention_minutes: to_i32(p.take_int("offsets.retention.minutes", 1, max_i32)?),
            offsets_retention_check_interval_ms: p.take_int("offsets.retention.check.interval.ms", 1, i64::MAX)?,
            settings,
        };
        if config.log_dirs.as_os_str().is_empty() {
            return Err(ConfigError::invalid("log.dirs", "must not be empty"));
        }
        if config.shard_journal_bytes != 0 && config.shard_journal_bytes < SHARD_JOURNAL_MIN_BYTES {
            return Err(ConfigError::invalid(
                "shard.journal.bytes",
                format!("{} is neither 0 (no journal) nor at least {SHARD_JOURNAL_MIN_BYTES}", config.shard_journal_bytes),
            ));
        }
        if config.group_max_session_timeout_ms < config.group_min_session_timeout_ms {
            return Err(ConfigError::invalid(
                "group.max.session.timeout.ms",
                format!(
                    "{} is below group.min.session.timeout.ms {}",
                    config.group_max_session_timeout_ms, config.group_min_session_timeout_ms
                ),
            ));
        }
        p.finish()?;
        Ok(config)
    }
}

/// The smallest shard journal: a quarter of it must hold a round of appends.
pub const SHARD_JOURNAL_MIN_BYTES: u64 = 4 << 20;

// Both conversions only see values `take_int` has already range-checked.
fn to_i32(n: i64) -> i32 {
    i32::try_from(n).expect("range-checked by take_int")
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n).expect("range-checked by take_int")
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).expect("range-checked by take_int")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_load_as_kafka_defaults() {
        let config = BrokerConfig::load("", Props::default()).unwrap();
        assert_eq!(config.listeners, "127.0.0.1:9092".parse().unwrap());
        assert_eq!(config.advertised_listeners.port, 9092);
        assert_eq!(config.num_partitions, 1);
        assert!(config.auto_create_topics_enable);
        assert_eq!(config.message_max_bytes, 1_048_588);
        assert_eq!(config.log_dirs, PathBuf::from("./strand-data"));
        assert_eq!(config.connections_max_idle_ms, 600_000);
        assert_eq!(config.max_connections, 2_147_483_647);
        assert_eq!(config.max_connections_per_ip, 2_147_483_647);
    }

    #[test]
    fn file_then_overrides_win_in_that_order() {
        let mut overrides = Props::default();
        overrides.set("num.partitions", toml::Value::Integer(7));
        let file = "num.partitions = 3\nlisteners = \"PLAINTEXT://0.0.0.0:9999\"\n";
        let config = BrokerConfig::load(file, overrides).unwrap();
        assert_eq!(config.num_partitions, 7);
        assert_eq!(config.listeners.port(), 9999);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_one_line_errors() {
        let err = BrokerConfig::load("num.partitons = 3", Props::default()).unwrap_err();
        assert_eq!(err.to_string(), "unknown config key 'num.partitons'");
        let err = BrokerConfig::load("listeners = \"nope\"", Props::default()).unwrap_err();
        assert!(err.to_string().starts_with("config key 'listeners'"), "{err}");
        let err = BrokerConfig::load("num.partitions = 0", Props::default()).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
    }

    #[test]
    fn the_readme_config_reference_lists_every_key() {
        let readme = include_str!("../../README.md");
        for key in BrokerConfig::default_props().keys() {
            assert!(readme.contains(&format!("| {key} |")), "README.md does not document '{key}'");
        }
    }

    #[test]
    fn max_connections_and_its_per_ip_sibling_are_both_settable() {
        let file = "\"max.connections\" = 100\nmax.connections.per.ip = 5\n";
        let config = BrokerConfig::load(file, Props::default()).unwrap();
        assert_eq!((config.max_connections, config.max_connections_per_ip), (100, 5));
    }

    #[test]
    fn group_coordinator_defaults_are_kafkas() {
        let config = BrokerConfig::load("", Props::default()).unwrap();
        assert_eq!(config.offsets_topic_num_partitions, 50);
        assert_eq!(config.group_initial_rebalance_delay_ms, 3000);
        assert_eq!(config.group_min_session_timeout_ms, 6000);
        assert_eq!(config.group_max_session_timeout_ms, 1_800_000);
        assert_eq!(config.offset_metadata_max_bytes, 4096);
        assert_eq!(config.offsets_retention_minutes, 10080);
        assert_eq!(config.offsets_retention_check_interval_ms, 600_000);
    }

    #[test]
    fn a_session_timeout_range_upside_down_is_refused() {
        let file = "group.min.session.timeout.ms = 10000\ngroup.max.session.timeout.ms = 9000\n";
        let err = BrokerConfig::load(file, Props::default()).unwrap_err();
        assert!(err.to_string().starts_with("config key 'group.max.session.timeout.ms'"), "{err}");
        let err = BrokerConfig::load("offsets.topic.num.partitions = 0", Props::default()).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
    }

    #[test]
    fn a_shard_journal_is_none_or_big_enough_for_a_round_per_quarter() {
        assert_eq!(BrokerConfig::load("", Props::default()).unwrap().shard_journal_bytes, 0);
        let config = BrokerConfig::load("shard.journal.bytes = 67108864", Props::default()).unwrap();
        assert_eq!(config.shard_journal_bytes, 64 << 20);
        let err = BrokerConfig::load("shard.journal.bytes = 65536", Props::default()).unwrap_err();
        assert!(err.to_string().starts_with("config key 'shard.journal.bytes'"), "{err}");
    }

    #[test]
    fn advertised_listener_accepts_host_names() {
        let file = "advertised.listeners = \"broker-1.example:19092\"";
        let config = BrokerConfig::load(file, Props::default()).unwrap();
        assert_eq!(config.advertised_listeners, HostPort { host: "broker-1.example".into(), port: 19092 });
    }
}
