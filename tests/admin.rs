//! The admin APIs over real sockets at every advertised version, with two shards so that
//! partitions, their configs and their sizes live on both; and topic config changes that reach
//! open partitions without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use common::requests::{self, text, topic_name};
use common::{batch, Broker, Client};
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request as incremental;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

const TOPIC_RESOURCE: i8 = 2;
const BROKER_RESOURCE: i8 = 4;
const INVALID_REQUEST: i16 = 42;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MISMATCHED_ENDPOINT_TYPE: i16 = 114;
const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;

fn create_topic(client: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let response = requests::create_topic(client, name, partitions, configs);
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
}

/// Produces `values` with acks=all; returns the error code.
fn produce(client: &mut Client, topic: &str, partition: i32, values: &[&str]) -> i16 {
    requests::produce(client, topic, partition, batch(values, 0)).0
}

fn earliest_offset(client: &mut Client, topic: &str, partition: i32) -> i64 {
    requests::list_offset(client, topic, partition, -2).1
}

fn grow(client: &mut Client, version: i16, topic: &str, count: i32) -> (i16, Option<StrBytes>) {
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name(topic))
            .with_count(count)
            .with_assignments(None)]);
    let response: CreatePartitionsResponse = client.call(ApiKey::CreatePartitions, version, &request);
    (response.results[0].error_code, response.results[0].error_message.clone())
}

fn set_topic_config(client: &mut Client, version: i16, topic: &str, key: &str, value: &str) -> i16 {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![incremental::AlterConfigsResource::default()
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(text(topic))
        .with_configs(vec![incremental::AlterableConfig::default()
            .with_name(text(key))
            .with_config_operation(0)
            .with_value(Some(text(value)))])]);
    let response: IncrementalAlterConfigsResponse = client.call(ApiKey::IncrementalAlterConfigs, version, &request);
    response.responses[0].error_code
}

fn describe_configs(client: &mut Client, version: i16, resource_type: i8, name: &str) -> describe_configs_response::DescribeConfigsResult {
    let request = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_include_documentation(version >= 3)
        .with_resources(vec![DescribeConfigsResource::default().with_resource_type(resource_type).with_resource_name(text(name))]);
    let response: DescribeConfigsResponse = client.call(ApiKey::DescribeConfigs, version, &request);
    response.results.into_iter().next().unwrap()
}

fn delete_records(client: &mut Client, version: i16, topic: &str, partition: i32, offset: i64) -> (i16, i64) {
    let request = DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![DeleteRecordsTopic::default()
        .with_name(topic_name(topic))
        .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(partition).with_offset(offset)])]);
    let response: DeleteRecordsResponse = client.call(ApiKey::DeleteRecords, version, &request);
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

fn log_files(broker: &Broker, topic: &str, partition: i32) -> usize {
    let dir = broker.data_dir.path().join("data").join(format!("{topic}-{partition}"));
    std::fs::read_dir(dir).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log")).count()
}

