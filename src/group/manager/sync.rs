//! SyncGroup on the coordinator: followers park until the leader's assignment is durable;
//! the leader's SyncGroup writes the group (with every assignment) and then answers all.

use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::SyncGroupResponse;
use kafka_protocol::protocol::StrBytes;
use tracing::{info, warn};

use super::{group_metadata_record, sync_error, GroupManager, Now};
use crate::group::{GroupState, ResponseSlot, WriteError};
use crate::protocol::error_code::write_error_code;

/// A SyncGroup request, normalized over versions.
#[derive(Debug, Clone)]
pub struct SyncParams {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// Mandatory from v5 (None before).
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
    pub version: i16,
}

type SyncSlot = Rc<ResponseSlot<SyncGroupResponse>>;

impl GroupManager {
    pub fn sync_group(&mut self, partition: i32, params: SyncParams) -> SyncSlot {
        let slot = ResponseSlot::new();
        match self.validate_sync(partition, &params) {
            Err(error) => {
                slot.fill(sync_error(error));
            }
            Ok(GroupState::PreparingRebalance) => {
                slot.fill(sync_error(ResponseError::RebalanceInProgress));
            }
            Ok(GroupState::CompletingRebalance) => self.sync_during_completing_rebalance(params, &slot),
            Ok(GroupState::Stable) => {
                let group = self.groups.get_mut(&params.group_id).expect("validated");
                group.remove_pending_sync_member(&params.member_id);
                let member = group.member(&params.member_id).expect("validated");
                slot.fill(
                    SyncGroupResponse::default()
                        .with_protocol_type(group.protocol_type().map(|t| StrBytes::from_string(t.to_owned())))
                        .with_protocol_name(group.protocol_name().map(|p| StrBytes::from_string(p.to_owned())))
                        .with_assignment(member.assignment.clone()),
                );
                self.maybe_cancel_sync_timer(&params.group_id);
            }
            Ok(GroupState::Empty | GroupState::Dead) => {
                slot.fill(sync_error(ResponseError::UnknownMemberId));
            }
        }
        slot
    }

    /// The checks of KafkaApis and of the coordinator, in Kafka's order; the group's state if
    /// all pass.
    fn validate_sync(&self, partition: i32, params: &SyncParams) -> Result<GroupState, ResponseError> {
        self.check_partition(partition)?;
        if params.group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if params.version >= 5 && (params.protocol_type.is_none() || params.protocol_name.is_none()) {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        let group = self.groups.get(&params.group_id).ok_or(ResponseError::UnknownMemberId)?;
        match group.state() {
            GroupState::Empty => return Err(ResponseError::UnknownMemberId),
            GroupState::Dead => return Err(ResponseError::CoordinatorNotAvailable),
            _ => {}
        }
        group.validate_member(&params.member_id, params.group_instance_id.as_deref())?;
        if params.generation_id != group.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        let inconsistent = |asked: &Option<String>, actual: Option<&str>| matches!((asked, actual), (Some(a), Some(b)) if a != b);
        if inconsistent(&params.protocol_type, group.protocol_type()) || inconsistent(&params.protocol_name, group.protocol_name()) {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        Ok(group.state())
    }

    fn sync_during_completing_rebalance(&mut self, params: SyncParams, slot: &SyncSlot) {
        let group = self.groups.get_mut(&params.group_id).expect("validated");
        let member = group.member_mut(&params.member_id).expect("validated");
        if let Some(previous) = member.awaiting_sync.replace(Rc::clone(slot)) {
            previous.fill(sync_error(ResponseError::RebalanceInProgress));
        }
        group.remove_pending_sync_member(&params.member_id);
        if !group.is_leader(&params.member_id) {
            self.maybe_cancel_sync_timer(&params.group_id);
            return;
        }
        info!(group_id = %params.group_id, generation_id = group.generation_id, members = group.num_members(), "assignment received from the leader");
        let mut assignments: BTreeMap<String, Bytes> = params.assignments.into_iter().collect();
        for member_id in group.member_ids() {
            assignments.entry(member_id).or_default();
        }
        let record = group_metadata_record(group, &assignments);
        let (partition, generation_id) = (group.partition, group.generation_id);
        let group_id = params.group_id;
        self.maybe_cancel_sync_timer(&group_id);
        self.append(
            partition,
            vec![record],
            Box::new(move |manager, result, now| manager.finish_leader_sync(&group_id, generation_id, assignments, result, now)),
        );
    }

    /// The leader's assignment is durable (or failed): answer every parked SyncGroup, unless
    /// the group moved on meanwhile (then the new rebalance answered them).
    fn finish_leader_sync(&mut self, group_id: &str, generation_id: i32, assignments: BTreeMap<String, Bytes>, result: Result<(), WriteError>, now: Now) {
        let Some(group) = self.groups.get_mut(group_id) else { return };
        if !group.is_in(GroupState::CompletingRebalance) || group.generation_id != generation_id {
            return;
        }
        match result {
            Ok(()) => {
                self.set_and_propagate_assignment(group_id, &assignments, now);
                let group = self.groups.get_mut(group_id).expect("group found");
                group.transition_to(GroupState::Stable, now.wall_ms);
                info!(group_id, generation_id, "group is stable");
            }
            Err(e) => {
                warn!(group_id, error = %e, "storing the group's assignment failed");
                self.reset_and_propagate_assignment_with_error(group_id, write_error_code(&e), now);
                self.maybe_prepare_rebalance_or_complete_join(group_id, now);
            }
        }
    }

    /// Once every member has synced, the sync deadline no longer matters.
    fn maybe_cancel_sync_timer(&mut self, group_id: &str) {
        if self.groups.get(group_id).is_some_and(|g| g.has_received_sync_from_all_members()) {
            self.cancel(&crate::group::TimerKey::Sync { group_id: group_id.to_owned() });
        }
    }
}
