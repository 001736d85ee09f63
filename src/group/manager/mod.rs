//! The group manager of one shard: every classic group and committed offset of the
//! __consumer_offsets partitions the shard owns, and the rules that change them (Kafka's
//! GroupMetadataManager and OffsetMetadataManager for classic groups).
//!
//! It is synchronous and knows no runtime: requests come in with the time ([`Now`]), answers
//! go out through [`ResponseSlot`]s, timers are entries in [`Timers`], and records to persist
//! are queued per partition as [`PendingWrite`]s whose continuation runs once the records are
//! durable (or failed). The coordinator shell drives it: it appends the queued records, runs
//! the continuations in queue (= log) order, and fires the timers.

mod admin;
mod expiration;
mod heartbeat;
mod join;
mod leave;
mod load;
mod offsets;
mod rebalance;
mod sync;

pub use join::JoinParams;
pub use leave::LeavingMember;
pub use offsets::{CommitParams, CommitPartition, CommitResult};
pub use sync::SyncParams;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_listener::{Event, EventListener};
use kafka_protocol::error::ResponseError;
use strand_config::BrokerConfig;
use tracing::info;

use crate::clock::wall_clock_ms;
use super::records::{encode_group_metadata_value, encode_key, GroupMetadataValue, MemberMetadata, RecordKey};
use super::{ClassicGroup, OffsetStore, TimerAction, TimerKey, Timers, WriteError};

/// How long a new member's JoinGroup may stay parked before it is dropped (Kafka's
/// classic new-member join timeout): it cannot heartbeat yet, and it may have gone away.
const NEW_MEMBER_JOIN_TIMEOUT: Duration = Duration::from_secs(300);

/// The coordinator settings, from the broker config.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i32,
    pub offset_metadata_max_bytes: usize,
    pub offsets_retention_ms: i64,
    pub retention_check_interval: Duration,
    /// Bound of each partition's queue of records waiting to be appended; requests that
    /// write wait for room (shard.inbox.max, the bound of the other cross-shard queues).
    pub write_queue_max: usize,
}

impl GroupConfig {
    pub fn from_broker(config: &BrokerConfig) -> Self {
        Self {
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            offset_metadata_max_bytes: usize::try_from(config.offset_metadata_max_bytes).unwrap_or(0),
            offsets_retention_ms: i64::from(config.offsets_retention_minutes) * 60_000,
            retention_check_interval: Duration::from_millis(
                u64::try_from(config.offsets_retention_check_interval_ms).unwrap_or(1),
            ),
            write_queue_max: config.shard_inbox_max,
        }
    }
}

/// The time of an event: monotonic for timers, wall clock for what is stored.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub instant: Instant,
    pub wall_ms: i64,
}

impl Now {
    pub fn current() -> Self {
        Self { instant: Instant::now(), wall_ms: wall_clock_ms() }
    }

    pub fn after_ms(&self, ms: i32) -> Instant {
        self.instant + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }
}

/// A record of __consumer_offsets: key and value (None: tombstone).
pub type Record = (Bytes, Option<Bytes>);

/// What runs once a write is durable, or failed.
pub type Continuation = Box<dyn FnOnce(&mut GroupManager, Result<(), WriteError>, Now)>;