#[test]
fn config_apis_answer_at_every_advertised_version() {
    let broker = Broker::start(2);
    let mut client = broker.connect();
    for version in 0..=3 {
        let topic = format!("grow-v{version}");
        create_topic(&mut client, &topic, 1, &[]);
        assert_eq!(grow(&mut client, version, &topic, 3).0, 0, "CreatePartitions v{version}");
    }
    create_topic(&mut client, "configs", 1, &[("retention.ms", "5000")]);
    for version in 1..=4 {
        let topic = describe_configs(&mut client, version, TOPIC_RESOURCE, "configs");
        assert_eq!(topic.error_code, 0, "DescribeConfigs v{version}");
        assert_eq!(topic.configs.len(), strand_config::TOPIC_CONFIG_KEYS.len());
        let retention = topic.configs.iter().find(|c| c.name.as_str() == "retention.ms").unwrap();
        assert_eq!((retention.value.as_deref(), retention.config_source), (Some("5000"), 1));
        assert_eq!(retention.synonyms.len(), 2, "the override, then the default");
        if version >= 3 {
            assert_eq!(retention.config_type, 5, "LONG");
            assert!(retention.documentation.as_deref().is_some_and(|d| !d.is_empty()));
        }
        let broker_configs = describe_configs(&mut client, version, BROKER_RESOURCE, "0");
        assert_eq!(broker_configs.error_code, 0);
        assert!(broker_configs.configs.iter().all(|c| c.read_only) && broker_configs.configs.len() > 30);
        let other = describe_configs(&mut client, version, BROKER_RESOURCE, "3");
        assert_eq!(other.error_code, INVALID_REQUEST);
    }
    for version in 0..=2 {
        let value = format!("{}", 1000 + i32::from(version));
        let request = AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(text("configs"))
            .with_configs(vec![AlterableConfig::default().with_name(text("retention.ms")).with_value(Some(text(&value)))])]);
        let response: AlterConfigsResponse = client.call(ApiKey::AlterConfigs, version, &request);
        assert_eq!(response.responses[0].error_code, 0, "AlterConfigs v{version}");
        let topic = describe_configs(&mut client, 1, TOPIC_RESOURCE, "configs");
        let retention = topic.configs.iter().find(|c| c.name.as_str() == "retention.ms").unwrap();
        assert_eq!(retention.value.as_deref(), Some(value.as_str()));
    }
    for version in 0..=1 {
        assert_eq!(set_topic_config(&mut client, version, "configs", "segment.ms", "60000"), 0);
        assert_eq!(set_topic_config(&mut client, version, "configs", "segment.ms", "never"), 40, "INVALID_CONFIG");
    }
}

#[test]
fn record_and_cluster_apis_answer_at_every_advertised_version() {
    let broker = Broker::start(2);
    let mut client = broker.connect();
    create_topic(&mut client, "records", 2, &[]);
    assert_eq!(produce(&mut client, "records", 1, &["a", "b", "c", "d"]), 0);
    for version in 0..=2 {
        let offset = i64::from(version) + 1;
        assert_eq!(delete_records(&mut client, version, "records", 1, offset), (0, offset), "DeleteRecords v{version}");
    }
    assert_eq!(earliest_offset(&mut client, "records", 1), 3);
    assert_eq!(delete_records(&mut client, 2, "records", 1, 9), (OFFSET_OUT_OF_RANGE, -1));
    assert_eq!(delete_records(&mut client, 2, "records", 7, 0), (UNKNOWN_TOPIC_OR_PARTITION, -1));
    assert_eq!(delete_records(&mut client, 2, "records", 1, -1), (0, 4), "-1 is the high watermark");

    for version in 0..=2 {
        let request = DescribeClusterRequest::default().with_include_cluster_authorized_operations(version == 1);
        let response: DescribeClusterResponse = client.call(ApiKey::DescribeCluster, version, &request);
        assert_eq!(response.error_code, 0, "DescribeCluster v{version}");
        assert_eq!(response.brokers.len(), 1);
        assert_eq!(response.brokers[0].port, i32::from(broker.port));
        assert_eq!(response.controller_id, response.brokers[0].broker_id);
        assert_eq!(response.cluster_id.as_str(), "strand-single-node");
        let operations = response.cluster_authorized_operations;
        assert!(if version == 1 { operations > 0 } else { operations == i32::MIN }, "v{version}: {operations}");
    }
    for (endpoint_type, code) in [(2, MISMATCHED_ENDPOINT_TYPE), (7, UNSUPPORTED_ENDPOINT_TYPE)] {
        let request = DescribeClusterRequest::default().with_endpoint_type(endpoint_type);
        let response: DescribeClusterResponse = client.call(ApiKey::DescribeCluster, 1, &request);
        assert_eq!(response.error_code, code);
    }

    for version in 1..=4 {
        let all = DescribeLogDirsRequest::default().with_topics(None);
        let response: DescribeLogDirsResponse = client.call(ApiKey::DescribeLogDirs, version, &all);
        let dir = &response.results[0];
        assert_eq!(dir.error_code, 0, "DescribeLogDirs v{version}");
        let topic = dir.topics.iter().find(|t| t.name.as_str() == "records").unwrap();
        let sizes: Vec<(i32, bool)> = topic.partitions.iter().map(|p| (p.partition_index, p.partition_size > 0)).collect();
        assert_eq!(sizes, [(0, false), (1, true)]);
        if version == 4 {
            assert!(dir.total_bytes > 0 && (0..=dir.total_bytes).contains(&dir.usable_bytes), "{dir:?}");
        }
    }
}

