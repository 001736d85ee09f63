//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on single keys. Topics go to the
//! controller, which applies the operations to the topic's current overrides; broker configs
//! are static (see `config_resource`).

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use strand_config::AlterConfigOp;

use super::config_resource::{plan_alter, repeated_resources, run_plans, AlterKey, Refusal};
use super::str_bytes;
use crate::cluster::{ConfigAlteration, TopicConfigChange};
use crate::shard::ShardState;

/// Kafka's AlterConfigOp.OpType codes.
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub async fn handle(
    shard: &Rc<ShardState>,
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    let repeated = repeated_resources(request.resources.iter().map(|r| (r.resource_type, r.resource_name.as_str())));
    let plans = request
        .resources
        .iter()
        .map(|resource| {
            let keys: Vec<AlterKey<'_>> = resource
                .configs
                .iter()
                .map(|c| AlterKey { name: c.name.as_str(), null_value: c.value.is_none() && c.config_operation != DELETE })
                .collect();
            let repeated_resource = repeated.contains(&(resource.resource_type, resource.resource_name.as_str()));
            plan_alter(resource.resource_type, &resource.resource_name, &keys, repeated_resource, shard.config.node_id, |topic| {
                let ops = resource.configs.iter().map(operation).collect::<Result<Vec<_>, _>>()?;
                Ok(TopicConfigChange { topic, alteration: ConfigAlteration::Incremental(ops) })
            })
        })
        .collect();
    let outcomes = run_plans(shard, plans, request.validate_only).await;
    let responses = request
        .resources
        .iter()
        .zip(outcomes)
        .map(|(resource, outcome)| {
            let response = AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match outcome {
                Ok(()) => response,
                Err(refusal) => {
                    response.with_error_code(refusal.code.code()).with_error_message(Some(str_bytes(&refusal.message)))
                }
            }
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// The operation one config asks for (its value is present where the operation needs one).
fn operation(config: &AlterableConfig) -> Result<(String, AlterConfigOp), Refusal> {
    let value = || config.value.as_ref().map(ToString::to_string).unwrap_or_default();
    let op = match config.config_operation {
        SET => AlterConfigOp::Set(value()),
        DELETE => AlterConfigOp::Delete,
        APPEND => AlterConfigOp::Append(value()),
        SUBTRACT => AlterConfigOp::Subtract(value()),
        other => {
            return Err(Refusal::new(ResponseError::InvalidRequest, format!("Unknown operations type {other}")));
        }
    };
    Ok((config.name.to_string(), op))
}
