//! How a classic group picks and describes its protocol: which joining members fit, which
//! protocol the next generation uses, what the leader is shown, and the topics a consumer
//! group subscribes to (Kafka's ClassicGroup protocol rules).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::protocol::StrBytes;

use super::consumer_protocol::{subscribed_topics, CONSUMER_PROTOCOL_TYPE};
use super::{ClassicGroup, GroupState, Protocol};

impl ClassicGroup {
    /// Whether a member joining with this protocol type and these protocols fits: any type and
    /// protocols for an empty group, otherwise the group's type and at least one protocol every
    /// current member supports.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| self.members.values().all(|m| m.supports(&p.name)))
    }

    /// The protocol of the next generation: each member votes for its favourite among those
    /// all members support; most votes wins (a tie goes to the alphabetically first name).
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: HashSet<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| self.members.values().all(|m| m.supports(name)))
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(choice) = member.vote(&candidates) {
                *votes.entry(choice).or_default() += 1;
            }
        }
        let most = votes.values().copied().max()?;
        votes.into_iter().find(|(_, n)| *n == most).map(|(name, _)| name.to_owned())
    }

    /// Ends a join phase: next generation, its protocol, and CompletingRebalance (or Empty
    /// when no member is left).
    pub fn init_next_generation(&mut self, now_ms: i64) {
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::Empty, now_ms);
        } else {
            self.protocol_name = self.select_protocol();
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::CompletingRebalance, now_ms);
        }
        self.pending_sync_members.clear();
    }

    /// The members as the leader sees them in its JoinGroup answer: each one's metadata for
    /// the chosen protocol.
    pub fn leader_view_of_members(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| {
                JoinGroupResponseMember::default()
                    .with_member_id(StrBytes::from_string(m.member_id.clone()))
                    .with_group_instance_id(m.group_instance_id.clone().map(StrBytes::from_string))
                    .with_metadata(m.metadata(protocol).cloned().unwrap_or_default())
            })
            .collect()
    }

    /// Every member's current assignment.
    pub fn assignments(&self) -> BTreeMap<String, Bytes> {
        self.members.values().map(|m| (m.member_id.clone(), m.assignment.clone())).collect()
    }

    pub fn can_rebalance(&self) -> bool {
        GroupState::PreparingRebalance.may_follow(self.state)
    }

    pub fn uses_consumer_protocol(&self) -> bool {
        self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
    }

    /// The union of the members' subscriptions, known only for "consumer" groups whose
    /// metadata parses (Kafka's computeSubscribedTopics).
    pub(super) fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if !self.uses_consumer_protocol() {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            topics.extend(subscribed_topics(member.metadata(protocol)?)?);
        }
        Some(topics)
    }

    /// Whether the group consumes `topic`: its offsets may then be neither deleted nor expired.
    /// Unknown subscriptions count as subscribed for consumer groups, as in Kafka.
    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        match &self.subscribed_topics {
            Some(topics) => topics.contains(topic),
            None => self.uses_consumer_protocol(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::consumer_protocol::tests::subscription;
    use super::super::member::tests::{member, protocol};
    use super::*;
    use crate::group::Member;

    fn group_with(members: Vec<Member>) -> ClassicGroup {
        let mut group = ClassicGroup::new("g", 0, 0);
        for m in members {
            group.add(m, None);
        }
        group
    }

    #[test]
    fn the_protocol_all_members_support_and_most_prefer_is_selected() {
        let group = group_with(vec![
            member("a", vec![protocol("range", b""), protocol("roundrobin", b"")]),
            member("b", vec![protocol("roundrobin", b""), protocol("range", b"")]),
            member("c", vec![protocol("roundrobin", b""), protocol("sticky", b"")]),
        ]);
        assert_eq!(group.select_protocol().as_deref(), Some("roundrobin"));
    }

    #[test]
    fn a_non_empty_group_refuses_a_member_without_a_common_protocol_or_of_another_type() {
        let mut group = group_with(vec![member("a", vec![protocol("range", b"")])]);
        group.transition_to(GroupState::PreparingRebalance, 1);
        assert!(group.supports_protocols("consumer", &[protocol("sticky", b""), protocol("range", b"")]));
        assert!(!group.supports_protocols("consumer", &[protocol("sticky", b"")]));
        assert!(!group.supports_protocols("connect", &[protocol("range", b"")]));
        let empty = ClassicGroup::new("e", 0, 0);
        assert!(empty.supports_protocols("anything", &[protocol("x", b"")]));
        assert!(!empty.supports_protocols("", &[protocol("x", b"")]));
        assert!(!empty.supports_protocols("consumer", &[]));
    }

    #[test]
    fn a_new_generation_picks_the_protocol_and_the_subscribed_topics() {
        let sub = subscription(&["orders"]);
        let mut group = ClassicGroup::new("g", 0, 0);
        group.add(member("a", vec![Protocol { name: "range".into(), metadata: sub }]), None);
        group.transition_to(GroupState::PreparingRebalance, 1);
        group.init_next_generation(2);
        assert_eq!(group.generation_id, 1);
        assert_eq!(group.state(), GroupState::CompletingRebalance);
        assert_eq!(group.protocol_name(), Some("range"));
        assert!(group.is_subscribed_to_topic("orders"));
        assert!(!group.is_subscribed_to_topic("payments"));
        group.remove("a");
        group.transition_to(GroupState::PreparingRebalance, 3);
        group.init_next_generation(4);
        assert_eq!(group.state(), GroupState::Empty);
        assert!(!group.is_subscribed_to_topic("orders"));
    }
}
