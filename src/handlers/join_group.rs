//! JoinGroup: parks on the coordinating shard until the join phase ends (a delayed
//! operation), then answers with the generation, the chosen protocol and, for the leader,
//! every member's metadata.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::coordinator_route::{call_coordinator, mismatched};
use crate::group::{GroupRequest, GroupResponse, JoinParams, Protocol};
use crate::shard::ShardState;

pub async fn handle(
    shard: &Rc<ShardState>,
    request: JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> JoinGroupResponse {
    let params = JoinParams {
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(ToString::to_string),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| Protocol { name: p.name.to_string(), metadata: p.metadata.clone() })
            .collect(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout bounds the rebalance, as in Kafka.
        rebalance_timeout_ms: if version == 0 { request.session_timeout_ms } else { request.rebalance_timeout_ms },
        client_id: client_id.to_owned(),
        client_host: client_host.to_owned(),
        reason: request.reason.as_ref().map(ToString::to_string),
        version,
    };
    let member_id = request.member_id.clone();
    let response = match call_coordinator(shard, &params.group_id.clone(), GroupRequest::Join(params)).await {
        Ok(GroupResponse::Join(response)) => response,
        Ok(_) => error(member_id, mismatched("JoinGroup")),
        Err(e) => error(member_id, e),
    };
    for_version(response, version)
}

fn error(member_id: StrBytes, error: ResponseError) -> JoinGroupResponse {
    JoinGroupResponse::default().with_error_code(error.code()).with_generation_id(-1).with_member_id(member_id)
}

/// Kafka's JoinGroupResponse rules: before v7 the protocol name is never null (empty
/// instead), from v7 an empty one is null; fields a version lacks keep their defaults.
fn for_version(mut response: JoinGroupResponse, version: i16) -> JoinGroupResponse {
    if version < 7 {
        response.protocol_name = Some(response.protocol_name.unwrap_or_default());
        response.protocol_type = None;
    } else if response.protocol_name.as_ref().is_some_and(|p| p.is_empty()) {
        response.protocol_name = None;
    }
    if version < 9 {
        response.skip_assignment = false;
    }
    if version < 5 {
        for member in &mut response.members {
            member.group_instance_id = None;
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn a_leaders_answer_encodes_at_every_version() {
        let member = JoinGroupResponseMember::default()
            .with_member_id(StrBytes::from_static_str("m-1"))
            .with_group_instance_id(Some(StrBytes::from_static_str("i")))
            .with_metadata(bytes::Bytes::from_static(b"meta"));
        let response = JoinGroupResponse::default()
            .with_generation_id(3)
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(Some(StrBytes::from_static_str("range")))
            .with_leader(StrBytes::from_static_str("m-1"))
            .with_member_id(StrBytes::from_static_str("m-1"))
            .with_skip_assignment(true)
            .with_members(vec![member]);
        for version in 0..=9 {
            let r = for_version(response.clone(), version);
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, version).unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
        let empty = for_version(error(StrBytes::default(), ResponseError::MemberIdRequired), 4);
        assert_eq!(empty.protocol_name.as_deref(), Some(""));
    }
}
