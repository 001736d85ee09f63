//! DescribeConfigs: a topic's configs (every topic key: the topic's override, or the broker's
//! value it defaults from) and the broker's (every key it was started with, all read-only),
//! with Kafka's config sources, synonyms when asked, and from v3 types and documentation.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use strand_config::{ConfigEntry, ConfigSource, ConfigType, TopicConfig};

use super::config_resource::{config_resource, ConfigResource, Refusal};
use super::str_bytes;
use crate::cluster::{invalid_topic_name, MetadataImage};
use crate::shard::ShardState;

/// What the client asked to see of each entry.
#[derive(Debug, Clone, Copy)]
struct Detail {
    synonyms: bool,
    documentation: bool,
    version: i16,
}

pub async fn handle(shard: &Rc<ShardState>, request: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let image = shard.image();
    let detail = Detail { synonyms: request.include_synonyms, documentation: request.include_documentation, version };
    let results = request.resources.iter().map(|resource| describe(shard, &image, resource, detail)).collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe(shard: &ShardState, image: &MetadataImage, resource: &DescribeConfigsResource, detail: Detail) -> DescribeConfigsResult {
    let result = DescribeConfigsResult::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone());
    match entries(shard, image, resource) {
        Ok(entries) => {
            let wanted = resource.configuration_keys.as_ref().filter(|keys| !keys.is_empty());
            let configs = entries
                .iter()
                .filter(|e| wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name)))
                .map(|e| render(e, detail))
                .collect();
            result.with_configs(configs)
        }
        Err(refusal) => result.with_error_code(refusal.code.code()).with_error_message(Some(str_bytes(&refusal.message))),
    }
}

/// Every entry of the resource, or why it cannot be described.
fn entries(shard: &ShardState, image: &MetadataImage, resource: &DescribeConfigsResource) -> Result<Vec<ConfigEntry>, Refusal> {
    match config_resource(resource.resource_type, &resource.resource_name, shard.config.node_id)? {
        ConfigResource::Topic(name) => {
            if let Some(reason) = invalid_topic_name(&name) {
                return Err(Refusal::new(ResponseError::InvalidTopicException, reason));
            }
            let topic = image.topic(&name).ok_or_else(|| {
                Refusal::new(ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist"))
            })?;
            Ok(TopicConfig::config_entries(&shard.config, &topic.configs))
        }
        ConfigResource::ThisBroker => Ok(shard.config.config_entries()),
        // Kafka lists the cluster-wide dynamic broker defaults here; strand has none.
        ConfigResource::BrokerDefaults => Ok(Vec::new()),
    }
}

/// One entry in the response, at the request's version.
fn render(entry: &ConfigEntry, detail: Detail) -> DescribeConfigsResourceResult {
    let synonyms = if detail.synonyms {
        entry
            .synonyms
            .iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(&s.name))
                    .with_value(Some(str_bytes(&s.value)))
                    .with_source(source_id(s.source))
            })
            .collect()
    } else {
        Vec::new()
    };
    let result = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(&entry.name))
        .with_value(Some(str_bytes(&entry.value)))
        .with_read_only(entry.read_only)
        .with_config_source(source_id(entry.source))
        .with_is_sensitive(false)
        .with_synonyms(synonyms);
    if detail.version < 3 {
        return result;
    }
    let documentation = entry.documentation.filter(|_| detail.documentation).map(str_bytes);
    result.with_config_type(type_id(entry.config_type)).with_documentation(documentation)
}

/// Kafka's DescribeConfigsResponse.ConfigSource ids.
fn source_id(source: ConfigSource) -> i8 {
    match source {
        ConfigSource::TopicConfig => 1,
        ConfigSource::StaticBrokerConfig => 4,
        ConfigSource::DefaultConfig => 5,
    }
}

/// Kafka's DescribeConfigsResponse.ConfigType ids.
fn type_id(config_type: ConfigType) -> i8 {
    match config_type {
        ConfigType::Boolean => 1,
        ConfigType::String => 2,
        ConfigType::Int => 3,
        ConfigType::Long => 5,
        ConfigType::List => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Decodable, Encodable};
    use strand_config::{BrokerConfig, Props};

    fn retention_entry() -> ConfigEntry {
        let broker = BrokerConfig::load("log.retention.ms = 1000\n", Props::default()).unwrap();
        let overrides = [("retention.ms".to_owned(), "5".to_owned())].into();
        TopicConfig::config_entries(&broker, &overrides).into_iter().find(|e| e.name == "retention.ms").unwrap()
    }

    fn round_trip(result: &DescribeConfigsResourceResult, version: i16) -> DescribeConfigsResourceResult {
        let mut buf = bytes::BytesMut::new();
        result.encode(&mut buf, version).unwrap();
        DescribeConfigsResourceResult::decode(&mut buf.freeze(), version).unwrap()
    }

    #[test]
    fn an_override_shows_every_level_when_synonyms_are_asked() {
        let detail = Detail { synonyms: true, documentation: false, version: 1 };
        let rendered = round_trip(&render(&retention_entry(), detail), 1);
        assert_eq!(rendered.value.as_deref(), Some("5"));
        assert_eq!(rendered.config_source, 1);
        assert!(!rendered.read_only && !rendered.is_sensitive);
        let levels: Vec<(&str, Option<&str>, i8)> =
            rendered.synonyms.iter().map(|s| (s.name.as_str(), s.value.as_deref(), s.source)).collect();
        assert_eq!(
            levels,
            [("retention.ms", Some("5"), 1), ("log.retention.ms", Some("1000"), 4), ("log.retention.ms", Some("604800000"), 5)]
        );
    }

    #[test]
    fn types_and_documentation_appear_from_v3_and_documentation_only_when_asked() {
        let entry = retention_entry();
        let plain = render(&entry, Detail { synonyms: false, documentation: false, version: 3 });
        assert!(plain.synonyms.is_empty());
        assert_eq!((plain.config_type, plain.documentation.as_deref()), (5, None));
        let documented = round_trip(&render(&entry, Detail { synonyms: false, documentation: true, version: 4 }), 4);
        assert!(documented.documentation.is_some_and(|d| d.contains("retention.ms")));
        let old = render(&entry, Detail { synonyms: false, documentation: true, version: 2 });
        assert_eq!(old.config_type, 0, "config_type is not in v2");
    }
}
