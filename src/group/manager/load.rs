//! Loading a __consumer_offsets partition when its shard starts: every record from the log
//! start to the high watermark is replayed in order (the last value of a key wins, a tombstone
//! deletes it); until then requests for its groups are COORDINATOR_LOAD_IN_PROGRESS. Also the
//! cleanup when topics are deleted: their committed offsets go too, as in Kafka.

use std::collections::{BTreeMap, VecDeque};

use event_listener::Event;
use tracing::{debug, info, warn};

use super::{offset_tombstone, GroupManager, LoadStatus, Now, OffsetsPartition};
use crate::group::records::{CoordinatorRecord, GroupMetadataValue};
use crate::group::{ClassicGroup, Member, OffsetAndMetadata, Protocol, StoredGroup};

impl GroupManager {
    /// The shard now owns `partition` and starts loading it.
    pub fn begin_load(&mut self, partition: i32) {
        let entry = OffsetsPartition { status: LoadStatus::Loading, writes: VecDeque::new(), queued: Event::new(), drained: Event::new() };
        self.partitions.insert(partition, entry);
    }

    /// Applies one record read from `partition` while loading it.
    pub fn replay(&mut self, partition: i32, record: CoordinatorRecord, now: Now) {
        match record {
            CoordinatorRecord::OffsetCommit { group, topic, partition: p, value: Some(value) } => {
                // Offsets of a group without a group record belong to a simple group.
                self.groups.entry(group.clone()).or_insert_with(|| ClassicGroup::new(&group, partition, now.wall_ms));
                let offset = OffsetAndMetadata {
                    committed_offset: value.offset,
                    leader_epoch: value.leader_epoch,
                    metadata: value.metadata,
                    commit_timestamp_ms: value.commit_timestamp_ms,
                    expire_timestamp_ms: value.expire_timestamp_ms,
                };
                self.offsets.put(&group, &topic, p, offset);
            }
            CoordinatorRecord::OffsetCommit { group, topic, partition: p, value: None } => {
                self.offsets.remove(&group, &topic, p);
            }
            CoordinatorRecord::GroupMetadata { group, value: Some(value) } => {
                let restored = ClassicGroup::restore(stored_group(&group, value), partition);
                self.groups.insert(group, restored);
            }
            CoordinatorRecord::GroupMetadata { group, value: None } => {
                self.groups.remove(&group);
            }
        }
    }

    /// The partition is loaded: its members' sessions start now, and it serves.
    pub fn finish_load(&mut self, partition: i32, now: Now) {
        let mut sessions = Vec::new();
        let mut groups = 0;
        for group in self.groups.values().filter(|g| g.partition == partition) {
            groups += 1;
            sessions.extend(group.members().map(|m| (group.group_id.clone(), m.member_id.clone(), m.session_timeout_ms)));
        }
        for (group_id, member_id, timeout_ms) in sessions {
            self.reschedule_heartbeat(&group_id, &member_id, now.after_ms(timeout_ms));
        }
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.status = LoadStatus::Loaded;
        }
        if groups > 0 {
            info!(partition, groups, "__consumer_offsets partition loaded");
        } else {
            debug!(partition, "__consumer_offsets partition loaded, no groups");
        }
    }

    /// Loading failed: the partition stays unavailable (NOT_COORDINATOR) rather than serve
    /// groups from partial state.
    pub fn abandon_load(&mut self, partition: i32) {
        self.partitions.remove(&partition);
        let gone: Vec<String> = self.groups.values().filter(|g| g.partition == partition).map(|g| g.group_id.clone()).collect();
        for group_id in gone {
            self.groups.remove(&group_id);
            self.offsets.remove_group(&group_id);
        }
    }

    /// `topics` were deleted: tombstones for every committed offset of theirs.
    pub fn on_topics_deleted(&mut self, topics: &[String]) {
        let mut by_partition: BTreeMap<i32, Vec<(String, String, i32)>> = BTreeMap::new();
        for topic in topics {
            for (group_id, p) in self.offsets.keys_of_topic(topic) {
                let Some(group) = self.groups.get(&group_id) else { continue };
                if self.check_partition(group.partition).is_ok() {
                    by_partition.entry(group.partition).or_default().push((group_id, topic.clone(), p));
                }
            }
        }
        for (partition, keys) in by_partition {
            let records = keys.iter().map(|(g, t, p)| offset_tombstone(g, t, *p)).collect();
            info!(partition, offsets = keys.len(), "deleting offsets of deleted topics");
            self.append(
                partition,
                records,
                Box::new(move |manager, result, _| match result {
                    Ok(()) => {
                        for (group_id, topic, p) in keys {
                            manager.offsets.remove(&group_id, &topic, p);
                        }
                    }
                    Err(e) => warn!(partition, error = %e, "deleting offsets of deleted topics failed"),
                }),
            );
        }
    }
}

fn stored_group(group_id: &str, value: GroupMetadataValue) -> StoredGroup {
    let protocol_type = value.protocol_type.clone();
    let protocol_name = value.protocol.clone();
    let members = value
        .members
        .into_iter()
        .map(|m| Member {
            member_id: m.member_id,
            group_instance_id: m.group_instance_id,
            client_id: m.client_id,
            client_host: m.client_host,
            rebalance_timeout_ms: if m.rebalance_timeout_ms < 0 { m.session_timeout_ms } else { m.rebalance_timeout_ms },
            session_timeout_ms: m.session_timeout_ms,
            protocol_type: protocol_type.clone(),
            protocols: protocol_name.iter().map(|name| Protocol { name: name.clone(), metadata: m.subscription.clone() }).collect(),
            assignment: m.assignment,
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
        })
        .collect();
    StoredGroup {
        group_id: group_id.to_owned(),
        protocol_type: Some(value.protocol_type),
        generation_id: value.generation,
        protocol_name: value.protocol,
        leader_id: value.leader,
        state_timestamp_ms: (value.current_state_timestamp_ms >= 0).then_some(value.current_state_timestamp_ms),
        members,
    }
}

