//! The rebalance itself: starting one, ending the join phase (next generation, answers to the
//! parked JoinGroups, the leader's view of the members), propagating the leader's assignment,
//! and the timers that bound each phase and each member's session.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::SyncGroupResponse;
use kafka_protocol::protocol::StrBytes;
use tracing::{info, warn};

use super::join::current_generation;
use super::{group_metadata_record, join_error, sync_error, GroupManager, Now};
use crate::group::{GroupState, TimerAction, TimerKey};

impl GroupManager {
    /// Kafka's prepareRebalance: parked SyncGroups learn of the new rebalance, and the join
    /// phase starts. An empty group's first rebalance waits group.initial.rebalance.delay.ms
    /// for more members.
    pub(super) fn prepare_rebalance(&mut self, group_id: &str, now: Now) {
        let Some(group) = self.groups.get_mut(group_id) else { return };
        if group.is_in(GroupState::CompletingRebalance) {
            self.reset_and_propagate_assignment_with_error(group_id, ResponseError::RebalanceInProgress, now);
        }
        self.remove_sync_expiration(group_id);
        let group = self.groups.get_mut(group_id).expect("group found");
        let initial = group.is_in(GroupState::Empty);
        if initial {
            let delay_ms = self.config.initial_rebalance_delay_ms;
            let remaining_ms = (group.rebalance_timeout_ms() - delay_ms).max(0);
            let key = TimerKey::Join { group_id: group_id.to_owned() };
            self.timers.schedule(key, now.after_ms(delay_ms), TimerAction::InitialRebalance { delay_ms, remaining_ms });
        }
        group.transition_to(GroupState::PreparingRebalance, now.wall_ms);
        info!(group_id, generation_id = group.generation_id, members = group.num_members(), "preparing to rebalance");
        if !initial {
            self.maybe_complete_join_else_schedule(group_id, now);
        }
    }

    fn maybe_complete_join_else_schedule(&mut self, group_id: &str, now: Now) {
        let Some(group) = self.groups.get(group_id) else { return };
        if group.has_all_members_joined() {
            self.complete_join(group_id, now);
        } else {
            let timeout_ms = group.rebalance_timeout_ms();
            self.schedule_join_timeout(group_id, timeout_ms, now);
        }
    }

    /// Ends the join phase early if everyone is in (never during the delayed first rebalance,
    /// which waits for its timer).
    pub(super) fn maybe_complete_join_phase(&mut self, group_id: &str, now: Now) {
        let Some(group) = self.groups.get(group_id) else { return };
        if group.is_in(GroupState::PreparingRebalance)
            && group.previous_state() != GroupState::Empty
            && group.has_all_members_joined()
        {
            self.complete_join(group_id, now);
        }
    }

    /// Kafka's completeClassicGroupJoin: members that did not rejoin (dynamic ones) are out;
    /// the next generation starts and every parked JoinGroup is answered, the leader's with
    /// all members' metadata. Then every member has the rebalance timeout to send SyncGroup.
    pub(super) fn complete_join(&mut self, group_id: &str, now: Now) {
        self.cancel(&TimerKey::Join { group_id: group_id.to_owned() });
        let Some(group) = self.groups.get_mut(group_id) else { return };
        if !group.is_in(GroupState::PreparingRebalance) {
            return;
        }
        let gone = group.not_yet_rejoined_dynamic_members();
        for member_id in &gone {
            group.remove(member_id);
        }
        if !gone.is_empty() {
            info!(group_id, members = ?gone, "removed members that did not rejoin");
        }
        for member_id in &gone {
            self.cancel_heartbeat(group_id, member_id);
        }
        let group = self.groups.get_mut(group_id).expect("group found");
        if !group.maybe_elect_new_joined_leader() && group.num_members() > 0 {
            // Only static members are left and none rejoined: wait for them (or for their
            // sessions to end).
            let timeout_ms = group.rebalance_timeout_ms();
            self.schedule_join_timeout(group_id, timeout_ms, now);
            return;
        }
        group.init_next_generation(now.wall_ms);
        if group.is_in(GroupState::Empty) {
            info!(group_id, generation_id = group.generation_id, "group is now empty");
            let record = group_metadata_record(group, &BTreeMap::new());
            let partition = group.partition;
            let group_id = group_id.to_owned();
            self.append(
                partition,
                vec![record],
                Box::new(move |_, result, _| {
                    if let Err(e) = result {
                        warn!(group_id, error = %e, "writing the empty group failed");
                    }
                }),
            );
            return;
        }
        info!(group_id, generation_id = group.generation_id, members = group.num_members(),
              protocol = group.protocol_name().unwrap_or_default(), "join phase complete");
        let leader_view = group.leader_view_of_members();
        let member_ids = group.member_ids();
        for member_id in &member_ids {
            let members = if group.is_leader(member_id) { leader_view.clone() } else { Vec::new() };
            let response = current_generation(group, member_id, members);
            group.complete_join(member_id, response);
            if let Some(member) = group.member_mut(member_id) {
                member.is_new = false;
            }
            group.add_pending_sync_member(member_id);
        }
        let (generation_id, timeout_ms) = (group.generation_id, group.rebalance_timeout_ms());
        for member_id in &member_ids {
            self.reschedule_session(group_id, member_id, now);
        }
        let key = TimerKey::Sync { group_id: group_id.to_owned() };
        self.schedule(key, now.after_ms(timeout_ms), TimerAction::ExpirePendingSync { generation_id });
    }

    pub(super) fn on_join_timeout(&mut self, group_id: &str, now: Now) {
        self.complete_join(group_id, now);
    }

