//! A flat map of Kafka-style dotted keys to TOML values, and typed reads from it.
//!
//! TOML reads `log.segment.bytes = 1` as nested tables; [`Props::from_toml`] flattens them back,
//! so a strand config file uses Kafka's names unquoted.

use std::collections::BTreeMap;

use crate::ConfigError;

/// Dotted key -> value. Reads remove the key, so whatever is left at the end was never asked
/// for: an unknown key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Props {
    values: BTreeMap<String, toml::Value>,
}

impl Props {
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = toml::from_str(text)?;
        let mut props = Self::default();
        props.flatten("", table);
        Ok(props)
    }

    fn flatten(&mut self, prefix: &str, table: toml::Table) {
        for (key, value) in table {
            let name = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
            match value {
                toml::Value::Table(inner) => self.flatten(&name, inner),
                other => {
                    self.values.insert(name, other);
                }
            }
        }
    }

    /// Overlays `other` on `self`, refusing keys `self` does not have (the defaults know every
    /// key there is).
    pub fn overlay(&mut self, other: Props) -> Result<(), ConfigError> {
        for (key, value) in other.values {
            if !self.values.contains_key(&key) {
                return Err(ConfigError::UnknownKey(key));
            }
            self.values.insert(key, value);
        }
        Ok(())
    }

    pub fn set(&mut self, key: &str, value: toml::Value) {
        self.values.insert(key.to_owned(), value);
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    pub fn get(&self, key: &str) -> Option<&toml::Value> {
        self.values.get(key)
    }

    fn take(&mut self, key: &str) -> Result<toml::Value, ConfigError> {
        self.values.remove(key).ok_or_else(|| ConfigError::invalid(key, "missing"))
    }

    pub fn take_string(&mut self, key: &str) -> Result<String, ConfigError> {
        match self.take(key)? {
            toml::Value::String(s) => Ok(s),
            other => Err(ConfigError::invalid(key, format!("expected a string, got {other}"))),
        }
    }

    pub fn take_bool(&mut self, key: &str) -> Result<bool, ConfigError> {
        match self.take(key)? {
            toml::Value::Boolean(b) => Ok(b),
            other => Err(ConfigError::invalid(key, format!("expected true or false, got {other}"))),
        }
    }

    /// A string parsed with `FromStr`, whose error says what is wrong.
    pub fn take_parsed<T: std::str::FromStr<Err = String>>(&mut self, key: &str) -> Result<T, ConfigError> {
        let text = self.take_string(key)?;
        text.parse().map_err(|reason| ConfigError::invalid(key, reason))
    }

    /// An integer within `[min, max]`.
    pub fn take_int(&mut self, key: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
        match self.take(key)? {
            toml::Value::Integer(n) if (min..=max).contains(&n) => Ok(n),
            toml::Value::Integer(n) => {
                Err(ConfigError::invalid(key, format!("{n} is outside [{min}, {max}]")))
            }
            other => Err(ConfigError::invalid(key, format!("expected an integer, got {other}"))),
        }
    }

    /// Fails on the first key nobody read.
    pub fn finish(self) -> Result<(), ConfigError> {
        match self.values.into_keys().next() {
            Some(key) => Err(ConfigError::UnknownKey(key)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys_flatten_back_to_kafka_names() {
        let props = Props::from_toml("num.partitions = 3\nlog.segment.bytes = 10\n").unwrap();
        let keys: Vec<&str> = props.keys().collect();
        assert_eq!(keys, ["log.segment.bytes", "num.partitions"]);
    }

    #[test]
    fn overlay_refuses_keys_the_base_lacks() {
        let mut base = Props::from_toml("a.b = 1").unwrap();
        let err = base.overlay(Props::from_toml("a.c = 2").unwrap()).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey(k) if k == "a.c"));
    }

    #[test]
    fn integers_outside_their_range_are_refused() {
        let mut props = Props::from_toml("n = 70000").unwrap();
        assert!(props.take_int("n", 0, 65535).is_err());
    }
}
