//! The resources of DescribeConfigs, AlterConfigs and IncrementalAlterConfigs: Kafka's
//! resource type codes, which resource a request names (checked as Kafka's ConfigHelper and
//! ConfigAdminManager check it), the request-level checks both alter APIs share, and handing
//! topic changes to the controller.
//!
//! Broker configs are static in strand: they come from the config file and flags at start, and
//! an alter of a BROKER resource with any config is refused with INVALID_REQUEST, the code Kafka
//! gives for a broker config that cannot change dynamically.

use std::collections::HashSet;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use strand_shards::ShardId;

use crate::cluster::{ControllerRequest, TopicConfigChange};
use crate::shard::{ShardRequest, ShardState};

/// Kafka's ConfigResource.Type codes.
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const BROKER_LOGGER: i8 = 8;

/// A resource as a config request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    Topic(String),
    /// This broker, by its node id.
    ThisBroker,
    /// The cluster-wide broker defaults (an empty broker name).
    BrokerDefaults,
}

/// Why one resource of a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ResponseError,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ResponseError, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ResponseError::InvalidRequest, message)
    }
}

/// The resource `resource_type`/`name` names on the broker `node_id`.
pub fn config_resource(resource_type: i8, name: &str, node_id: i32) -> Result<ConfigResource, Refusal> {
    match resource_type {
        TOPIC => Ok(ConfigResource::Topic(name.to_owned())),
        BROKER if name.is_empty() => Ok(ConfigResource::BrokerDefaults),
        BROKER => match name.parse::<i32>() {
            Ok(id) if id == node_id => Ok(ConfigResource::ThisBroker),
            Ok(_) => Err(Refusal::invalid_request(format!(
                "Unexpected broker id, expected {node_id} or empty string, but received {name}"
            ))),
            Err(_) => Err(Refusal::invalid_request(format!("Broker id must be an integer, but it is: {name}"))),
        },
        BROKER_LOGGER => Err(Refusal::invalid_request(
            "strand has no broker loggers to describe or alter: log levels are set with RUST_LOG at start",
        )),
        other => Err(Refusal::invalid_request(format!("Unsupported resource type {other}"))),
    }
}

/// What an alter request does with one resource, once the request-level checks passed.
pub enum AlterPlan {
    /// Answered without the controller.
    Answered(Result<(), Refusal>),
    /// A topic change for the controller.
    Topic(TopicConfigChange),
}

/// One config of an alter request: its key, and whether its value is null where the operation
/// needs one.
pub struct AlterKey<'a> {
    pub name: &'a str,
    pub null_value: bool,
}

/// Kafka's checks of one resource of an alter request (ConfigAdminManager.preprocess), then
/// what becomes of it: `topic_change` makes the controller's change for a topic.
pub fn plan_alter(
    resource_type: i8,
    name: &str,
    keys: &[AlterKey<'_>],
    repeated_resource: bool,
    node_id: i32,
    topic_change: impl FnOnce(String) -> Result<TopicConfigChange, Refusal>,
) -> AlterPlan {
    let checked = (|| {
        if repeated_resource {
            return Err(Refusal::invalid_request("Each resource must appear at most once."));
        }
        let mut seen = HashSet::new();
        if !keys.iter().all(|k| seen.insert(k.name)) {
            return Err(Refusal::invalid_request("Error due to duplicate config keys"));
        }
        let nulls: Vec<&str> = keys.iter().filter(|k| k.null_value).map(|k| k.name).collect();
        if !nulls.is_empty() {
            return Err(Refusal::invalid_request(format!("Null value not supported for : {}", nulls.join(", "))));
        }
        config_resource(resource_type, name, node_id)
    })();
    match checked {
        Ok(ConfigResource::Topic(topic)) => match topic_change(topic) {
            Ok(change) => AlterPlan::Topic(change),
            Err(refusal) => AlterPlan::Answered(Err(refusal)),
        },
        Ok(ConfigResource::ThisBroker | ConfigResource::BrokerDefaults) if keys.is_empty() => AlterPlan::Answered(Ok(())),
        Ok(ConfigResource::ThisBroker | ConfigResource::BrokerDefaults) => {
            let names: Vec<&str> = keys.iter().map(|k| k.name).collect();
            AlterPlan::Answered(Err(Refusal::invalid_request(format!(
                "Cannot update these configs dynamically: {}. Broker configs are static in strand: \
                 change the config file or flags and restart the broker",
                names.join(", ")
            ))))
        }
        Err(refusal) => AlterPlan::Answered(Err(refusal)),
    }
}

/// The (type, name) pairs named more than once in a request.
pub fn repeated_resources<'a>(resources: impl Iterator<Item = (i8, &'a str)>) -> HashSet<(i8, &'a str)> {
    let mut seen = HashSet::new();
    resources.filter(|resource| !seen.insert(*resource)).collect()
}

