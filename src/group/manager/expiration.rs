//! Offset retention (Kafka's cleanupGroupMetadata, every offsets.retention.check.interval.ms):
//! offsets expire offsets.retention.minutes after their group became empty (after the commit,
//! for groups that never had members, or at an explicit expiry), except for topics the group
//! consumes; an empty group left without offsets is deleted.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::{group_tombstone, offset_tombstone, GroupManager, LoadStatus, Now, Record};
use crate::group::{ClassicGroup, GroupState, OffsetAndMetadata, TimerAction, TimerKey};

impl GroupManager {
    /// Starts the periodic expiration (once, when the shard starts serving).
    pub fn schedule_expiration(&mut self, now: Now) {
        let deadline = now.instant + self.config.retention_check_interval;
        self.schedule(TimerKey::Expiration, deadline, TimerAction::CleanupGroupMetadata);
    }

    pub(super) fn cleanup_group_metadata(&mut self, now: Now) {
        let mut by_partition: BTreeMap<i32, Expired> = BTreeMap::new();
        for (group_id, group) in &self.groups {
            let loaded = self.partitions.get(&group.partition).is_some_and(|p| p.status == LoadStatus::Loaded);
            if !loaded || group.is_in(GroupState::Dead) {
                continue;
            }
            let (expired, all_expired) = self.expired_offsets(group, now);
            let entry = by_partition.entry(group.partition).or_default();
            for (topic, partition) in expired {
                entry.records.push(offset_tombstone(group_id, &topic, partition));
                entry.offsets.push((group_id.clone(), topic, partition));
            }
            if all_expired && group.is_in(GroupState::Empty) {
                entry.records.push(group_tombstone(group_id));
                entry.groups.push(group_id.clone());
            }
        }
        for (partition, Expired { records, offsets, groups }) in by_partition {
            if records.is_empty() {
                continue;
            }
            info!(partition, offsets = offsets.len(), groups = groups.len(), "expiring offsets and empty groups");
            for group_id in &groups {
                if let Some(group) = self.groups.get_mut(group_id) {
                    group.mark_dead();
                }
            }
            self.append(
                partition,
                records,
                Box::new(move |manager, result, _| match result {
                    Ok(()) => {
                        for (group_id, topic, p) in offsets {
                            manager.offsets.remove(&group_id, &topic, p);
                        }
                        for group_id in groups {
                            manager.offsets.remove_group(&group_id);
                            manager.groups.remove(&group_id);
                        }
                    }
                    Err(e) => {
                        warn!(partition, error = %e, "writing expiration tombstones failed");
                        for group_id in groups {
                            if let Some(group) = manager.groups.get_mut(&group_id) {
                                group.revive();
                            }
                        }
                    }
                }),
            );
        }
        self.schedule_expiration(now);
    }

    /// The offsets of `group` that expired, and whether that is all of them (Kafka's
    /// cleanupExpiredOffsets: true as well for a group without offsets).
    fn expired_offsets(&self, group: &ClassicGroup, now: Now) -> (Vec<(String, i32)>, bool) {
        let Some(base) = RetentionBase::of(group) else {
            return (Vec::new(), !self.offsets.has_offsets(&group.group_id));
        };
        let mut expired = Vec::new();
        let mut all = true;
        for (topic, partition, offset) in self.offsets.group_offsets(&group.group_id) {
            let base_ms = base.base_ms(offset);
            if !group.is_subscribed_to_topic(topic) && is_expired(offset, base_ms, now.wall_ms, self.config.offsets_retention_ms) {
                expired.push((topic.to_owned(), partition));
            } else {
                all = false;
            }
        }
        (expired, all)
    }
}

/// The tombstones one partition's expiration writes, and what they delete.
#[derive(Default)]
struct Expired {
    records: Vec<Record>,
    offsets: Vec<(String, String, i32)>,
    groups: Vec<String>,
}

/// From when an offset's retention counts (Kafka's offsetExpirationCondition for classic
/// groups).
enum RetentionBase {
    /// Its commit.
    CommitTime,
    /// The group becoming empty (its commit, if that time is unknown).
    GroupEmptySince(Option<i64>),
}

impl RetentionBase {
    /// None if the group's offsets do not expire now (a consumer group mid-rebalance, or a
    /// group of another protocol type with members).
    fn of(group: &ClassicGroup) -> Option<Self> {
        match group.protocol_type() {
            None => Some(Self::CommitTime),
            Some(_) if group.is_in(GroupState::Empty) => Some(Self::GroupEmptySince(group.state_timestamp_ms())),
            Some(_) if group.uses_consumer_protocol() && group.is_in(GroupState::Stable) => Some(Self::CommitTime),
            Some(_) => None,
        }
    }

    fn base_ms(&self, offset: &OffsetAndMetadata) -> i64 {
        match self {
            Self::CommitTime | Self::GroupEmptySince(None) => offset.commit_timestamp_ms,
            Self::GroupEmptySince(Some(since)) => *since,
        }
    }
}

fn is_expired(offset: &OffsetAndMetadata, base_ms: i64, now_ms: i64, retention_ms: i64) -> bool {
    match offset.expire_timestamp_ms {
        Some(expire) => now_ms >= expire,
        None => now_ms - base_ms >= retention_ms,
    }
}
