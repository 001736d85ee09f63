//! A classic group: its members, generation, chosen protocol and state, with the bookkeeping
//! rules Kafka's ClassicGroup keeps (static members, members pending join or sync, leader
//! election); the protocol rules are in `group_protocol.rs`. Timers, persistence and answers
//! are the manager's; this type only keeps the group consistent.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{GroupState, Member, Protocol, ResponseSlot};

pub struct ClassicGroup {
    pub group_id: String,
    /// The __consumer_offsets partition holding this group's records.
    pub partition: i32,
    pub(super) state: GroupState,
    pub(super) previous_state: GroupState,
    /// Wall-clock ms of the last transition (None for a group loaded without one).
    pub(super) state_timestamp_ms: Option<i64>,
    pub generation_id: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol_name: Option<String>,
    pub(super) leader_id: Option<String>,
    pub(super) members: BTreeMap<String, Member>,
    /// group.instance.id -> member id.
    pub(super) static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED whose second JoinGroup has not come yet.
    pub(super) pending_join_members: HashSet<String>,
    /// Members that got their JoinGroup answer but have not sent SyncGroup yet.
    pub(super) pending_sync_members: HashSet<String>,
    /// Set when a member joins during the initial (delayed) rebalance: the delay is extended.
    pub new_member_added: bool,
    /// The topics the members subscribe to, when the protocol type is "consumer".
    pub(super) subscribed_topics: Option<BTreeSet<String>>,
}

impl ClassicGroup {
    pub fn new(group_id: &str, partition: i32, now_ms: i64) -> Self {
        Self {
            group_id: group_id.to_owned(),
            partition,
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            state_timestamp_ms: Some(now_ms),
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_join_members: HashSet::new(),
            pending_sync_members: HashSet::new(),
            new_member_added: false,
            subscribed_topics: None,
        }
    }

