//! Kafka's rules for topic names.

/// Kafka's limit on a topic name's length.
const TOPIC_NAME_MAX_BYTES: usize = 249;

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
}
