//! DescribeGroups, ListGroups and DeleteGroups on the coordinator.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;
use tracing::{info, warn};

use super::{group_tombstone, offset_tombstone, GroupManager, LoadStatus};
use crate::group::{GroupState, ResponseSlot};
use crate::protocol::error_code::write_error_code;

/// Kafka's group type name of classic groups (ListGroups v5).
const CLASSIC_GROUP_TYPE: &str = "classic";

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl GroupManager {
    /// One group as DescribeGroups shows it: members with their assignments, and their
    /// metadata too once the group is Stable.
    pub fn describe_group(&self, partition: i32, group_id: &str, version: i16) -> DescribedGroup {
        let described = DescribedGroup::default().with_group_id(GroupId(text(group_id)));
        if let Err(error) = self.check_partition(partition) {
            return described.with_error_code(error.code());
        }
        let Some(group) = self.groups.get(group_id).filter(|g| !g.is_in(GroupState::Dead)) else {
            let dead = described.with_group_state(text(GroupState::Dead.name()));
            // Since v6 (KIP-1043) an unknown group is an error; before, a Dead group.
            return if version >= 6 {
                dead.with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(text(&format!("Group {group_id} not found."))))
            } else {
                dead
            };
        };
        let stable_protocol = group.is_in(GroupState::Stable).then(|| group.protocol_name().unwrap_or_default());
        let members = group
            .members()
            .map(|m| {
                let metadata = stable_protocol.and_then(|p| m.metadata(p)).cloned().unwrap_or_default();
                DescribedGroupMember::default()
                    .with_member_id(text(&m.member_id))
                    .with_group_instance_id(m.group_instance_id.as_deref().map(text))
                    .with_client_id(text(&m.client_id))
                    .with_client_host(text(&m.client_host))
                    .with_member_metadata(metadata)
                    .with_member_assignment(m.assignment.clone())
            })
            .collect();
        described
            .with_group_state(text(group.state().name()))
            .with_protocol_type(text(group.protocol_type().unwrap_or_default()))
            .with_protocol_data(text(stable_protocol.unwrap_or_default()))
            .with_members(members)
    }

    /// The groups of every partition this shard owns, filtered by state and type (both
    /// case-insensitive, empty filters match all). COORDINATOR_LOAD_IN_PROGRESS while any
    /// partition is loading, as Kafka answers.
    pub fn list_groups(&self, states_filter: &[String], types_filter: &[String]) -> Result<Vec<ListedGroup>, ResponseError> {
        if !self.active {
            return Err(ResponseError::NotCoordinator);
        }
        if self.partitions.values().any(|p| p.status == LoadStatus::Loading) {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        let types_match = types_filter.is_empty() || types_filter.iter().any(|t| t.trim().eq_ignore_ascii_case(CLASSIC_GROUP_TYPE));
        if !types_match {
            return Ok(Vec::new());
        }
        let mut groups: Vec<ListedGroup> = self
            .groups
            .values()
            .filter(|g| !g.is_in(GroupState::Dead))
            .filter(|g| states_filter.is_empty() || states_filter.iter().any(|s| s.trim().eq_ignore_ascii_case(g.state().name())))
            .map(|g| {
                ListedGroup::default()
                    .with_group_id(GroupId(text(&g.group_id)))
                    .with_protocol_type(text(g.protocol_type().unwrap_or_default()))
                    .with_group_state(text(g.state().name()))
                    .with_group_type(text(CLASSIC_GROUP_TYPE))
            })
            .collect();
        groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
        Ok(groups)
    }

    /// Deletes empty groups of one partition with their offsets (tombstones for each); each
    /// group's error code, in order, once the tombstones are durable.
    pub fn delete_groups(&mut self, partition: i32, group_ids: Vec<String>) -> Rc<ResponseSlot<Vec<(String, i16)>>> {
        if let Err(error) = self.check_partition(partition) {
            return ResponseSlot::ready(group_ids.into_iter().map(|g| (g, error.code())).collect());
        }
        let mut results = Vec::with_capacity(group_ids.len());
        let mut records = Vec::new();
        let mut deleted = Vec::new();
        for group_id in group_ids {
            let code = match self.groups.get_mut(&group_id) {
                None => ResponseError::GroupIdNotFound.code(),
                Some(g) if g.is_in(GroupState::Dead) => ResponseError::GroupIdNotFound.code(),
                Some(g) if !g.is_in(GroupState::Empty) => ResponseError::NonEmptyGroup.code(),
                Some(g) => {
                    // Dead until the tombstones are durable: joins meanwhile are told to retry.
                    g.mark_dead();
                    records.extend(self.offsets.group_offsets(&group_id).map(|(t, p, _)| offset_tombstone(&group_id, t, p)));
                    records.push(group_tombstone(&group_id));
                    deleted.push(group_id.clone());
                    0
                }
            };
            results.push((group_id, code));
        }
        if deleted.is_empty() {
            return ResponseSlot::ready(results);
        }
        let slot = ResponseSlot::new();
        let answer = Rc::clone(&slot);
        self.append(
            partition,
            records,
            Box::new(move |manager, result, _| {
                match &result {
                    Ok(()) => {
                        for group_id in &deleted {
                            manager.offsets.remove_group(group_id);
                            manager.groups.remove(group_id);
                            info!(group_id, "group deleted");
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "writing group tombstones failed");
                        for group_id in &deleted {
                            if let Some(group) = manager.groups.get_mut(group_id) {
                                group.revive();
                            }
                        }
                    }
                }
                let code = result.err().map_or(0, |e| write_error_code(&e).code());
                let results = results.into_iter().map(|(g, c)| if deleted.contains(&g) { (g, code) } else { (g, c) }).collect();
                answer.fill(results);
            }),
        );
        slot
    }
}
