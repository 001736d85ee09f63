//! DeleteGroups: empty groups are deleted with their committed offsets (tombstones in
//! __consumer_offsets); each group is answered by its coordinating shard.

use std::rc::Rc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};

use super::coordinator_route::{call_coordinator, mismatched};
use crate::group::{GroupRequest, GroupResponse};
use crate::shard::ShardState;

pub async fn handle(shard: &Rc<ShardState>, request: DeleteGroupsRequest, _version: i16) -> DeleteGroupsResponse {
    // A group named twice is deleted (and answered) once, as Kafka does.
    let mut names: Vec<GroupId> = Vec::new();
    for name in &request.groups_names {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let mut results = Vec::with_capacity(names.len());
    for group_id in names {
        let delete = GroupRequest::Delete { group_ids: vec![group_id.to_string()] };
        let code = match call_coordinator(shard, &group_id, delete).await {
            Ok(GroupResponse::Delete(answers)) => answers.first().map_or(0, |(_, code)| *code),
            Ok(_) => mismatched("DeleteGroups").code(),
            Err(e) => e.code(),
        };
        results.push(DeletableGroupResult::default().with_group_id(group_id).with_error_code(code));
    }
    DeleteGroupsResponse::default().with_results(results)
}