/// Records waiting to be appended as one batch, and what to do after.
pub struct PendingWrite {
    pub records: Vec<Record>,
    pub then: Continuation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadStatus {
    Loading,
    Loaded,
}

/// One __consumer_offsets partition owned by this shard.
struct OffsetsPartition {
    status: LoadStatus,
    writes: VecDeque<PendingWrite>,
    /// Wakes the partition's writer: records queued.
    queued: Event,
    /// Wakes requests waiting for room in the queue.
    drained: Event,
}

pub struct GroupManager {
    config: GroupConfig,
    groups: HashMap<String, ClassicGroup>,
    offsets: OffsetStore,
    timers: Timers,
    partitions: BTreeMap<i32, OffsetsPartition>,
    /// False once the shard stops: every request is then NOT_COORDINATOR.
    active: bool,
}

impl GroupManager {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: HashMap::new(),
            offsets: OffsetStore::default(),
            timers: Timers::default(),
            partitions: BTreeMap::new(),
            active: true,
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Whether this shard may answer for groups of `partition` now: NOT_COORDINATOR if it does
    /// not own the partition (or is stopping), COORDINATOR_LOAD_IN_PROGRESS while loading it.
    pub fn check_partition(&self, partition: i32) -> Result<(), ResponseError> {
        if !self.active {
            return Err(ResponseError::NotCoordinator);
        }
        match self.partitions.get(&partition).map(|p| p.status) {
            None => Err(ResponseError::NotCoordinator),
            Some(LoadStatus::Loading) => Err(ResponseError::CoordinatorLoadInProgress),
            Some(LoadStatus::Loaded) => Ok(()),
        }
    }

    /// Queues `records` for `partition`; `then` runs once they are durable or failed.
    fn append(&mut self, partition: i32, records: Vec<Record>, then: Continuation) {
        match self.partitions.get_mut(&partition) {
            Some(p) => {
                p.writes.push_back(PendingWrite { records, then });
                p.queued.notify(usize::MAX);
            }
            None => {
                // The partition is not (or no longer) ours: fail at once, as an append would.
                then(self, Err(WriteError::NotCoordinator("the partition is not owned here".into())), Now::current());
            }
        }
    }

    /// Everything queued for `partition`, oldest first.
    pub fn take_writes(&mut self, partition: i32) -> Vec<PendingWrite> {
        match self.partitions.get_mut(&partition) {
            Some(p) => {
                let writes: Vec<PendingWrite> = p.writes.drain(..).collect();
                p.drained.notify(usize::MAX);
                writes
            }
            None => Vec::new(),
        }
    }

    /// Resolves after records are next queued for `partition`.
    pub fn writes_queued(&self, partition: i32) -> Option<EventListener> {
        self.partitions.get(&partition).map(|p| p.queued.listen())
    }

    pub fn has_writes(&self, partition: i32) -> bool {
        self.partitions.get(&partition).is_some_and(|p| !p.writes.is_empty())
    }

