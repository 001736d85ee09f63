//! FindCoordinator: which broker coordinates a group (key type 0) or a transactional id (key
//! type 1). On a single node it is this broker, once __consumer_offsets exists; batched keys
//! from v4.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::coordinator_route::coordinator_of;
use super::str_bytes;
use crate::shard::ShardState;

const GROUP_KEY_TYPE: i8 = 0;
const TRANSACTION_KEY_TYPE: i8 = 1;

/// This broker as the answer, or why not.
struct Found {
    error: Option<ResponseError>,
    node_id: i32,
    host: String,
    port: i32,
}

pub async fn handle(shard: &Rc<ShardState>, request: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let found = find(shard, request.key_type, key);
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(found.node_id))
                    .with_host(str_bytes(&found.host))
                    .with_port(found.port)
                    .with_error_code(found.error.map_or(0, |e| e.code()))
                    .with_error_message(found.error.map(|e| str_bytes(&e.to_string())))
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let found = find(shard, request.key_type, &request.key);
    let response = FindCoordinatorResponse::default()
        .with_error_code(found.error.map_or(0, |e| e.code()))
        .with_node_id(BrokerId(found.node_id))
        .with_host(str_bytes(&found.host))
        .with_port(found.port);
    if version >= 1 {
        response.with_error_message(found.error.map(|e| str_bytes(&e.to_string())))
    } else {
        response
    }
}

fn find(shard: &ShardState, key_type: i8, key: &StrBytes) -> Found {
    let config = &shard.config;
    let error = match key_type {
        GROUP_KEY_TYPE => coordinator_of(shard, key).err(),
        // strand has no transaction coordinator yet; the transactional APIs it would serve are
        // not advertised, so a client learns that from them.
        TRANSACTION_KEY_TYPE => None,
        // Share groups (2) and anything newer are not served.
        _ => Some(ResponseError::InvalidRequest),
    };
    match error {
        None => Found {
            error: None,
            node_id: config.node_id,
            host: config.advertised_listeners.host.clone(),
            port: i32::from(config.advertised_listeners.port),
        },
        Some(error) => Found { error: Some(error), node_id: -1, host: String::new(), port: -1 },
    }
}
