//! LeaveGroup on the coordinator: members leave by member id, or (v3+, administratively) by
//! group.instance.id alone; the rest of the group rebalances.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::LeaveGroupResponse;
use kafka_protocol::protocol::StrBytes;
use tracing::info;

use super::{GroupManager, Now};
use crate::group::GroupState;

/// One member asked to leave.
#[derive(Debug, Clone)]
pub struct LeavingMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub reason: Option<String>,
}

impl GroupManager {
    pub fn leave_group(&mut self, partition: i32, group_id: &str, leaving: Vec<LeavingMember>, now: Now) -> LeaveGroupResponse {
        let top_level = |error: ResponseError| LeaveGroupResponse::default().with_error_code(error.code());
        if let Err(error) = self.check_partition(partition) {
            return top_level(error);
        }
        if group_id.is_empty() {
            return top_level(ResponseError::InvalidGroupId);
        }
        let Some(group) = self.groups.get(group_id) else { return top_level(ResponseError::UnknownMemberId) };
        if group.is_in(GroupState::Dead) {
            return top_level(ResponseError::CoordinatorNotAvailable);
        }
        let mut responses = Vec::with_capacity(leaving.len());
        let mut left = 0;
        for member in leaving {
            let result = self.leave_one(group_id, &member);
            left += usize::from(result.is_ok());
            responses.push(
                MemberResponse::default()
                    .with_member_id(StrBytes::from_string(member.member_id))
                    .with_group_instance_id(member.group_instance_id.map(StrBytes::from_string))
                    .with_error_code(result.err().map_or(0, |e| e.code())),
            );
        }
        if left > 0 {
            match self.groups.get(group_id).map(|g| g.state()) {
                Some(GroupState::Stable | GroupState::CompletingRebalance) => self.maybe_prepare_rebalance_or_complete_join(group_id, now),
                Some(GroupState::PreparingRebalance) => self.maybe_complete_join_phase(group_id, now),
                _ => {}
            }
        }
        LeaveGroupResponse::default().with_members(responses)
    }

    fn leave_one(&mut self, group_id: &str, member: &LeavingMember) -> Result<(), ResponseError> {
        let group = self.groups.get_mut(group_id).expect("group found");
        let reason = member.reason.as_deref().unwrap_or("not provided");
        if member.member_id.is_empty() {
            let instance = member.group_instance_id.as_deref().ok_or(ResponseError::UnknownMemberId)?;
            let member_id = group.static_member_id(instance).ok_or(ResponseError::UnknownMemberId)?.to_owned();
            info!(group_id, member_id, instance, reason, "static member removed by LeaveGroup");
            self.remove_member(group_id, &member_id);
            return Ok(());
        }
        if group.remove_pending_member(&member.member_id) {
            self.cancel_heartbeat(group_id, &member.member_id);
            info!(group_id, member_id = %member.member_id, reason, "pending member leaves");
            return Ok(());
        }
        group.validate_member(&member.member_id, member.group_instance_id.as_deref())?;
        info!(group_id, member_id = %member.member_id, reason, "member leaves");
        self.remove_member(group_id, &member.member_id);
        Ok(())
    }
}
