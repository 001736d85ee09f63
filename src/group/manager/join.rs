//! JoinGroup on the coordinator: new members (MEMBER_ID_REQUIRED from v4, static members that
//! replace their previous incarnation), known members rejoining, and the checks before.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::JoinGroupResponse;
use kafka_protocol::protocol::StrBytes;
use tracing::{info, warn};

use super::{group_metadata_record, join_error, GroupManager, Now, NEW_MEMBER_JOIN_TIMEOUT};
use crate::protocol::error_code::write_error_code;
use crate::group::{ClassicGroup, GroupState, Member, Protocol, ResponseSlot, TimerAction, TimerKey, WriteError};

/// A JoinGroup request, normalized over versions (v0's rebalance timeout is its session
/// timeout, as Kafka does).
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub client_id: String,
    pub client_host: String,
    pub reason: Option<String>,
    pub version: i16,
}

type JoinSlot = Rc<ResponseSlot<JoinGroupResponse>>;

impl GroupManager {
    pub fn join_group(&mut self, partition: i32, params: JoinParams, now: Now) -> JoinSlot {
        let slot = ResponseSlot::new();
        if let Err(error) = self.check_join(partition, &params) {
            slot.fill(join_error(&params.member_id, error));
            return slot;
        }
        let is_unknown_member = params.member_id.is_empty();
        let is_new_group = !self.groups.contains_key(&params.group_id);
        if is_new_group {
            if !is_unknown_member {
                slot.fill(join_error(&params.member_id, ResponseError::UnknownMemberId));
                return slot;
            }
            self.groups.insert(params.group_id.clone(), ClassicGroup::new(&params.group_id, partition, now.wall_ms));
        }
        if is_unknown_member {
            self.join_new_member(params.clone(), &slot, now);
        } else {
            self.join_existing_member(params.clone(), &slot, now);
        }
        if is_new_group {
            self.persist_new_group(&params.group_id, &params.member_id, &slot);
        }
        slot
    }

    fn check_join(&self, partition: i32, params: &JoinParams) -> Result<(), ResponseError> {
        self.check_partition(partition)?;
        if params.group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if !(self.config.min_session_timeout_ms..=self.config.max_session_timeout_ms).contains(&params.session_timeout_ms) {
            return Err(ResponseError::InvalidSessionTimeout);
        }
        Ok(())
    }

    /// A new group is written as an empty GroupMetadata record, so it exists after a restart
    /// (Kafka does the same). If that fails the group is forgotten again.
    fn persist_new_group(&mut self, group_id: &str, member_id: &str, slot: &JoinSlot) {
        let Some(group) = self.groups.get(group_id) else { return };
        let empty = ClassicGroup::new(group_id, group.partition, group.state_timestamp_ms().unwrap_or(-1));
        let record = group_metadata_record(&empty, &Default::default());
        let (group_id, member_id, slot) = (group_id.to_owned(), member_id.to_owned(), Rc::clone(slot));
        self.append(
            group.partition,
            vec![record],
            Box::new(move |manager, result, _now| {
                if let Err(e) = result {
                    warn!(group_id, error = %e, "writing a new group failed");
                    slot.fill(join_error(&member_id, write_error_code(&e)));
                    if manager.groups.get(&group_id).is_some_and(|g| g.is_in(GroupState::Empty) && g.num_members() == 0) {
                        manager.groups.remove(&group_id);
                    }
                }
            }),
        );
    }

    fn join_new_member(&mut self, params: JoinParams, slot: &JoinSlot, now: Now) {
        let group = self.groups.get_mut(&params.group_id).expect("group created or found");
        if group.is_in(GroupState::Dead) {
            // Being deleted: the member retries and finds a fresh group.
            slot.fill(join_error("", ResponseError::CoordinatorNotAvailable));
            return;
        }
        if !group.supports_protocols(&params.protocol_type, &params.protocols) {
            slot.fill(join_error("", ResponseError::InconsistentGroupProtocol));
            return;
        }
        let new_member_id = ClassicGroup::generate_member_id(&params.client_id, params.group_instance_id.as_deref());
        if let Some(instance) = params.group_instance_id.clone() {
            match group.static_member_id(&instance).map(str::to_owned) {
                Some(old_member_id) => {
                    info!(group_id = %params.group_id, instance, old_member_id, new_member_id, "static member rejoins with a new member id");
                    self.replace_static_member(params, old_member_id, new_member_id, slot, now);
                }
                None => self.add_member_and_rebalance(params, new_member_id, slot, now),
            }
        } else if params.version >= 4 {
            // The member must come back with this id: a member that never does costs nothing
            // but a pending entry until its session timeout.
            group.add_pending_member(&new_member_id);
            let deadline = now.after_ms(params.session_timeout_ms);
            self.reschedule_heartbeat(&params.group_id, &new_member_id, deadline);
            slot.fill(join_error(&new_member_id, ResponseError::MemberIdRequired));
        } else {
            self.add_member_and_rebalance(params, new_member_id, slot, now);
        }
    }

