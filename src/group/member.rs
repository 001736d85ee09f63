//! One member of a classic group: who it is, the protocols it offered in JoinGroup, its
//! assignment, and the JoinGroup or SyncGroup answer it is waiting for.

use std::collections::HashSet;
use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};

use super::ResponseSlot;

/// One protocol a member supports (for consumers, an assignor such as "range"), with the
/// member's metadata for it (for consumers, the subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    pub assignment: Bytes,
    pub awaiting_join: Option<Rc<ResponseSlot<JoinGroupResponse>>>,
    pub awaiting_sync: Option<Rc<ResponseSlot<SyncGroupResponse>>>,
    /// Joined in the current join phase and has not seen a JoinGroup answer yet: such a member
    /// expires on its (new member) timeout even while its JoinGroup is parked.
    pub is_new: bool,
}

impl Member {
    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    pub fn is_awaiting_join(&self) -> bool {
        self.awaiting_join.is_some()
    }

    pub fn is_awaiting_sync(&self) -> bool {
        self.awaiting_sync.is_some()
    }

    /// The member's metadata for `protocol`, if it supports it.
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols.iter().find(|p| p.name == protocol).map(|p| &p.metadata)
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    /// Same protocols, same metadata, same order: a rejoin that changes nothing.
    pub fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    /// The member's most preferred protocol among `candidates`.
    pub fn vote<'a>(&'a self, candidates: &HashSet<&str>) -> Option<&'a str> {
        self.protocols.iter().map(|p| p.name.as_str()).find(|name| candidates.contains(name))
    }

    /// Whether an expired session timer may be ignored: a member in the middle of a rebalance
    /// (parked in JoinGroup or SyncGroup) cannot heartbeat, unless it is new.
    pub fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.is_awaiting_join() || self.is_awaiting_sync())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn protocol(name: &str, metadata: &'static [u8]) -> Protocol {
        Protocol { name: name.into(), metadata: Bytes::from_static(metadata) }
    }

    pub(crate) fn member(member_id: &str, protocols: Vec<Protocol>) -> Member {
        Member {
            member_id: member_id.into(),
            group_instance_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 60_000,
            session_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols,
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
        }
    }

    #[test]
    fn a_member_votes_for_its_most_preferred_candidate() {
        let m = member("m", vec![protocol("range", b""), protocol("roundrobin", b"")]);
        assert_eq!(m.vote(&HashSet::from(["roundrobin", "range"])), Some("range"));
        assert_eq!(m.vote(&HashSet::from(["roundrobin"])), Some("roundrobin"));
        assert_eq!(m.vote(&HashSet::from(["sticky"])), None);
    }

    #[test]
    fn a_parked_member_satisfies_its_heartbeat_unless_new() {
        let mut m = member("m", vec![protocol("range", b"")]);
        assert!(!m.has_satisfied_heartbeat());
        m.awaiting_join = Some(ResponseSlot::new());
        assert!(m.has_satisfied_heartbeat());
        m.is_new = true;
        assert!(!m.has_satisfied_heartbeat());
    }

    #[test]
    fn changed_metadata_is_not_a_match() {
        let m = member("m", vec![protocol("range", b"a")]);
        assert!(m.matches(&[protocol("range", b"a")]));
        assert!(!m.matches(&[protocol("range", b"b")]));
    }
}
