//! Consumer groups over real sockets: a whole group's life at every advertised version of
//! every group API, with two shards so requests cross to the coordinating shard.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{batch, Broker, Client};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const CONFIG: &str = "group.initial.rebalance.delay.ms = 0\n";
const TOPIC: &str = "orders";
const MEMBER_ID_REQUIRED: i16 = 79;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const GROUP_ID_NOT_FOUND: i16 = 69;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn setup(client: &mut Client) {
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![CreatableTopic::default()
        .with_name(TopicName(text(TOPIC)))
        .with_num_partitions(2)
        .with_replication_factor(1)]);
    let created: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &request);
    assert_eq!(created.topics[0].error_code, 0);
    let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(text(TOPIC)))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch(&["a", "b", "c"], 0)))])]);
    let produced: ProduceResponse = client.call(ApiKey::Produce, 9, &produce);
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
}

/// Joins `group` at `version` as its only member: (member id, generation).
fn join(client: &mut Client, group: &str, version: i16) -> (StrBytes, i32) {
    let request = |member_id: StrBytes| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(if version >= 1 { 10_000 } else { -1 })
            .with_member_id(member_id)
            .with_protocol_type(text("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(text("range")).with_metadata(Bytes::from_static(b"sub"))])
    };
    let mut response: JoinGroupResponse = client.call(ApiKey::JoinGroup, version, &request(StrBytes::default()));
    if version >= 4 {
        assert_eq!(response.error_code, MEMBER_ID_REQUIRED, "v{version}");
        response = client.call(ApiKey::JoinGroup, version, &request(response.member_id.clone()));
    }
    assert_eq!(response.error_code, 0, "JoinGroup v{version}");
    assert_eq!(response.leader, response.member_id, "v{version}");
    assert_eq!(response.members.len(), 1, "v{version}");
    assert_eq!(response.members[0].metadata, Bytes::from_static(b"sub"));
    let expected_name = Some(text("range"));
    assert_eq!(response.protocol_name, expected_name, "v{version}");
    assert!(response.member_id.starts_with("strand-tests-"), "{}", response.member_id);
    (response.member_id, response.generation_id)
}

fn sync(client: &mut Client, group: &str, member: &StrBytes, generation: i32, version: i16) {
    let mut request = SyncGroupRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_generation_id(generation)
        .with_member_id(member.clone())
        .with_assignments(vec![SyncGroupRequestAssignment::default().with_member_id(member.clone()).with_assignment(Bytes::from_static(b"asg"))]);
    if version >= 5 {
        request = request.with_protocol_type(Some(text("consumer"))).with_protocol_name(Some(text("range")));
    }
    let response: SyncGroupResponse = client.call(ApiKey::SyncGroup, version, &request);
    assert_eq!((response.error_code, response.assignment), (0, Bytes::from_static(b"asg")), "SyncGroup v{version}");
}

fn commit(client: &mut Client, group: &str, member: &StrBytes, generation: i32, version: i16) {
    let partitions = |offset| vec![OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(offset)];
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(member.clone())
        .with_topics(vec![
            OffsetCommitRequestTopic::default().with_name(TopicName(text(TOPIC))).with_partitions(partitions(2)),
            OffsetCommitRequestTopic::default().with_name(TopicName(text("missing"))).with_partitions(partitions(1)),
        ]);
    let response: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, version, &request);
    let codes: Vec<i16> = response.topics.iter().map(|t| t.partitions[0].error_code).collect();
    assert_eq!(codes, [0, UNKNOWN_TOPIC_OR_PARTITION], "OffsetCommit v{version}");
}

/// The committed offsets of partitions 0 and 1 of TOPIC.
fn fetch(client: &mut Client, group: &str, version: i16) -> Vec<i64> {
    if version >= 8 {
        let request = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(text(group)))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default().with_name(TopicName(text(TOPIC))).with_partition_indexes(vec![0, 1])]))]);
        let response: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, version, &request);
        assert_eq!(response.groups[0].error_code, 0);
        return response.groups[0].topics[0].partitions.iter().map(|p| p.committed_offset).collect();
    }
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default().with_name(TopicName(text(TOPIC))).with_partition_indexes(vec![0, 1])]));
    let response: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, version, &request);
    assert_eq!(response.error_code, 0);
    response.topics[0].partitions.iter().map(|p| p.committed_offset).collect()
}

fn describe(client: &mut Client, group: &str, version: i16) -> describe_groups_response::DescribedGroup {
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(text(group))]).with_include_authorized_operations(version >= 3);
    let mut response: DescribeGroupsResponse = client.call(ApiKey::DescribeGroups, version, &request);
    response.groups.remove(0)
}

