//! The broker's settings as they were given, for DescribeConfigs: every key's value (the
//! embedded default, then the file, then flags and environment) and which keys the file or the
//! flags set. The typed [`crate::BrokerConfig`] is built from the same values; this keeps the
//! text and the origin Kafka reports (STATIC_BROKER_CONFIG for a key that was set,
//! DEFAULT_CONFIG for one left at its default).

use std::collections::BTreeSet;

use crate::Props;

#[derive(Debug, Clone)]
pub struct BrokerSettings {
    values: Props,
    defaults: Props,
    explicit: BTreeSet<String>,
}

impl BrokerSettings {
    /// `values` are the effective settings, `defaults` the embedded ones, `explicit` the keys
    /// the file or flags set.
    pub(crate) fn new(values: Props, defaults: Props, explicit: BTreeSet<String>) -> Self {
        Self { values, defaults, explicit }
    }

    /// Every key, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys()
    }

    /// The value of `key` as Kafka shows a config value: integers in decimal, booleans as
    /// `true`/`false`, strings as they are.
    pub fn value_text(&self, key: &str) -> Option<String> {
        self.values.get(key).map(value_text)
    }

    /// The embedded default of `key`, as text.
    pub fn default_text(&self, key: &str) -> Option<String> {
        self.defaults.get(key).map(value_text)
    }

    /// True if the config file, a flag or an environment variable set `key`.
    pub fn is_explicit(&self, key: &str) -> bool {
        self.explicit.contains(key)
    }
}

/// Two broker configs with the same values are the same config, wherever the values came from
/// (`strand config print` writes every key, and its output loads back to an equal config).
impl PartialEq for BrokerSettings {
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::{BrokerConfig, Props};

    #[test]
    fn values_are_kafka_style_text_and_set_keys_are_explicit() {
        let mut overrides = Props::default();
        overrides.set("num.partitions", toml::Value::Integer(4));
        let config = BrokerConfig::load("log.dirs = \"/data\"\n", overrides).unwrap();
        let settings = &config.settings;
        assert_eq!(settings.value_text("num.partitions").as_deref(), Some("4"));
        assert_eq!(settings.default_text("num.partitions").as_deref(), Some("1"));
        assert_eq!(settings.value_text("log.dirs").as_deref(), Some("/data"));
        assert_eq!(settings.value_text("auto.create.topics.enable").as_deref(), Some("true"));
        assert!(settings.is_explicit("num.partitions") && settings.is_explicit("log.dirs"));
        assert!(!settings.is_explicit("message.max.bytes"));
        assert_eq!(settings.keys().count(), BrokerConfig::default_props().keys().count());
    }
}
