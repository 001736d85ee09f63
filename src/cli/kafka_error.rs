//! Errors from brokers and from librdkafka in Kafka's own words: the protocol's error name
//! (UNKNOWN_TOPIC_OR_PARTITION), what librdkafka says, and a hint about what to do. The one
//! place where the CLI turns an error code into text.

use kafka_protocol::error::ResponseError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Kafka's name for `code`: the protocol's error name for broker errors; for librdkafka's
/// local errors the nearest protocol name, or librdkafka's own (`_QUEUE_FULL`).
pub fn kafka_name(code: RDKafkaErrorCode) -> String {
    use RDKafkaErrorCode as C;
    let raw = code as i32;
    if let Some(name) = i16::try_from(raw).ok().filter(|c| *c > 0).and_then(protocol_name) {
        return name;
    }
    let nearest = match code {
        C::UnsupportedFeature => "UNSUPPORTED_VERSION",
        C::UnknownTopic | C::UnknownPartition => "UNKNOWN_TOPIC_OR_PARTITION",
        C::AllBrokersDown | C::BrokerTransportFailure | C::Resolve => "NETWORK_EXCEPTION",
        C::MessageTimedOut | C::OperationTimedOut => "REQUEST_TIMED_OUT",
        _ => return format!("_{}", screaming_snake(&format!("{code:?}"))),
    };
    nearest.to_owned()
}

/// The protocol's name for a broker's error code (NOT_LEADER_OR_FOLLOWER); None for 0 and
/// codes this client does not know.
pub fn protocol_name(code: i16) -> Option<String> {
    ResponseError::try_from_code(code).map(|error| screaming_snake(&format!("{error:?}")))
}

/// "UnknownTopicOrPartition" -> "UNKNOWN_TOPIC_OR_PARTITION".
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// What to try next, for the errors a CLI user meets.
pub fn hint(name: &str) -> Option<&'static str> {
    Some(match name {
        "UNKNOWN_TOPIC_OR_PARTITION" => "check the name with `strand topic list`",
        "TOPIC_ALREADY_EXISTS" => "pick another name, or delete the topic first",
        "INVALID_PARTITIONS" => "the partition count must be at least 1 (and only grow)",
        "INVALID_REPLICATION_FACTOR" => "a single broker can only hold -r 1",
        "INVALID_CONFIG" => "check the key and value; `strand topic describe` shows the current ones",
        "INVALID_TOPIC_EXCEPTION" => "topic names use [a-zA-Z0-9._-], at most 249 characters",
        "UNSUPPORTED_VERSION" => "the broker does not implement this API (yet); Apache Kafka and Redpanda do",
        "NETWORK_EXCEPTION" => "is the broker running and is --brokers right?",
        "REQUEST_TIMED_OUT" => "the broker did not answer in time; raise --timeout or check the broker",
        "GROUP_ID_NOT_FOUND" => "check the name with `strand group list`",
        "NON_EMPTY_GROUP" => "stop the group's consumers first",
        "COORDINATOR_NOT_AVAILABLE" | "NOT_COORDINATOR" | "COORDINATOR_LOAD_IN_PROGRESS" => {
            "the group coordinator is not ready; retry, or check that the broker serves consumer groups"
        }
        "UNKNOWN_MEMBER_ID" | "ILLEGAL_GENERATION" | "REBALANCE_IN_PROGRESS" => {
            "the group has active members; stop them before changing its offsets"
        }
        "MESSAGE_TOO_LARGE" | "RECORD_LIST_TOO_LARGE" => "raise the topic's max.message.bytes or send smaller records",
        "OFFSET_OUT_OF_RANGE" => "the offset is outside [log start, high watermark]; see `strand topic describe`",
        "POLICY_VIOLATION" => "the broker's policy refused the request",
        "TOPIC_AUTHORIZATION_FAILED" | "GROUP_AUTHORIZATION_FAILED" | "CLUSTER_AUTHORIZATION_FAILED" => {
            "the client is not allowed to do this; check ACLs and credentials (-X sasl...)"
        }
        _ => return None,
    })
}

/// "CONTEXT: NAME (librdkafka's words); hint: ..." for an error code.
pub fn explain_code(context: &str, code: RDKafkaErrorCode) -> anyhow::Error {
    let name = kafka_name(code);
    // rdkafka prints "Name (librdkafka's description)"; keep the description.
    let text = code.to_string();
    let words = text.strip_prefix(&format!("{code:?} (")).and_then(|t| t.strip_suffix(')')).unwrap_or(&text);
    let hint = hint(&name).map(|h| format!("; hint: {h}")).unwrap_or_default();
    anyhow::anyhow!("{context}: {name} ({words}){hint}")
}

/// As [`explain_code`] when the error carries a code; librdkafka's message otherwise.
pub fn explain(context: &str, error: &KafkaError) -> anyhow::Error {
    let code = match error {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    };
    match code {
        Some(code) => explain_code(context, code),
        None => anyhow::anyhow!("{context}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_errors_get_the_protocol_name() {
        assert_eq!(kafka_name(RDKafkaErrorCode::UnknownTopicOrPartition), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(kafka_name(RDKafkaErrorCode::TopicAlreadyExists), "TOPIC_ALREADY_EXISTS");
        assert_eq!(kafka_name(RDKafkaErrorCode::NonEmptyGroup), "NON_EMPTY_GROUP");
    }

    #[test]
    fn local_errors_get_the_nearest_protocol_name_or_librdkafkas() {
        assert_eq!(kafka_name(RDKafkaErrorCode::UnsupportedFeature), "UNSUPPORTED_VERSION");
        assert_eq!(kafka_name(RDKafkaErrorCode::QueueFull), "_QUEUE_FULL");
    }

    #[test]
    fn an_explained_error_is_one_line_with_a_hint() {
        let text = explain_code("topic create t", RDKafkaErrorCode::TopicAlreadyExists).to_string();
        assert!(text.starts_with("topic create t: TOPIC_ALREADY_EXISTS ("), "{text}");
        assert!(text.contains("hint: "), "{text}");
        assert!(!text.contains('\n'));
    }
}
