//! Heartbeat: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.

use std::rc::Rc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::coordinator_route::{call_coordinator, mismatched};
use crate::group::{GroupRequest, GroupResponse};
use crate::shard::ShardState;

pub async fn handle(shard: &Rc<ShardState>, request: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
    let group_id = request.group_id.to_string();
    let heartbeat = GroupRequest::Heartbeat {
        group_id: group_id.clone(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(ToString::to_string),
        generation_id: request.generation_id,
    };
    let code = match call_coordinator(shard, &group_id, heartbeat).await {
        Ok(GroupResponse::Heartbeat(code)) => code,
        Ok(_) => mismatched("Heartbeat").code(),
        Err(e) => e.code(),
    };
    HeartbeatResponse::default().with_error_code(code)
}
