//! DescribeCluster: this node as the one broker and the controller, the cluster id, and the
//! cluster's authorized operations when asked. Like a Kafka broker's listener, it answers
//! BROKER endpoint requests only.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::metadata::{bit_field, CLUSTER_ID, CLUSTER_OPERATIONS};
use super::str_bytes;
use crate::shard::ShardState;

/// Kafka's EndpointType ids.
const BROKER_ENDPOINT: i8 = 1;
const CONTROLLER_ENDPOINT: i8 = 2;

pub async fn handle(shard: &Rc<ShardState>, request: DescribeClusterRequest, version: i16) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default().with_endpoint_type(request.endpoint_type);
    // v0 has no endpoint type: Kafka answers a wrong one there with INVALID_REQUEST.
    let refuse = |code: ResponseError, message: String| {
        let code = if version == 0 { ResponseError::InvalidRequest } else { code };
        response.clone().with_error_code(code.code()).with_error_message(Some(str_bytes(&message)))
    };
    match request.endpoint_type {
        BROKER_ENDPOINT => {}
        CONTROLLER_ENDPOINT => {
            return refuse(
                ResponseError::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".into(),
            );
        }
        other => return refuse(ResponseError::UnsupportedEndpointType, format!("Unsupported endpoint type {other}")),
    }
    let config = &shard.config;
    let node = BrokerId(config.node_id);
    let broker = DescribeClusterBroker::default()
        .with_broker_id(node)
        .with_host(str_bytes(&config.advertised_listeners.host))
        .with_port(i32::from(config.advertised_listeners.port));
    let response = response
        .with_cluster_id(str_bytes(CLUSTER_ID))
        .with_controller_id(node)
        .with_brokers(vec![broker]);
    if request.include_cluster_authorized_operations {
        response.with_cluster_authorized_operations(bit_field(CLUSTER_OPERATIONS))
    } else {
        response
    }
}
