//! ListGroups: the groups of every shard's coordinator, filtered by state (v4+) and type
//! (v5+). A shard still loading makes the answer COORDINATOR_LOAD_IN_PROGRESS, as in Kafka.

use std::rc::Rc;

use kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};

use super::coordinator_route::{call_every_coordinator, mismatched};
use crate::group::{GroupRequest, GroupResponse};
use crate::shard::ShardState;

pub async fn handle(shard: &Rc<ShardState>, request: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let states_filter: Vec<String> = if version >= 4 { request.states_filter.iter().map(ToString::to_string).collect() } else { Vec::new() };
    let types_filter: Vec<String> = if version >= 5 { request.types_filter.iter().map(ToString::to_string).collect() } else { Vec::new() };
    let answers = call_every_coordinator(shard, || GroupRequest::List { states_filter: states_filter.clone(), types_filter: types_filter.clone() }).await;
    let mut groups = Vec::new();
    for answer in answers {
        let error = match answer {
            Ok(GroupResponse::List(Ok(listed))) => {
                groups.extend(listed);
                continue;
            }
            Ok(GroupResponse::List(Err(code))) => code,
            Ok(_) => mismatched("ListGroups").code(),
            Err(e) => e.code(),
        };
        return ListGroupsResponse::default().with_error_code(error);
    }
    if version < 4 {
        for group in &mut groups {
            group.group_state = Default::default();
        }
    }
    if version < 5 {
        for group in &mut groups {
            group.group_type = Default::default();
        }
    }
    groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
    ListGroupsResponse::default().with_groups(groups)
}
