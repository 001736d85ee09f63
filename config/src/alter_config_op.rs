//! IncrementalAlterConfigs on a topic's overrides, as Kafka's controller applies it: SET and
//! DELETE replace or remove one override; APPEND and SUBTRACT edit a list-typed key
//! (cleanup.policy) starting from its current value, which is the override if there is one and
//! the broker's default otherwise. The result must resolve to a valid [`TopicConfig`].

use std::collections::BTreeMap;

use crate::{topic_config_type, BrokerConfig, ConfigError, ConfigType, TopicConfig, TOPIC_CONFIG_KEYS};

/// One operation on one key (Kafka's AlterConfigOp.OpType).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    Set(String),
    Delete,
    /// Adds the comma-separated items not already in the list, in order.
    Append(String),
    /// Removes the comma-separated items from the list.
    Subtract(String),
}

/// The overrides after applying `ops` (each key at most once) to `current`, validated.
pub fn alter_topic_overrides(
    broker: &BrokerConfig,
    current: &BTreeMap<String, String>,
    ops: &[(String, AlterConfigOp)],
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut next = current.clone();
    for (key, op) in ops {
        match op {
            AlterConfigOp::Set(value) => {
                next.insert(key.clone(), value.clone());
            }
            AlterConfigOp::Delete => {
                next.remove(key);
            }
            AlterConfigOp::Append(items) | AlterConfigOp::Subtract(items) => {
                let append = matches!(op, AlterConfigOp::Append(_));
                let verb = if append { "APPEND" } else { "SUBTRACT" };
                match topic_config_type(key) {
                    None => return Err(ConfigError::UnknownKey(key.clone())),
                    Some(ConfigType::List) => {}
                    Some(_) => {
                        return Err(ConfigError::invalid(key, format!("can't {verb} to it because its type is not LIST")));
                    }
                }
                let mut list = list_items(&current_value(broker, &next, key));
                for item in list_items(items) {
                    if !append {
                        list.retain(|present| *present != item);
                    } else if !list.contains(&item) {
                        list.push(item);
                    }
                }
                next.insert(key.clone(), list.join(","));
            }
        }
    }
    TopicConfig::resolve(broker, &next)?;
    Ok(next)
}

/// The value `key` has for a topic with `overrides`: its override, or the broker's default.
fn current_value(broker: &BrokerConfig, overrides: &BTreeMap<String, String>, key: &str) -> String {
    if let Some(value) = overrides.get(key) {
        return value.clone();
    }
    TOPIC_CONFIG_KEYS
        .iter()
        .find(|(topic_key, _)| *topic_key == key)
        .and_then(|(_, broker_key)| broker.settings.value_text(broker_key))
        .unwrap_or_default()
}

/// The items of a comma-separated list, trimmed, empty ones dropped.
fn list_items(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Props;

    fn broker() -> BrokerConfig {
        BrokerConfig::load("", Props::default()).unwrap()
    }

    fn op(key: &str, op: AlterConfigOp) -> (String, AlterConfigOp) {
        (key.to_owned(), op)
    }

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn append_starts_from_the_broker_default_when_the_topic_has_no_override() {
        let ops = [op("cleanup.policy", AlterConfigOp::Append("compact".into()))];
        let next = alter_topic_overrides(&broker(), &BTreeMap::new(), &ops).unwrap();
        assert_eq!(next, overrides(&[("cleanup.policy", "delete,compact")]));
    }

    #[test]
    fn append_skips_items_already_there_and_subtract_removes_them() {
        let current = overrides(&[("cleanup.policy", "compact"), ("retention.ms", "1000")]);
        let appended =
            alter_topic_overrides(&broker(), &current, &[op("cleanup.policy", AlterConfigOp::Append("compact, delete".into()))])
                .unwrap();
        assert_eq!(appended.get("cleanup.policy").map(String::as_str), Some("compact,delete"));
        let subtracted =
            alter_topic_overrides(&broker(), &appended, &[op("cleanup.policy", AlterConfigOp::Subtract("compact".into()))])
                .unwrap();
        assert_eq!(subtracted, overrides(&[("cleanup.policy", "delete"), ("retention.ms", "1000")]));
    }

    #[test]
    fn subtracting_every_policy_leaves_an_invalid_config() {
        let current = overrides(&[("cleanup.policy", "delete")]);
        let err = alter_topic_overrides(&broker(), &current, &[op("cleanup.policy", AlterConfigOp::Subtract("delete".into()))])
            .unwrap_err();
        assert!(err.to_string().starts_with("config key 'cleanup.policy'"), "{err}");
    }

    #[test]
    fn set_and_delete_replace_and_remove_single_overrides() {
        let current = overrides(&[("retention.ms", "1000"), ("segment.bytes", "4096")]);
        let ops = [op("retention.ms", AlterConfigOp::Delete), op("max.message.bytes", AlterConfigOp::Set("2048".into()))];
        let next = alter_topic_overrides(&broker(), &current, &ops).unwrap();
        assert_eq!(next, overrides(&[("max.message.bytes", "2048"), ("segment.bytes", "4096")]));
    }

    #[test]
    fn list_operations_on_other_types_and_unknown_keys_are_refused() {
        let err = alter_topic_overrides(&broker(), &BTreeMap::new(), &[op("retention.ms", AlterConfigOp::Append("5".into()))])
            .unwrap_err();
        assert_eq!(err.to_string(), "config key 'retention.ms': can't APPEND to it because its type is not LIST");
        let err = alter_topic_overrides(&broker(), &BTreeMap::new(), &[op("retention.msx", AlterConfigOp::Set("5".into()))])
            .unwrap_err();
        assert_eq!(err.to_string(), "unknown config key 'retention.msx'");
        let err = alter_topic_overrides(&broker(), &BTreeMap::new(), &[op("segment.bytes", AlterConfigOp::Set("big".into()))])
            .unwrap_err();
        assert!(err.to_string().contains("not an integer"), "{err}");
    }

    #[test]
    fn deleting_a_key_that_is_not_set_changes_nothing() {
        let current = overrides(&[("retention.ms", "1000")]);
        let next = alter_topic_overrides(&broker(), &current, &[op("flush.ms", AlterConfigOp::Delete)]).unwrap();
        assert_eq!(next, current);
    }
}