    /// A group as stored in its latest GroupMetadata record: Stable with its members, or
    /// Empty without any.
    pub fn restore(stored: StoredGroup, partition: i32) -> Self {
        let mut group = Self::new(&stored.group_id, partition, 0);
        group.state_timestamp_ms = stored.state_timestamp_ms;
        group.generation_id = stored.generation_id;
        group.protocol_type = stored.protocol_type.filter(|t| !t.is_empty());
        group.protocol_name = stored.protocol_name;
        group.leader_id = stored.leader_id;
        for member in stored.members {
            if let Some(instance) = &member.group_instance_id {
                group.static_members.insert(instance.clone(), member.member_id.clone());
            }
            group.members.insert(member.member_id.clone(), member);
        }
        if !group.members.is_empty() {
            group.state = GroupState::Stable;
            group.previous_state = GroupState::CompletingRebalance;
        }
        if group.leader_id.as_ref().is_none_or(|l| !group.members.contains_key(l)) {
            group.leader_id = group.members.keys().next().cloned();
        }
        group.subscribed_topics = group.compute_subscribed_topics();
        group
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn previous_state(&self) -> GroupState {
        self.previous_state
    }

    pub fn is_in(&self, state: GroupState) -> bool {
        self.state == state
    }

    pub fn state_timestamp_ms(&self) -> Option<i64> {
        self.state_timestamp_ms
    }

    /// Moves to `state`. Panics on a transition Kafka does not allow: that is a bug here.
    pub fn transition_to(&mut self, state: GroupState, now_ms: i64) {
        assert!(
            state.may_follow(self.state),
            "group {} cannot move from {} to {}",
            self.group_id,
            self.state,
            state
        );
        self.previous_state = self.state;
        self.state = state;
        self.state_timestamp_ms = Some(now_ms);
    }

    /// Marks an empty group Dead while its deletion is being written (the state timestamp
    /// stays, in case the deletion fails).
    pub fn mark_dead(&mut self) {
        assert!(self.state == GroupState::Empty, "only an empty group is deleted");
        self.previous_state = self.state;
        self.state = GroupState::Dead;
    }

    /// Puts a group marked Dead by a failed deletion back as it was (Empty).
    pub fn revive(&mut self) {
        if self.state == GroupState::Dead {
            self.state = self.previous_state;
        }
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub fn has_member(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.get(member_id)
    }

    pub fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.get_mut(member_id)
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn members_mut(&mut self) -> impl Iterator<Item = &mut Member> {
        self.members.values_mut()
    }

    pub fn member_ids(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }

    pub fn num_members(&self) -> usize {
        self.members.len()
    }

    /// Adds a member (the first one sets the group's protocol type; the first one, or the
    /// first after all left, leads). `join` is the JoinGroup answer it waits for.
    pub fn add(&mut self, mut member: Member, join: Option<Rc<ResponseSlot<JoinGroupResponse>>>) {
        if let Some(instance) = &member.group_instance_id {
            let previous = self.static_members.insert(instance.clone(), member.member_id.clone());
            assert!(previous.is_none(), "static member {instance} added twice to group {}", self.group_id);
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        assert_eq!(self.protocol_type.as_deref(), Some(member.protocol_type.as_str()), "protocol type checked before add");
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        member.awaiting_join = join;
        self.pending_join_members.remove(&member.member_id);
        self.members.insert(member.member_id.clone(), member);
    }

    /// Removes a member and returns it; the leadership moves on if it led.
    pub fn remove(&mut self, member_id: &str) -> Option<Member> {
        let removed = self.members.remove(member_id);
        if let Some(instance) = removed.as_ref().and_then(|m| m.group_instance_id.as_ref()) {
            self.static_members.remove(instance);
        }
        if self.is_leader(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.pending_join_members.remove(member_id);
        self.pending_sync_members.remove(member_id);
        removed
    }

    /// Gives a joining static member the place of the member it replaces: same assignment,
    /// same leadership. The replaced member's parked requests are fenced.
    pub fn replace_static_member(&mut self, instance_id: &str, old_member_id: &str, new_member_id: &str) {
        let Some(mut member) = self.members.remove(old_member_id) else {
            panic!("replacing unknown member {old_member_id} of group {}", self.group_id);
        };
        if let Some(join) = member.awaiting_join.take() {
            join.fill(
                JoinGroupResponse::default()
                    .with_error_code(ResponseError::FencedInstanceId.code())
                    .with_member_id(StrBytes::from_string(old_member_id.to_owned())),
            );
        }
        if let Some(sync) = member.awaiting_sync.take() {
            sync.fill(SyncGroupResponse::default().with_error_code(ResponseError::FencedInstanceId.code()));
        }
        member.member_id = new_member_id.to_owned();
        self.pending_sync_members.remove(old_member_id);
        self.members.insert(new_member_id.to_owned(), member);
        if self.is_leader(old_member_id) {
            self.leader_id = Some(new_member_id.to_owned());
        }
        self.static_members.insert(instance_id.to_owned(), new_member_id.to_owned());
    }

    pub fn add_pending_member(&mut self, member_id: &str) {
        assert!(!self.has_member(member_id), "pending member {member_id} is already a member");
        self.pending_join_members.insert(member_id.to_owned());
    }

    pub fn is_pending_member(&self, member_id: &str) -> bool {
        self.pending_join_members.contains(member_id)
    }

    pub fn remove_pending_member(&mut self, member_id: &str) -> bool {
        self.pending_join_members.remove(member_id)
    }

    pub fn add_pending_sync_member(&mut self, member_id: &str) {
        self.pending_sync_members.insert(member_id.to_owned());
    }

    pub fn remove_pending_sync_member(&mut self, member_id: &str) {
        self.pending_sync_members.remove(member_id);
    }

    pub fn has_received_sync_from_all_members(&self) -> bool {
        self.pending_sync_members.is_empty()
    }

    pub fn pending_sync_members(&self) -> Vec<String> {
        self.pending_sync_members.iter().cloned().collect()
    }

    pub fn clear_pending_sync_members(&mut self) {
        self.pending_sync_members.clear();
    }

    pub fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.static_members.get(instance_id).map(String::as_str)
    }

    pub fn num_awaiting_join(&self) -> usize {
        self.members.values().filter(|m| m.is_awaiting_join()).count()
    }

    /// Every member has rejoined and no MEMBER_ID_REQUIRED member is still on its way.
    pub fn has_all_members_joined(&self) -> bool {
        self.members.len() == self.num_awaiting_join() && self.pending_join_members.is_empty()
    }

    /// Dynamic members that did not rejoin in this join phase.
    pub fn not_yet_rejoined_dynamic_members(&self) -> Vec<String> {
        self.members.values().filter(|m| !m.is_awaiting_join() && !m.is_static()).map(|m| m.member_id.clone()).collect()
    }

    /// The group's rebalance timeout: the largest of its members'.
    pub fn rebalance_timeout_ms(&self) -> i32 {
        self.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0)
    }

    /// `<client.id>-<uuid>`, or `<group.instance.id>-<uuid>` for a static member, as Kafka.
    pub fn generate_member_id(client_id: &str, group_instance_id: Option<&str>) -> String {
        format!("{}-{}", group_instance_id.unwrap_or(client_id), Uuid::new_v4())
    }

    /// Kafka's validateMember: a static member must be the one currently mapped to its
    /// instance id (FENCED_INSTANCE_ID otherwise), and the member must exist.
    pub fn validate_member(&self, member_id: &str, group_instance_id: Option<&str>) -> Result<(), ResponseError> {
        if let Some(instance) = group_instance_id {
            match self.static_member_id(instance) {
                None => return Err(ResponseError::UnknownMemberId),
                Some(existing) if existing != member_id => return Err(ResponseError::FencedInstanceId),
                Some(_) => {}
            }
        }
        if !self.has_member(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        Ok(())
    }

    /// Replaces a member's protocols and timeouts; `join` is its new parked JoinGroup. An older
    /// parked one replaced by a new one is answered REBALANCE_IN_PROGRESS so its task does not
    /// linger; with `join` None the caller answers it.
    pub fn update_member(
        &mut self,
        member_id: &str,
        protocols: Vec<Protocol>,
        rebalance_timeout_ms: i32,
        session_timeout_ms: i32,
        join: Option<Rc<ResponseSlot<JoinGroupResponse>>>,
    ) {
        let member = self.members.get_mut(member_id).expect("updating a known member");
        member.protocols = protocols;
        member.rebalance_timeout_ms = rebalance_timeout_ms;
        member.session_timeout_ms = session_timeout_ms;
        let previous = std::mem::replace(&mut member.awaiting_join, join);
        if let (Some(old), Some(new)) = (previous, &member.awaiting_join) {
            if !Rc::ptr_eq(&old, new) {
                old.fill(
                    JoinGroupResponse::default()
                        .with_error_code(ResponseError::RebalanceInProgress.code())
                        .with_member_id(StrBytes::from_string(member_id.to_owned())),
                );
            }
        }
    }

    /// Answers the member's parked JoinGroup, if any.
    pub fn complete_join(&mut self, member_id: &str, response: JoinGroupResponse) -> bool {
        let slot = self.members.get_mut(member_id).and_then(|m| m.awaiting_join.take());
        slot.is_some_and(|slot| slot.fill(response))
    }

    /// Answers the member's parked SyncGroup, if any.
    pub fn complete_sync(&mut self, member_id: &str, response: SyncGroupResponse) -> bool {
        let slot = self.members.get_mut(member_id).and_then(|m| m.awaiting_sync.take());
        slot.is_some_and(|slot| slot.fill(response))
    }

    /// If the leader did not rejoin, a member that did leads instead. False if no member
    /// rejoined (the join phase cannot complete yet).
    pub fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.as_deref() else { return false };
        if self.members.get(leader).is_some_and(Member::is_awaiting_join) {
            return true;
        }
        match self.members.values().find(|m| m.is_awaiting_join()) {
            Some(joined) => {
                self.leader_id = Some(joined.member_id.clone());
                true
            }
            None => false,
        }
    }

}

/// A group as a GroupMetadata record stores it.
pub struct StoredGroup {
    pub group_id: String,
    pub protocol_type: Option<String>,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    pub state_timestamp_ms: Option<i64>,
    pub members: Vec<Member>,
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