#[test]
fn describe_log_dirs_v0_is_served_as_v1() {
    let broker = Broker::start(1);
    let mut client = broker.connect();
    create_topic(&mut client, "old", 1, &[]);
    // Request header v1 at version 0, then the body in v1's format, which is v0's.
    let mut frame = BytesMut::new();
    frame.put_i16(ApiKey::DescribeLogDirs as i16);
    frame.put_i16(0);
    frame.put_i32(77);
    frame.put_i16(-1);
    DescribeLogDirsRequest::default().with_topics(None).encode(&mut frame, 1).unwrap();
    client.send_raw(&frame);
    let (correlation_id, mut body) = client.receive(ApiKey::DescribeLogDirs, 1);
    assert_eq!(correlation_id, 77);
    let response = DescribeLogDirsResponse::decode(&mut body, 1).unwrap();
    assert!(response.results[0].topics.iter().any(|t| t.name.as_str() == "old"));
}

#[test]
fn grown_topics_take_data_on_every_shard_and_survive_a_restart() {
    let mut broker = Broker::start(2);
    let mut client = broker.connect();
    create_topic(&mut client, "grow", 1, &[]);
    assert_eq!(grow(&mut client, 3, "grow", 4).0, 0);
    let (code, message) = grow(&mut client, 3, "grow", 2);
    assert_eq!(code, 37, "INVALID_PARTITIONS");
    assert!(message.unwrap().contains("currently has 4 partition(s)"));
    for partition in 0..4 {
        assert_eq!(produce(&mut client, "grow", partition, &["v"]), 0, "partition {partition}");
    }
    broker.restart();
    let mut client = broker.connect();
    let metadata: MetadataResponse = client.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    let topic = metadata.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "grow")).unwrap();
    assert_eq!(topic.partitions.len(), 4);
    for partition in 0..4 {
        assert_eq!(produce(&mut client, "grow", partition, &["w"]), 0, "partition {partition} after restart");
    }
}

#[test]
fn segment_and_retention_changes_reach_open_partitions_without_a_restart() {
    let config = "log.retention.check.interval.ms = 100\nlog.segment.preallocate.bytes = 0\n";
    let broker = Broker::start_with_config(2, Some(config));
    let mut client = broker.connect();
    create_topic(&mut client, "live", 2, &[]);
    for partition in 0..2 {
        for _ in 0..4 {
            assert_eq!(produce(&mut client, "live", partition, &["0123456789"]), 0);
        }
        assert_eq!(log_files(&broker, "live", partition), 1, "one segment under the default segment.bytes");
    }
    // Smaller than one batch: every later append rolls a new segment.
    assert_eq!(set_topic_config(&mut client, 1, "live", "segment.bytes", "64"), 0);
    for partition in 0..2 {
        for _ in 0..3 {
            assert_eq!(produce(&mut client, "live", partition, &["0123456789"]), 0);
        }
        assert_eq!(log_files(&broker, "live", partition), 4, "partition {partition} rolled at the new segment.bytes");
        assert_eq!(earliest_offset(&mut client, "live", partition), 0);
    }
    // Retention by size now keeps only the active segment.
    assert_eq!(set_topic_config(&mut client, 1, "live", "retention.bytes", "1"), 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    for partition in 0..2 {
        // The log start moves first, then the files go.
        while earliest_offset(&mut client, "live", partition) != 6 || log_files(&broker, "live", partition) != 1 {
            assert!(Instant::now() < deadline, "retention.bytes did not apply:\n{}", broker.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
