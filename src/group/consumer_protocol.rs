//! The part of the consumer protocol ("consumer" protocol type) the coordinator reads: the
//! topics a member subscribes to, from its JoinGroup metadata. Every version of
//! ConsumerProtocolSubscription starts with `version: i16, topics: [string]`, so that prefix is
//! all that is parsed, as Kafka does.

use std::collections::BTreeSet;

use bytes::Buf;

/// The protocol type of Kafka consumers.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The subscribed topics in a subscription, or None if it does not parse.
pub fn subscribed_topics(mut metadata: &[u8]) -> Option<BTreeSet<String>> {
    if metadata.remaining() < 2 + 4 {
        return None;
    }
    let _version = metadata.get_i16();
    let count = usize::try_from(metadata.get_i32()).ok()?;
    let mut topics = BTreeSet::new();
    for _ in 0..count {
        if metadata.remaining() < 2 {
            return None;
        }
        let len = usize::try_from(metadata.get_i16()).ok()?;
        if metadata.remaining() < len {
            return None;
        }
        topics.insert(std::str::from_utf8(&metadata[..len]).ok()?.to_owned());
        metadata.advance(len);
    }
    Some(topics)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BufMut;

    /// A ConsumerProtocolSubscription v0 for `topics`, with no user data.
    pub(crate) fn subscription(topics: &[&str]) -> bytes::Bytes {
        let mut buf = bytes::BytesMut::new();
        buf.put_i16(0);
        buf.put_i32(topics.len() as i32);
        for topic in topics {
            buf.put_i16(topic.len() as i16);
            buf.put_slice(topic.as_bytes());
        }
        buf.put_i32(-1);
        buf.freeze()
    }

    #[test]
    fn the_subscribed_topics_are_read_from_the_subscription() {
        let topics = subscribed_topics(&subscription(&["orders", "payments"])).unwrap();
        assert_eq!(topics.into_iter().collect::<Vec<_>>(), ["orders", "payments"]);
    }

    #[test]
    fn a_cut_subscription_does_not_parse() {
        let full = subscription(&["orders"]);
        assert!(subscribed_topics(&full[..full.len() - 6]).is_none());
        assert!(subscribed_topics(b"").is_none());
    }
}
