//! Kafka's rules for topic names, and the names of its internal topics.

/// Kafka's limit on a topic name's length.
const TOPIC_NAME_MAX_BYTES: usize = 249;

/// The internal topic holding committed offsets and group metadata (Kafka's name).
pub const GROUP_METADATA_TOPIC_NAME: &str = "__consumer_offsets";

/// The internal topic of the transaction coordinator (Kafka's name; strand has none yet, but
/// the name stays reserved as internal).
pub const TRANSACTION_STATE_TOPIC_NAME: &str = "__transaction_state";

/// Kafka's internal topics: reported with is_internal in Metadata, closed to produce and to
/// deletion.
pub fn is_internal_topic(name: &str) -> bool {
    name == GROUP_METADATA_TOPIC_NAME || name == TRANSACTION_STATE_TOPIC_NAME
}

/// Why a name is not a legal topic name, or None if it is.
pub fn invalid_topic_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Some(format!("topic name cannot be '{name}'"));
    }
    if name.len() > TOPIC_NAME_MAX_BYTES {
        return Some(format!("topic name is longer than {TOPIC_NAME_MAX_BYTES} characters"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Some(format!("topic name '{name}' has characters other than [a-zA-Z0-9._-]"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_topic_name_rules_hold() {
        assert!(invalid_topic_name("orders.v1_eu-west").is_none());
        assert!(invalid_topic_name("").is_some());
        assert!(invalid_topic_name("..").is_some());
        assert!(invalid_topic_name("a/b").is_some());
        assert!(invalid_topic_name(&"x".repeat(250)).is_some());
    }

    #[test]
    fn only_kafkas_own_internal_topics_are_internal() {
        assert!(is_internal_topic("__consumer_offsets"));
        assert!(is_internal_topic("__transaction_state"));
        assert!(!is_internal_topic("__my_topic"));
    }
}