    fn join_existing_member(&mut self, params: JoinParams, slot: &JoinSlot, now: Now) {
        let group = self.groups.get_mut(&params.group_id).expect("group found");
        let member_id = params.member_id.clone();
        if group.is_in(GroupState::Dead) {
            slot.fill(join_error(&member_id, ResponseError::CoordinatorNotAvailable));
            return;
        }
        if !group.supports_protocols(&params.protocol_type, &params.protocols) {
            slot.fill(join_error(&member_id, ResponseError::InconsistentGroupProtocol));
            return;
        }
        if group.is_pending_member(&member_id) {
            if params.group_instance_id.is_some() {
                // A pending member is always dynamic: the client contradicts itself.
                slot.fill(join_error(&member_id, ResponseError::UnknownMemberId));
                return;
            }
            self.add_member_and_rebalance(params, member_id, slot, now);
            return;
        }
        if let Err(error) = group.validate_member(&member_id, params.group_instance_id.as_deref()) {
            slot.fill(join_error(&member_id, error));
            return;
        }
        let matches = group.member(&member_id).is_some_and(|m| m.matches(&params.protocols));
        match group.state() {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(params, slot, now),
            GroupState::CompletingRebalance if matches => {
                // The member lost its JoinGroup answer: the current generation again.
                let members = if group.is_leader(&member_id) { group.leader_view_of_members() } else { Vec::new() };
                slot.fill(current_generation(group, &member_id, members));
            }
            GroupState::Stable if matches && !group.is_leader(&member_id) => {
                slot.fill(current_generation(group, &member_id, Vec::new()));
            }
            // A changed subscription, or the leader asking for a rebalance (its way to react
            // to changes the metadata does not show, such as new partitions).
            GroupState::CompletingRebalance | GroupState::Stable => self.update_member_and_rebalance(params, slot, now),
            GroupState::Empty | GroupState::Dead => {
                slot.fill(join_error(&member_id, ResponseError::UnknownMemberId));
            }
        }
    }

    fn add_member_and_rebalance(&mut self, params: JoinParams, member_id: String, slot: &JoinSlot, now: Now) {
        let group = self.groups.get_mut(&params.group_id).expect("group found");
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: params.group_instance_id.clone(),
            client_id: params.client_id.clone(),
            client_host: params.client_host.clone(),
            rebalance_timeout_ms: params.rebalance_timeout_ms,
            session_timeout_ms: params.session_timeout_ms,
            protocol_type: params.protocol_type.clone(),
            protocols: params.protocols.clone(),
            assignment: Default::default(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: true,
        };
        if group.is_in(GroupState::PreparingRebalance) && group.previous_state() == GroupState::Empty {
            group.new_member_added = true;
        }
        group.add(member, Some(Rc::clone(slot)));
        // A new member cannot heartbeat while its JoinGroup is parked; if it went away, it
        // must not hold the rebalance forever.
        self.reschedule_heartbeat(&params.group_id, &member_id, now.instant + NEW_MEMBER_JOIN_TIMEOUT);
        info!(group_id = %params.group_id, member_id, reason = params.reason.as_deref().unwrap_or(""), "member joins");
        self.maybe_prepare_rebalance_or_complete_join(&params.group_id, now);
    }

    fn update_member_and_rebalance(&mut self, params: JoinParams, slot: &JoinSlot, now: Now) {
        let group = self.groups.get_mut(&params.group_id).expect("group found");
        group.update_member(
            &params.member_id,
            params.protocols,
            params.rebalance_timeout_ms,
            params.session_timeout_ms,
            Some(Rc::clone(slot)),
        );
        self.maybe_prepare_rebalance_or_complete_join(&params.group_id, now);
    }