#[test]
fn a_group_lives_through_every_advertised_version_of_every_group_api() {
    let broker = Broker::start_with_config(2, Some(CONFIG));
    let mut client = broker.connect();
    setup(&mut client);
    for v in 0..=9i16 {
        let group = format!("group-v{v}");
        let find: FindCoordinatorResponse = {
            let request = if v >= 4 {
                FindCoordinatorRequest::default().with_coordinator_keys(vec![text(&group)])
            } else {
                FindCoordinatorRequest::default().with_key(text(&group))
            };
            client.call(ApiKey::FindCoordinator, v.min(6), &request)
        };
        let (node, port, code) = match find.coordinators.first() {
            Some(c) => (c.node_id, c.port, c.error_code),
            None => (find.node_id, find.port, find.error_code),
        };
        assert_eq!((node, port, code), (BrokerId(0), i32::from(broker.port), 0), "FindCoordinator v{}", v.min(6));

        let (member, generation) = join(&mut client, &group, v);
        assert_eq!(generation, 1);
        sync(&mut client, &group, &member, generation, v.min(5));
        let beat = HeartbeatRequest::default().with_group_id(GroupId(text(&group))).with_generation_id(generation).with_member_id(member.clone());
        let beat: HeartbeatResponse = client.call(ApiKey::Heartbeat, v.min(4), &beat);
        assert_eq!(beat.error_code, 0, "Heartbeat v{}", v.min(4));
        commit(&mut client, &group, &member, generation, v.clamp(2, 9));
        assert_eq!(fetch(&mut client, &group, v.clamp(1, 9)), [2, -1], "OffsetFetch v{}", v.clamp(1, 9));

        let described = describe(&mut client, &group, v.min(6));
        assert_eq!((described.error_code, described.group_state.as_str(), described.protocol_data.as_str()), (0, "Stable", "range"));
        assert_eq!(described.members[0].member_assignment, Bytes::from_static(b"asg"));
        assert_eq!(described.members[0].client_host.as_str(), "/127.0.0.1");
        assert_eq!(described.authorized_operations != i32::MIN, v >= 3);
        let listed: ListGroupsResponse = client.call(ApiKey::ListGroups, v.min(5), &ListGroupsRequest::default());
        assert!(listed.groups.iter().any(|g| g.group_id.as_str() == group), "ListGroups v{}", v.min(5));

        let leave = if v.min(5) >= 3 {
            LeaveGroupRequest::default().with_group_id(GroupId(text(&group))).with_members(vec![MemberIdentity::default().with_member_id(member.clone())])
        } else {
            LeaveGroupRequest::default().with_group_id(GroupId(text(&group))).with_member_id(member.clone())
        };
        let left: LeaveGroupResponse = client.call(ApiKey::LeaveGroup, v.min(5), &leave);
        assert_eq!((left.error_code, left.members.first().map_or(0, |m| m.error_code)), (0, 0), "LeaveGroup v{}", v.min(5));

        let delete_offsets = OffsetDeleteRequest::default().with_group_id(GroupId(text(&group))).with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(text(TOPIC)))
            .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)])]);
        let deleted: OffsetDeleteResponse = client.call(ApiKey::OffsetDelete, 0, &delete_offsets);
        assert_eq!((deleted.error_code, deleted.topics[0].partitions[0].error_code), (0, 0));
        assert_eq!(fetch(&mut client, &group, v.clamp(1, 9)), [-1, -1]);

        let delete = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text(&group))]);
        let deleted: DeleteGroupsResponse = client.call(ApiKey::DeleteGroups, v.min(2), &delete);
        assert_eq!(deleted.results[0].error_code, 0, "DeleteGroups v{}", v.min(2));
        let gone = describe(&mut client, &group, v.min(6));
        assert_eq!(gone.group_state.as_str(), "Dead");
        assert_eq!(gone.error_code, if v >= 6 { GROUP_ID_NOT_FOUND } else { 0 });
    }
}

#[test]
fn the_internal_offsets_topic_can_be_neither_produced_to_nor_deleted() {
    let broker = Broker::start(2);
    let mut client = broker.connect();
    let metadata: MetadataResponse = client.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    let offsets = metadata.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "__consumer_offsets")).unwrap();
    assert!(offsets.is_internal);
    assert_eq!(offsets.partitions.len(), 50);
    let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(text("__consumer_offsets")))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch(&["x"], 0)))])]);
    let produced: ProduceResponse = client.call(ApiKey::Produce, 9, &produce);
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 17, "INVALID_TOPIC_EXCEPTION");
    let delete = DeleteTopicsRequest::default().with_topic_names(vec![TopicName(text("__consumer_offsets"))]).with_timeout_ms(10_000);
    let deleted: DeleteTopicsResponse = client.call(ApiKey::DeleteTopics, 5, &delete);
    assert_eq!(deleted.responses[0].error_code, 29, "TOPIC_AUTHORIZATION_FAILED");
}