    /// The first rebalance's delay ran out: wait once more if members kept joining, else
    /// end the join phase.
    pub(super) fn on_initial_rebalance_delay(&mut self, group_id: &str, delay_ms: i32, remaining_ms: i32, now: Now) {
        let Some(group) = self.groups.get_mut(group_id) else { return };
        if group.new_member_added && remaining_ms != 0 {
            group.new_member_added = false;
            let next_delay_ms = self.config.initial_rebalance_delay_ms.min(remaining_ms);
            let next_remaining_ms = (remaining_ms - delay_ms).max(0);
            let key = TimerKey::Join { group_id: group_id.to_owned() };
            let action = TimerAction::InitialRebalance { delay_ms: next_delay_ms, remaining_ms: next_remaining_ms };
            self.schedule(key, now.after_ms(next_delay_ms), action);
        } else {
            self.complete_join(group_id, now);
        }
    }

    /// A member's session (or a new member's join timeout) ran out.
    pub(super) fn on_heartbeat_expired(&mut self, group_id: &str, member_id: &str, now: Now) {
        let Some(group) = self.groups.get_mut(group_id) else { return };
        if group.is_in(GroupState::Dead) {
            return;
        }
        if group.remove_pending_member(member_id) {
            info!(group_id, member_id, "pending member expired");
            if group.is_in(GroupState::PreparingRebalance) && group.has_all_members_joined() {
                self.complete_join(group_id, now);
            }
            return;
        }
        match group.member(member_id) {
            Some(member) if !member.has_satisfied_heartbeat() => {
                info!(group_id, member_id, "member session expired: removing it");
                self.remove_member_and_update_group(group_id, member_id, now);
            }
            _ => {}
        }
    }

    /// Takes a member out (session expiry or LeaveGroup) and rebalances what is left.
    pub(super) fn remove_member_and_update_group(&mut self, group_id: &str, member_id: &str, now: Now) {
        self.remove_member(group_id, member_id);
        let Some(group) = self.groups.get(group_id) else { return };
        match group.state() {
            GroupState::Stable | GroupState::CompletingRebalance => self.maybe_prepare_rebalance_or_complete_join(group_id, now),
            GroupState::PreparingRebalance if group.has_all_members_joined() => self.complete_join(group_id, now),
            _ => {}
        }
    }

    /// Removes a member without rebalancing: its parked requests are told it is unknown.
    pub(super) fn remove_member(&mut self, group_id: &str, member_id: &str) {
        let Some(group) = self.groups.get_mut(group_id) else { return };
        group.complete_join(member_id, join_error("", ResponseError::UnknownMemberId));
        group.complete_sync(member_id, sync_error(ResponseError::UnknownMemberId));
        group.remove(member_id);
        self.cancel_heartbeat(group_id, member_id);
    }

    /// Members that got their JoinGroup answer did not all send SyncGroup in time: those that
    /// did not are out, and the group rebalances.
    pub(super) fn on_pending_sync_expired(&mut self, group_id: &str, generation_id: i32, now: Now) {
        let Some(group) = self.groups.get(group_id) else { return };
        if group.generation_id != generation_id
            || !matches!(group.state(), GroupState::CompletingRebalance | GroupState::Stable)
            || group.has_received_sync_from_all_members()
        {
            return;
        }
        let late = group.pending_sync_members();
        info!(group_id, members = ?late, "removing members that did not sync in time");
        for member_id in &late {
            self.remove_member(group_id, member_id);
        }
        self.prepare_rebalance(group_id, now);
    }

    pub(super) fn remove_sync_expiration(&mut self, group_id: &str) {
        if let Some(group) = self.groups.get_mut(group_id) {
            group.clear_pending_sync_members();
        }
        self.cancel(&TimerKey::Sync { group_id: group_id.to_owned() });
    }

    pub(super) fn reset_and_propagate_assignment_with_error(&mut self, group_id: &str, error: ResponseError, now: Now) {
        let Some(group) = self.groups.get_mut(group_id) else { return };
        assert!(group.is_in(GroupState::CompletingRebalance), "resetting assignments outside CompletingRebalance");
        for member in group.members_mut() {
            member.assignment = Bytes::new();
        }
        self.propagate_assignment(group_id, Some(error), now);
    }

    pub(super) fn set_and_propagate_assignment(&mut self, group_id: &str, assignments: &BTreeMap<String, Bytes>, now: Now) {
        let Some(group) = self.groups.get_mut(group_id) else { return };
        assert!(group.is_in(GroupState::CompletingRebalance), "assigning outside CompletingRebalance");
        for member in group.members_mut() {
            member.assignment = assignments.get(&member.member_id).cloned().unwrap_or_default();
        }
        self.propagate_assignment(group_id, None, now);
    }

    /// Answers every parked SyncGroup with the member's assignment (or the error), and
    /// restarts the session of each member answered.
    fn propagate_assignment(&mut self, group_id: &str, error: Option<ResponseError>, now: Now) {
        let Some(group) = self.groups.get_mut(group_id) else { return };
        let (protocol_type, protocol_name) = match error {
            None => (group.protocol_type().map(str::to_owned), group.protocol_name().map(str::to_owned)),
            Some(_) => (None, None),
        };
        let mut answered = Vec::new();
        for member_id in group.member_ids() {
            let assignment = group.member(&member_id).map(|m| m.assignment.clone()).unwrap_or_default();
            let response = SyncGroupResponse::default()
                .with_error_code(error.map_or(0, |e| e.code()))
                .with_protocol_type(protocol_type.clone().map(StrBytes::from_string))
                .with_protocol_name(protocol_name.clone().map(StrBytes::from_string))
                .with_assignment(assignment);
            if group.complete_sync(&member_id, response) {
                answered.push(member_id);
            }
        }
        for member_id in answered {
            self.reschedule_session(group_id, &member_id, now);
        }
    }
}
