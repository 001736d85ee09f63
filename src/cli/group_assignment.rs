//! A consumer group member's assignment, as DescribeGroups returns it: the bytes of Kafka's
//! ConsumerProtocolAssignment (version i16, then topics and partitions), decoded with the
//! kafka-protocol crate.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::Decodable;

/// (topic, partition) pairs of an assignment; empty when the bytes are not a consumer
/// protocol assignment (another protocol type, or nothing assigned yet).
pub fn decode(bytes: &[u8]) -> Vec<(String, i32)> {
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    let Ok(assignment) = ConsumerProtocolAssignment::decode(&mut buf, version) else { return Vec::new() };
    let mut pairs = Vec::new();
    for topic in assignment.assigned_partitions {
        for partition in topic.partitions {
            pairs.push((topic.topic.to_string(), partition));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn an_encoded_assignment_decodes_to_its_partitions() {
        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![TopicPartition::default()
            .with_topic(TopicName(StrBytes::from_static_str("orders")))
            .with_partitions(vec![0, 2])]);
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        assignment.encode(&mut buf, 1).unwrap();
        assert_eq!(decode(&buf), vec![("orders".to_owned(), 0), ("orders".to_owned(), 2)]);
        assert!(decode(&[]).is_empty());
        assert!(decode(&[0, 1, 0xFF]).is_empty());
    }
}
