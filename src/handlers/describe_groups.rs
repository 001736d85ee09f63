//! DescribeGroups: each group from its coordinating shard; members with their assignments
//! (and, once Stable, their metadata). Authorized operations (v3+) are all a group supports,
//! as Kafka reports them without an authorizer.

use std::rc::Rc;

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::coordinator_route::{call_coordinator, mismatched};
use super::metadata::bit_field;
use crate::group::{GroupRequest, GroupResponse};
use crate::shard::ShardState;

/// Kafka's ACL operations on a group: READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
const GROUP_OPERATIONS: &[u8] = &[3, 6, 8, 10, 11];

pub async fn handle(shard: &Rc<ShardState>, request: DescribeGroupsRequest, version: i16) -> DescribeGroupsResponse {
    let mut groups = Vec::with_capacity(request.groups.len());
    for group_id in &request.groups {
        let describe = GroupRequest::Describe { group_id: group_id.to_string(), version };
        let mut described = match call_coordinator(shard, group_id, describe).await {
            Ok(GroupResponse::Describe(described)) => described,
            Ok(_) => DescribedGroup::default().with_group_id(group_id.clone()).with_error_code(mismatched("DescribeGroups").code()),
            Err(e) => DescribedGroup::default().with_group_id(group_id.clone()).with_error_code(e.code()),
        };
        if version >= 3 && request.include_authorized_operations && described.error_code == 0 {
            described.authorized_operations = bit_field(GROUP_OPERATIONS);
        }
        if version < 6 {
            described.error_message = None;
        }
        if version < 4 {
            for member in &mut described.members {
                member.group_instance_id = None;
            }
        }
        groups.push(described);
    }
    DescribeGroupsResponse::default().with_groups(groups)
}