/// Runs the plans: topic changes go to the controller together (one image, one publish).
pub async fn run_plans(shard: &Rc<ShardState>, plans: Vec<AlterPlan>, validate_only: bool) -> Vec<Result<(), Refusal>> {
    let changes: Vec<TopicConfigChange> = plans
        .iter()
        .filter_map(|plan| match plan {
            AlterPlan::Topic(change) => Some(change.clone()),
            AlterPlan::Answered(_) => None,
        })
        .collect();
    let mut answers = if changes.is_empty() {
        Vec::new()
    } else {
        shard
            .call(ShardId(0), |reply| {
                ShardRequest::Controller(ControllerRequest::AlterTopicConfigs { changes, validate_only, reply })
            })
            .await
            .unwrap_or_default()
    }
    .into_iter();
    plans
        .into_iter()
        .map(|plan| match plan {
            AlterPlan::Answered(result) => result,
            AlterPlan::Topic(_) => match answers.next() {
                Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(Refusal::new(e.code, e.message)),
                None => Err(Refusal::new(ResponseError::NotController, "the controller is not available")),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ConfigAlteration;

    fn topic_change(topic: String) -> Result<TopicConfigChange, Refusal> {
        Ok(TopicConfigChange { topic, alteration: ConfigAlteration::Replace(Default::default()) })
    }

    fn refusal(plan: AlterPlan) -> Option<Refusal> {
        match plan {
            AlterPlan::Answered(Err(refusal)) => Some(refusal),
            _ => None,
        }
    }

    #[test]
    fn a_broker_resource_names_this_node_or_the_defaults() {
        assert_eq!(config_resource(BROKER, "0", 0), Ok(ConfigResource::ThisBroker));
        assert_eq!(config_resource(BROKER, "", 0), Ok(ConfigResource::BrokerDefaults));
        let other = config_resource(BROKER, "7", 0).unwrap_err();
        assert_eq!(other.code, ResponseError::InvalidRequest);
        assert!(other.message.contains("expected 0 or empty string, but received 7"));
        assert!(config_resource(BROKER, "zero", 0).unwrap_err().message.contains("must be an integer"));
        assert_eq!(config_resource(TOPIC, "t", 0), Ok(ConfigResource::Topic("t".into())));
        assert_eq!(config_resource(16, "x", 0).unwrap_err().code, ResponseError::InvalidRequest);
    }

    #[test]
    fn alters_are_checked_as_kafka_checks_them() {
        let keys = [AlterKey { name: "a", null_value: false }, AlterKey { name: "a", null_value: false }];
        let dup = refusal(plan_alter(TOPIC, "t", &keys, false, 0, topic_change)).unwrap();
        assert_eq!(dup.message, "Error due to duplicate config keys");
        let keys = [AlterKey { name: "a", null_value: true }, AlterKey { name: "b", null_value: true }];
        let nulls = refusal(plan_alter(TOPIC, "t", &keys, false, 0, topic_change)).unwrap();
        assert_eq!(nulls.message, "Null value not supported for : a, b");
        let repeated = refusal(plan_alter(TOPIC, "t", &[], true, 0, topic_change)).unwrap();
        assert_eq!(repeated.message, "Each resource must appear at most once.");
        assert!(matches!(plan_alter(TOPIC, "t", &[], false, 0, topic_change), AlterPlan::Topic(_)));
    }

    #[test]
    fn broker_configs_are_refused_as_static_unless_nothing_changes() {
        let keys = [AlterKey { name: "num.partitions", null_value: false }];
        let refused = refusal(plan_alter(BROKER, "0", &keys, false, 0, topic_change)).unwrap();
        assert_eq!(refused.code, ResponseError::InvalidRequest);
        assert!(refused.message.contains("num.partitions") && refused.message.contains("static"), "{}", refused.message);
        assert!(matches!(plan_alter(BROKER, "", &[], false, 0, topic_change), AlterPlan::Answered(Ok(()))));
    }

    #[test]
    fn repeated_resources_are_found_by_type_and_name() {
        let repeated = repeated_resources([(TOPIC, "a"), (BROKER, "a"), (TOPIC, "a"), (TOPIC, "b")].into_iter());
        assert_eq!(repeated, HashSet::from([(TOPIC, "a")]));
    }
}
