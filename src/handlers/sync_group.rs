//! SyncGroup: the leader hands in the assignment; every member parks on the coordinating
//! shard until it is durable and gets its own part.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::coordinator_route::{call_coordinator, mismatched};
use crate::group::{GroupRequest, GroupResponse, SyncParams};
use crate::shard::ShardState;

pub async fn handle(shard: &Rc<ShardState>, request: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let params = SyncParams {
        group_id: request.group_id.to_string(),
        generation_id: request.generation_id,
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(ToString::to_string),
        protocol_type: request.protocol_type.as_ref().map(ToString::to_string),
        protocol_name: request.protocol_name.as_ref().map(ToString::to_string),
        assignments: request.assignments.iter().map(|a| (a.member_id.to_string(), a.assignment.clone())).collect(),
        version,
    };
    let response = match call_coordinator(shard, &params.group_id.clone(), GroupRequest::Sync(params)).await {
        Ok(GroupResponse::Sync(response)) => response,
        Ok(_) => error(mismatched("SyncGroup")),
        Err(e) => error(e),
    };
    for_version(response, version)
}

fn error(error: ResponseError) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(error.code())
}

fn for_version(mut response: SyncGroupResponse, version: i16) -> SyncGroupResponse {
    if version < 5 {
        response.protocol_type = None;
        response.protocol_name = None;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn an_assignment_encodes_at_every_version() {
        let response = SyncGroupResponse::default()
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(Some(StrBytes::from_static_str("range")))
            .with_assignment(bytes::Bytes::from_static(b"assignment"));
        for version in 0..=5 {
            let mut buf = bytes::BytesMut::new();
            for_version(response.clone(), version).encode(&mut buf, version).unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
    }
}
