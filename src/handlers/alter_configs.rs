//! AlterConfigs (the legacy API): each resource's given configs replace all of its overrides.
//! Topics go to the controller; broker configs are static (see `config_resource`).

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::config_resource::{plan_alter, repeated_resources, run_plans, AlterKey};
use super::str_bytes;
use crate::cluster::{ConfigAlteration, TopicConfigChange};
use crate::shard::ShardState;

pub async fn handle(shard: &Rc<ShardState>, request: AlterConfigsRequest, _version: i16) -> AlterConfigsResponse {
    let repeated = repeated_resources(request.resources.iter().map(|r| (r.resource_type, r.resource_name.as_str())));
    let plans = request
        .resources
        .iter()
        .map(|resource| {
            let keys: Vec<AlterKey<'_>> =
                resource.configs.iter().map(|c| AlterKey { name: c.name.as_str(), null_value: c.value.is_none() }).collect();
            let repeated_resource = repeated.contains(&(resource.resource_type, resource.resource_name.as_str()));
            plan_alter(resource.resource_type, &resource.resource_name, &keys, repeated_resource, shard.config.node_id, |topic| {
                let configs: BTreeMap<String, String> = resource
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                    .collect();
                Ok(TopicConfigChange { topic, alteration: ConfigAlteration::Replace(configs) })
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
    AlterConfigsResponse::default().with_responses(responses)
}
