//! LeaveGroup: one member (v0-v2) or a batch of members, by member id or group.instance.id
//! (v3+). Before v3 the member's error is the top-level error, as Kafka answers.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::coordinator_route::{call_coordinator, mismatched};
use crate::group::{GroupRequest, GroupResponse, LeavingMember};
use crate::shard::ShardState;

pub async fn handle(shard: &Rc<ShardState>, request: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let group_id = request.group_id.to_string();
    let members = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(ToString::to_string),
                reason: m.reason.as_ref().map(ToString::to_string),
            })
            .collect()
    } else {
        vec![LeavingMember { member_id: request.member_id.to_string(), group_instance_id: None, reason: None }]
    };
    let response = match call_coordinator(shard, &group_id, GroupRequest::Leave { group_id: group_id.clone(), members }).await {
        Ok(GroupResponse::Leave(response)) => response,
        Ok(_) => LeaveGroupResponse::default().with_error_code(mismatched("LeaveGroup").code()),
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
    };
    for_version(response, version)
}

fn for_version(response: LeaveGroupResponse, version: i16) -> LeaveGroupResponse {
    if version >= 3 {
        return response;
    }
    let code = if response.error_code != 0 {
        response.error_code
    } else {
        response.members.first().map_or(ResponseError::UnknownServerError.code(), |m| m.error_code)
    };
    LeaveGroupResponse::default().with_error_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::leave_group_response::MemberResponse;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn before_v3_the_members_error_is_the_answer() {
        let member = MemberResponse::default().with_error_code(ResponseError::UnknownMemberId.code());
        let response = LeaveGroupResponse::default().with_members(vec![member]);
        let old = for_version(response.clone(), 1);
        assert_eq!(old.error_code, ResponseError::UnknownMemberId.code());
        for version in 0..=5 {
            let mut buf = bytes::BytesMut::new();
            for_version(response.clone(), version).encode(&mut buf, version).unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
    }
}