    /// None if `partition`'s queue has room, else a listener for the next drain.
    pub fn wait_for_room(&self, partition: i32) -> Option<EventListener> {
        let p = self.partitions.get(&partition)?;
        (p.writes.len() >= self.config.write_queue_max).then(|| p.drained.listen())
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    pub fn timers_changed(&self) -> EventListener {
        self.timers.changed()
    }

    /// Fires every timer due at `now`.
    pub fn on_timers(&mut self, now: Now) {
        for (key, action) in self.timers.pop_expired(now.instant) {
            match (key, action) {
                (TimerKey::Heartbeat { group_id, member_id }, _) => self.on_heartbeat_expired(&group_id, &member_id, now),
                (TimerKey::Join { group_id }, TimerAction::InitialRebalance { delay_ms, remaining_ms }) => {
                    self.on_initial_rebalance_delay(&group_id, delay_ms, remaining_ms, now);
                }
                (TimerKey::Join { group_id }, _) => self.on_join_timeout(&group_id, now),
                (TimerKey::Sync { group_id }, TimerAction::ExpirePendingSync { generation_id }) => {
                    self.on_pending_sync_expired(&group_id, generation_id, now);
                }
                (TimerKey::Sync { .. }, _) => {}
                (TimerKey::Expiration, _) => self.cleanup_group_metadata(now),
            }
        }
    }

    /// The shard is stopping: parked JoinGroup and SyncGroup requests are answered
    /// NOT_COORDINATOR (the client finds the coordinator again once the broker is back), and
    /// so is every later request.
    pub fn shutdown(&mut self) {
        self.active = false;
        for group in self.groups.values_mut() {
            for member in group.member_ids() {
                group.complete_join(&member, join_error(&member, ResponseError::NotCoordinator));
                group.complete_sync(&member, sync_error(ResponseError::NotCoordinator));
            }
        }
        let partitions: Vec<i32> = self.partitions.keys().copied().collect();
        for partition in partitions {
            let now = Now::current();
            for write in self.take_writes(partition) {
                (write.then)(self, Err(WriteError::NotCoordinator("the coordinator is stopping".into())), now);
            }
        }
        info!(groups = self.groups.len(), "group coordinator stopped");
    }

    fn schedule(&mut self, key: TimerKey, deadline: Instant, action: TimerAction) {
        self.timers.schedule(key, deadline, action);
    }

    fn cancel(&mut self, key: &TimerKey) {
        self.timers.cancel(key);
    }

    /// Restarts a member's session timer with `timeout_ms`.
    fn reschedule_heartbeat(&mut self, group_id: &str, member_id: &str, deadline: Instant) {
        let key = TimerKey::Heartbeat { group_id: group_id.to_owned(), member_id: member_id.to_owned() };
        self.schedule(key, deadline, TimerAction::ExpireHeartbeat);
    }

    fn reschedule_session(&mut self, group_id: &str, member_id: &str, now: Now) {
        let Some(timeout) = self.groups.get(group_id).and_then(|g| g.member(member_id)).map(|m| m.session_timeout_ms) else {
            return;
        };
        self.reschedule_heartbeat(group_id, member_id, now.after_ms(timeout));
    }

    fn cancel_heartbeat(&mut self, group_id: &str, member_id: &str) {
        self.cancel(&TimerKey::Heartbeat { group_id: group_id.to_owned(), member_id: member_id.to_owned() });
    }

    #[cfg(test)]
    fn group(&self, group_id: &str) -> Option<&ClassicGroup> {
        self.groups.get(group_id)
    }
}

/// The GroupMetadata record of `group` with these assignments (all members need one; an
/// empty group has no members).
fn group_metadata_record(group: &ClassicGroup, assignments: &BTreeMap<String, Bytes>) -> Record {
    let protocol = group.protocol_name();
    let members = group
        .members()
        .map(|m| MemberMetadata {
            member_id: m.member_id.clone(),
            group_instance_id: m.group_instance_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            session_timeout_ms: m.session_timeout_ms,
            subscription: protocol.and_then(|p| m.metadata(p)).cloned().unwrap_or_default(),
            assignment: assignments.get(&m.member_id).cloned().unwrap_or_default(),
        })
        .collect();
    let value = GroupMetadataValue {
        protocol_type: group.protocol_type().unwrap_or_default().to_owned(),
        generation: group.generation_id,
        protocol: protocol.map(str::to_owned),
        leader: group.leader_id().map(str::to_owned),
        current_state_timestamp_ms: group.state_timestamp_ms().unwrap_or(-1),
        members,
    };
    let key = encode_key(&RecordKey::GroupMetadata { group: group.group_id.clone() });
    (key, Some(encode_group_metadata_value(&value)))
}

fn group_tombstone(group_id: &str) -> Record {
    (encode_key(&RecordKey::GroupMetadata { group: group_id.to_owned() }), None)
}

fn offset_tombstone(group_id: &str, topic: &str, partition: i32) -> Record {
    (encode_key(&RecordKey::OffsetCommit { group: group_id.to_owned(), topic: topic.to_owned(), partition }), None)
}

fn join_error(member_id: &str, error: ResponseError) -> kafka_protocol::messages::JoinGroupResponse {
    kafka_protocol::messages::JoinGroupResponse::default()
        .with_error_code(error.code())
        .with_generation_id(-1)
        .with_member_id(kafka_protocol::protocol::StrBytes::from_string(member_id.to_owned()))
}

fn sync_error(error: ResponseError) -> kafka_protocol::messages::SyncGroupResponse {
    kafka_protocol::messages::SyncGroupResponse::default().with_error_code(error.code())
}

#[cfg(test)]
pub(crate) mod tests;
