//! Requests the integration tests send often: create a topic, produce one record set, fetch one
//! partition, list an offset.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::Client;

pub const PRODUCE_V: i16 = 9;
pub const FETCH_V: i16 = 12;

pub fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(text(name))
}

/// A request frame body (see [`super::request_frame`]) as it goes on the wire: with its size
/// prefix.
pub fn size_prefixed(body: &[u8]) -> Vec<u8> {
    let mut wire = BytesMut::with_capacity(4 + body.len());
    wire.put_i32(i32::try_from(body.len()).unwrap());
    wire.put_slice(body);
    wire.to_vec()
}

/// CreateTopics v7 for one topic with `configs` as its overrides.
pub fn create_topic(client: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) -> CreateTopicsResponse {
    let configs = configs
        .iter()
        .map(|(k, v)| CreatableTopicConfig::default().with_name(text(k)).with_value(Some(text(v))))
        .collect();
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(configs)]);
    client.call(ApiKey::CreateTopics, 7, &request)
}

pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(10_000).with_topic_data(vec![TopicProduceData::default()
        .with_name(topic_name(topic))
        .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(records))])])
}

/// Produces one record set with acks=all; returns (error code, base offset).
pub fn produce(client: &mut Client, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let response: ProduceResponse = client.call(ApiKey::Produce, PRODUCE_V, &produce_request(topic, partition, records, -1));
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(topic_name(topic)).with_partitions(vec![
            FetchPartition::default().with_partition(partition).with_fetch_offset(offset).with_partition_max_bytes(1 << 20),
        ])])
}

pub fn fetch(client: &mut Client, topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> fetch_response::PartitionData {
    let response: FetchResponse = client.call(ApiKey::Fetch, FETCH_V, &fetch_request(topic, partition, offset, max_wait_ms));
    response.responses[0].partitions[0].clone()
}

/// ListOffsets (v6) for one partition at `timestamp` (-2 earliest, -1 latest): its error code,
/// offset and timestamp.
pub fn list_offset(client: &mut Client, topic: &str, partition: i32, timestamp: i64) -> (i16, i64, i64) {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let request = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
        .with_name(topic_name(topic))
        .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(partition).with_timestamp(timestamp)])]);
    let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 6, &request);
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}
