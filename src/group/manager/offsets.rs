//! OffsetCommit, OffsetFetch and OffsetDelete on the coordinator (Kafka's
//! OffsetMetadataManager for classic groups). A commit is answered once its records are
//! durable; only then does OffsetFetch see it.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics};
use kafka_protocol::messages::{GroupId, OffsetDeleteResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{offset_tombstone, GroupManager, Now, Record};
use crate::group::records::{encode_key, encode_offset_commit_value, OffsetCommitValue, RecordKey};
use crate::group::{ClassicGroup, GroupState, OffsetAndMetadata, ResponseSlot, WriteError};
use crate::protocol::error_code::write_error_code;

/// One partition of an OffsetCommit.
#[derive(Debug, Clone)]
pub struct CommitPartition {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// An OffsetCommit request, normalized over versions; its topics are known to exist.
#[derive(Debug, Clone)]
pub struct CommitParams {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// -1: the broker's retention (only v2-v4 may give another).
    pub retention_time_ms: i64,
    pub topics: Vec<(String, Vec<CommitPartition>)>,
    pub version: i16,
}

/// The error code of every committed partition, by topic.
pub type CommitResult = Vec<(String, Vec<(i32, i16)>)>;

impl GroupManager {
    pub fn commit_offsets(&mut self, partition: i32, params: CommitParams, now: Now) -> Rc<ResponseSlot<CommitResult>> {
        let all = |error: Option<ResponseError>| -> CommitResult {
            let code = error.map_or(0, |e| e.code());
            params.topics.iter().map(|(topic, ps)| (topic.clone(), ps.iter().map(|p| (p.partition, code)).collect())).collect()
        };
        if let Err(error) = self.check_partition(partition).and_then(|()| self.validate_commit(partition, &params, now)) {
            return ResponseSlot::ready(all(Some(error)));
        }
        if let Some(group) = self.groups.get(&params.group_id) {
            // A commit keeps a member's session alive, as a heartbeat would.
            if matches!(group.state(), GroupState::Stable | GroupState::PreparingRebalance) && group.has_member(&params.member_id) {
                self.reschedule_session(&params.group_id, &params.member_id, now);
            }
        }
        let expire_timestamp_ms = (params.retention_time_ms != -1).then(|| now.wall_ms.saturating_add(params.retention_time_ms));
        let mut results: CommitResult = Vec::new();
        let mut records: Vec<Record> = Vec::new();
        let mut committed = Vec::new();
        for (topic, partitions) in &params.topics {
            let mut codes = Vec::new();
            for p in partitions {
                let metadata = p.metadata.clone().unwrap_or_default();
                if metadata.len() > self.config.offset_metadata_max_bytes {
                    codes.push((p.partition, ResponseError::OffsetMetadataTooLarge.code()));
                    continue;
                }
                codes.push((p.partition, 0));
                let value = OffsetCommitValue {
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: metadata.clone(),
                    commit_timestamp_ms: now.wall_ms,
                    expire_timestamp_ms,
                };
                let key = RecordKey::OffsetCommit { group: params.group_id.clone(), topic: topic.clone(), partition: p.partition };
                records.push((encode_key(&key), Some(encode_offset_commit_value(&value))));
                let offset = OffsetAndMetadata {
                    committed_offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata,
                    commit_timestamp_ms: now.wall_ms,
                    expire_timestamp_ms,
                };
                committed.push((topic.clone(), p.partition, offset));
            }
            results.push((topic.clone(), codes));
        }
        let slot = ResponseSlot::new();
        if records.is_empty() {
            slot.fill(results);
            return slot;
        }
        let (group_id, answer) = (params.group_id, Rc::clone(&slot));
        self.append(
            partition,
            records,
            Box::new(move |manager, result: Result<(), WriteError>, _| match result {
                Ok(()) => {
                    for (topic, p, offset) in committed {
                        manager.offsets.put(&group_id, &topic, p, offset);
                    }
                    answer.fill(results);
                }
                Err(e) => {
                    let code = write_error_code(&e).code();
                    let failed = results.into_iter().map(|(t, ps)| (t, ps.into_iter().map(|(p, c)| (p, if c == 0 { code } else { c })).collect())).collect();
                    answer.fill(failed);
                }
            }),
        );
        slot
    }

    /// Kafka's validateOffsetCommit. A commit with generation -1 (no group management) to an
    /// unknown group creates it, as a simple group.
    fn validate_commit(&mut self, partition: i32, params: &CommitParams, now: Now) -> Result<(), ResponseError> {
        let Some(group) = self.groups.get(&params.group_id) else {
            if params.generation_id < 0 {
                let group = ClassicGroup::new(&params.group_id, partition, now.wall_ms);
                self.groups.insert(params.group_id.clone(), group);
                return Ok(());
            }
            // From v9 the group's absence is said as it is; before, it reads as a stale
            // generation, which older clients handle.
            return Err(if params.version >= 9 { ResponseError::GroupIdNotFound } else { ResponseError::IllegalGeneration });
        };
        if group.is_in(GroupState::Dead) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if params.generation_id < 0 && group.is_in(GroupState::Empty) {
            return Ok(());
        }
        if params.generation_id >= 0 || !params.member_id.is_empty() || params.group_instance_id.is_some() {
            group.validate_member(&params.member_id, params.group_instance_id.as_deref())?;
            if params.generation_id != group.generation_id {
                return Err(ResponseError::IllegalGeneration);
            }
        } else if !group.is_in(GroupState::Empty) {
            return Err(ResponseError::UnknownMemberId);
        }
        if group.is_in(GroupState::CompletingRebalance) {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// The committed offsets of `group_id`: of the given partitions (-1 where none), or all.
    pub fn fetch_offsets(&self, partition: i32, group_id: &str, topics: Option<Vec<(String, Vec<i32>)>>) -> OffsetFetchResponseGroup {
        let response = OffsetFetchResponseGroup::default().with_group_id(GroupId(StrBytes::from_string(group_id.to_owned())));
        if let Err(error) = self.check_partition(partition) {
            return response.with_error_code(error.code());
        }
        let known = self.groups.get(group_id).is_some_and(|g| !g.is_in(GroupState::Dead));
        let topics = match topics {
            Some(asked) => asked
                .into_iter()
                .map(|(topic, partitions)| {
                    let partitions = partitions
                        .into_iter()
                        .map(|p| fetched(p, self.offsets.get(group_id, &topic, p).filter(|_| known)))
                        .collect();
                    fetched_topic(&topic, partitions)
                })
                .collect(),
            None if !known => Vec::new(),
            None => {
                let mut topics: Vec<OffsetFetchResponseTopics> = Vec::new();
                for (topic, p, offset) in self.offsets.group_offsets(group_id) {
                    if topics.last().is_none_or(|t| t.name.0.as_str() != topic) {
                        topics.push(fetched_topic(topic, Vec::new()));
                    }
                    topics.last_mut().expect("pushed").partitions.push(fetched(p, Some(offset)));
                }
                topics
            }
        };
        response.with_topics(topics)
    }

    /// Deletes committed offsets of topics the group does not consume (Kafka's OffsetDelete).
    pub fn delete_offsets(&mut self, partition: i32, group_id: &str, topics: Vec<(String, Vec<i32>)>) -> Rc<ResponseSlot<OffsetDeleteResponse>> {
        let error = |e: ResponseError| ResponseSlot::ready(OffsetDeleteResponse::default().with_error_code(e.code()));
        if let Err(e) = self.check_partition(partition) {
            return error(e);
        }
        if group_id.is_empty() {
            return error(ResponseError::InvalidGroupId);
        }
        let Some(group) = self.groups.get(group_id) else { return error(ResponseError::GroupIdNotFound) };
        match group.state() {
            GroupState::Dead => return error(ResponseError::GroupIdNotFound),
            GroupState::Stable | GroupState::PreparingRebalance | GroupState::CompletingRebalance if !group.uses_consumer_protocol() => {
                return error(ResponseError::NonEmptyGroup);
            }
            _ => {}
        }
        let mut records = Vec::new();
        let mut deleted = Vec::new();
        let mut response_topics = Vec::new();
        for (topic, partitions) in topics {
            let subscribed = group.is_subscribed_to_topic(&topic);
            let mut response_partitions = Vec::new();
            for p in partitions {
                let code = if subscribed { ResponseError::GroupSubscribedToTopic.code() } else { 0 };
                response_partitions.push(OffsetDeleteResponsePartition::default().with_partition_index(p).with_error_code(code));
                if !subscribed && self.offsets.get(group_id, &topic, p).is_some() {
                    records.push(offset_tombstone(group_id, &topic, p));
                    deleted.push((topic.clone(), p));
                }
            }
            response_topics.push(
                OffsetDeleteResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(response_partitions),
            );
        }
        let response = OffsetDeleteResponse::default().with_topics(response_topics);
        if records.is_empty() {
            return ResponseSlot::ready(response);
        }
        let slot = ResponseSlot::new();
        let (answer, group_id) = (Rc::clone(&slot), group_id.to_owned());
        self.append(
            partition,
            records,
            Box::new(move |manager, result, _| match result {
                Ok(()) => {
                    for (topic, p) in deleted {
                        manager.offsets.remove(&group_id, &topic, p);
                    }
                    answer.fill(response);
                }
                Err(e) => {
                    answer.fill(OffsetDeleteResponse::default().with_error_code(write_error_code(&e).code()));
                }
            }),
        );
        slot
    }
}

fn fetched(partition: i32, offset: Option<&OffsetAndMetadata>) -> OffsetFetchResponsePartitions {
    let response = OffsetFetchResponsePartitions::default().with_partition_index(partition);
    match offset {
        Some(o) => response
            .with_committed_offset(o.committed_offset)
            .with_committed_leader_epoch(o.leader_epoch)
            .with_metadata(Some(StrBytes::from_string(o.metadata.clone()))),
        None => response.with_committed_offset(-1).with_committed_leader_epoch(-1).with_metadata(Some(StrBytes::default())),
    }
}

fn fetched_topic(topic: &str, partitions: Vec<OffsetFetchResponsePartitions>) -> OffsetFetchResponseTopics {
    OffsetFetchResponseTopics::default().with_name(TopicName(StrBytes::from_string(topic.to_owned()))).with_partitions(partitions)
}