    /// A static member rejoined without its member id (it restarted): it takes the old
    /// member's place. In a Stable group whose protocol stays the same there is no rebalance:
    /// the member keeps the old assignment once the new member id is durable.
    fn replace_static_member(&mut self, params: JoinParams, old_member_id: String, new_member_id: String, slot: &JoinSlot, now: Now) {
        let group_id = params.group_id.clone();
        let instance = params.group_instance_id.clone().expect("static member");
        let group = self.groups.get_mut(&group_id).expect("group found");
        let leader_before = group.leader_id().unwrap_or_default().to_owned();
        let old = group.member(&old_member_id).map(|m| (m.protocols.clone(), m.rebalance_timeout_ms, m.session_timeout_ms));
        let Some((old_protocols, old_rebalance_ms, old_session_ms)) = old else {
            // The instance maps to no member: a bug, but the request must still be answered.
            slot.fill(join_error("", ResponseError::UnknownMemberId));
            return;
        };
        group.replace_static_member(&instance, &old_member_id, &new_member_id);
        group.update_member(&new_member_id, params.protocols, params.rebalance_timeout_ms, params.session_timeout_ms, Some(Rc::clone(slot)));
        self.cancel_heartbeat(&group_id, &old_member_id);
        self.reschedule_session(&group_id, &new_member_id, now);
        let group = self.groups.get_mut(&group_id).expect("group found");
        match group.state() {
            GroupState::Stable if group.select_protocol().as_deref() == group.protocol_name() => {
                let record = group_metadata_record(group, &group.assignments());
                let partition = group.partition;
                let replacement = StaticReplacement {
                    group_id,
                    instance,
                    old_member_id,
                    new_member_id,
                    old_protocols,
                    old_rebalance_ms,
                    old_session_ms,
                    leader_before,
                    skip_assignment: params.version >= 9,
                };
                let slot = Rc::clone(slot);
                self.append(
                    partition,
                    vec![record],
                    Box::new(move |manager, result, now| manager.finish_static_replacement(replacement, result, &slot, now)),
                );
            }
            GroupState::Stable => self.maybe_prepare_rebalance_or_complete_join(&group_id, now),
            // The leader may already be assigning to the old member id: start over.
            GroupState::CompletingRebalance => self.prepare_rebalance(&group_id, now),
            GroupState::PreparingRebalance | GroupState::Empty | GroupState::Dead => {
                self.maybe_complete_join_phase(&group_id, now);
            }
        }
    }

    fn finish_static_replacement(&mut self, r: StaticReplacement, result: Result<(), WriteError>, slot: &JoinSlot, now: Now) {
        let Some(group) = self.groups.get_mut(&r.group_id) else {
            slot.fill(join_error("", ResponseError::UnknownMemberId));
            return;
        };
        if let Err(e) = result {
            warn!(group_id = %r.group_id, error = %e, "persisting a static member's new id failed: reverting");
            if group.has_member(&r.new_member_id) {
                group.replace_static_member(&r.instance, &r.new_member_id, &r.old_member_id);
                group.update_member(&r.old_member_id, r.old_protocols, r.old_rebalance_ms, r.old_session_ms, None);
                self.cancel_heartbeat(&r.group_id, &r.new_member_id);
                self.reschedule_session(&r.group_id, &r.old_member_id, now);
            }
            slot.fill(join_error("", write_error_code(&e)));
            return;
        }
        let is_leader = group.is_leader(&r.new_member_id);
        // Since v9 the leader learns it leads but is told to skip the assignment (the group
        // stays as it is); before, it is shown the old leader so it does not reassign.
        let response = if r.skip_assignment {
            let members = if is_leader { group.leader_view_of_members() } else { Vec::new() };
            current_generation(group, &r.new_member_id, members).with_skip_assignment(is_leader)
        } else {
            current_generation(group, &r.new_member_id, Vec::new()).with_leader(StrBytes::from_string(r.leader_before))
        };
        group.complete_join(&r.new_member_id, response);
    }

    /// Starts a rebalance if the group may, otherwise tries to end the join phase.
    pub(super) fn maybe_prepare_rebalance_or_complete_join(&mut self, group_id: &str, now: Now) {
        if self.groups.get(group_id).is_some_and(ClassicGroup::can_rebalance) {
            self.prepare_rebalance(group_id, now);
        } else {
            self.maybe_complete_join_phase(group_id, now);
        }
    }

    /// Schedules the join phase's deadline (the group's rebalance timeout).
    pub(super) fn schedule_join_timeout(&mut self, group_id: &str, timeout_ms: i32, now: Now) {
        let key = TimerKey::Join { group_id: group_id.to_owned() };
        self.schedule(key, now.after_ms(timeout_ms), TimerAction::CompleteJoin);
    }
}

/// What a static member replacement must remember until its record is durable.
struct StaticReplacement {
    group_id: String,
    instance: String,
    old_member_id: String,
    new_member_id: String,
    old_protocols: Vec<Protocol>,
    old_rebalance_ms: i32,
    old_session_ms: i32,
    leader_before: String,
    skip_assignment: bool,
}

/// The JoinGroup answer describing the group's current generation.
pub(super) fn current_generation(
    group: &ClassicGroup,
    member_id: &str,
    members: Vec<kafka_protocol::messages::join_group_response::JoinGroupResponseMember>,
) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_generation_id(group.generation_id)
        .with_protocol_type(group.protocol_type().map(|t| StrBytes::from_string(t.to_owned())))
        .with_protocol_name(group.protocol_name().map(|p| StrBytes::from_string(p.to_owned())))
        .with_leader(StrBytes::from_string(group.leader_id().unwrap_or_default().to_owned()))
        .with_member_id(StrBytes::from_string(member_id.to_owned()))
        .with_members(members)
}
