//! Heartbeat on the coordinator: keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::error::ResponseError;

use super::{GroupManager, Now};
use crate::group::GroupState;

impl GroupManager {
    /// The heartbeat's error code (0 when all is well).
    pub fn heartbeat(
        &mut self,
        partition: i32,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now: Now,
    ) -> Result<(), ResponseError> {
        self.check_partition(partition)?;
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let group = self.groups.get(group_id).ok_or(ResponseError::UnknownMemberId)?;
        if group.is_in(GroupState::Dead) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        group.validate_member(member_id, group_instance_id)?;
        if generation_id != group.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        match group.state() {
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => {
                self.reschedule_session(group_id, member_id, now);
                Err(ResponseError::RebalanceInProgress)
            }
            // A member may heartbeat as soon as it has its JoinGroup answer, before SyncGroup.
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.reschedule_session(group_id, member_id, now);
                Ok(())
            }
        }
    }
}
