//! OffsetFetch: one group (v1-v7) or several (v8+), each from its coordinating shard. A
//! partition without a committed offset reads -1; `topics` null (v2+) asks for all.
//! require_stable (v7+) needs no wait: strand has no transactional offsets yet.

use std::rc::Rc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::coordinator_route::{call_coordinator, mismatched};
use crate::group::{GroupRequest, GroupResponse};
use crate::shard::ShardState;

type Topics = Option<Vec<(String, Vec<i32>)>>;

pub async fn handle(shard: &Rc<ShardState>, request: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in &request.groups {
            let topics = group.topics.as_ref().map(|ts| ts.iter().map(|t| (t.name.to_string(), t.partition_indexes.clone())).collect());
            groups.push(fetch_group(shard, &group.group_id, topics).await);
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics: Topics = request.topics.as_ref().map(|ts| ts.iter().map(|t| (t.name.to_string(), t.partition_indexes.clone())).collect());
    let group = fetch_group(shard, &request.group_id, topics.clone()).await;
    single_group_response(group, topics, version)
}

async fn fetch_group(shard: &Rc<ShardState>, group_id: &GroupId, topics: Topics) -> OffsetFetchResponseGroup {
    let request = GroupRequest::OffsetFetch { group_id: group_id.to_string(), topics };
    let error = match call_coordinator(shard, group_id, request).await {
        Ok(GroupResponse::OffsetFetch(group)) => return group,
        Ok(_) => mismatched("OffsetFetch"),
        Err(e) => e,
    };
    OffsetFetchResponseGroup::default().with_group_id(group_id.clone()).with_error_code(error.code())
}

/// The v1-v7 shape: one group's topics at the top. v1 has no top-level error, so a group
/// error goes to every asked partition, as Kafka does.
fn single_group_response(group: OffsetFetchResponseGroup, asked: Topics, version: i16) -> OffsetFetchResponse {
    let group_error = group.error_code;
    let topics: Vec<OffsetFetchResponseTopic> = if version < 2 && group_error != 0 {
        asked
            .unwrap_or_default()
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|p| OffsetFetchResponsePartition::default().with_partition_index(p).with_committed_offset(-1).with_error_code(group_error))
                    .collect();
                OffsetFetchResponseTopic::default().with_name(TopicName(StrBytes::from_string(name))).with_partitions(partitions)
            })
            .collect()
    } else {
        group
            .topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_committed_offset(p.committed_offset)
                            .with_committed_leader_epoch(if version >= 5 { p.committed_leader_epoch } else { -1 })
                            .with_metadata(p.metadata)
                            .with_error_code(p.error_code)
                    })
                    .collect();
                OffsetFetchResponseTopic::default().with_name(t.name).with_partitions(partitions)
            })
            .collect()
    };
    let response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response.with_error_code(group_error)
    } else {
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::error::ResponseError;
    use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponsePartitions, OffsetFetchResponseTopics};
    use kafka_protocol::protocol::Encodable;

    fn group(error: ResponseError) -> OffsetFetchResponseGroup {
        let partition = OffsetFetchResponsePartitions::default().with_partition_index(0).with_committed_offset(42).with_committed_leader_epoch(3);
        let topic = OffsetFetchResponseTopics::default().with_name(StrBytes::from_static_str("t").into()).with_partitions(vec![partition]);
        OffsetFetchResponseGroup::default().with_group_id(StrBytes::from_static_str("g").into()).with_topics(vec![topic]).with_error_code(error.code())
    }

    #[test]
    fn one_groups_offsets_encode_at_every_single_group_version() {
        for version in 1..=7 {
            let response = single_group_response(group(ResponseError::NotCoordinator), Some(vec![("t".into(), vec![0])]), version);
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
        let v1 = single_group_response(group(ResponseError::NotCoordinator), Some(vec![("t".into(), vec![0])]), 1);
        assert_eq!(v1.topics[0].partitions[0].error_code, ResponseError::NotCoordinator.code());
        assert_eq!(v1.topics[0].partitions[0].committed_offset, -1);
        let v7 = single_group_response(group(ResponseError::UnknownServerError), None, 7);
        assert_eq!(v7.error_code, ResponseError::UnknownServerError.code());
        let ok = single_group_response(group(ResponseError::UnknownServerError), None, 5);
        assert_eq!(ok.topics[0].partitions[0].committed_leader_epoch, 3);
    }

    #[test]
    fn several_groups_encode_from_v8() {
        let response = OffsetFetchResponse::default().with_groups(vec![group(ResponseError::UnknownServerError)]);
        for version in 8..=9 {
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
    }
}
